"""Confirming an Amazon SNS subscription: a GET of the SubscribeURL that a verified
SubscriptionConfirmation carries (domain/sns.py has checked it is SNS's
ConfirmSubscription action on the topic's SNS host). SNS answers 200 and a
ConfirmSubscriptionResponse:
https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html
https://docs.aws.amazon.com/sns/latest/api/API_ConfirmSubscription.html
"""

from __future__ import annotations

import requests

from suppression.connectors.sns_certificates import USER_AGENT


class SubscriptionNotConfirmed(Exception):
    """SNS could not be reached or did not confirm; SNS retries the confirmation
    message when it is answered 5xx."""


def confirm_subscription(url: str, ca_file: str | None = None, timeout: float = 5.0) -> None:
    try:
        response = requests.get(
            url,
            timeout=timeout,
            verify=ca_file or True,
            allow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
    except requests.RequestException as error:
        raise SubscriptionNotConfirmed(
            f"could not reach SNS to confirm ({type(error).__name__})"
        ) from None
    if response.status_code != 200:
        raise SubscriptionNotConfirmed(f"SNS answered {response.status_code} to the confirmation")
