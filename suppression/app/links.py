"""Links at the edges: the app's token codec (built once per app from TOKEN_KEYS),
the page paths, and reading a token the way every page does."""

from __future__ import annotations

from datetime import timedelta

from suppression.app import current
from suppression.config.settings import ConfigError
from suppression.domain.tokens import ConfirmationClaims, LinkClaims, LinkTokens
from suppression.worker.confirmation_mail import CONFIRM_PATH

__all__ = ["CONFIRM_PATH", "PREFERENCES_PATH", "UNSUBSCRIBE_PATH", "link_tokens", "read_token"]

UNSUBSCRIBE_PATH = "/u/"
PREFERENCES_PATH = "/preferences/"


def link_tokens() -> LinkTokens:
    tokens = current.runtime().link_tokens
    if tokens is None:
        raise ConfigError("TOKEN_KEYS holds no key: unsubscribe links cannot work")
    return tokens


def read_token(token: str) -> LinkClaims:
    """The claims of an unsubscribe or preference link; raises TokenError for a bad,
    changed or expired one, or a confirmation link."""
    days = current.settings().links.validity_days
    return link_tokens().read(token, current.now(), timedelta(days=days))


def read_confirmation(token: str) -> ConfirmationClaims:
    """The claims of a double opt-in link; TokenError for any other token."""
    hours = current.settings().mail.confirm_link_hours
    return link_tokens().read_confirmation(token, current.now(), timedelta(hours=hours))
