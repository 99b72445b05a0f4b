"""How marketing purposes read for people (pages and mails). A purpose configured
without a label here is shown by its name."""

from __future__ import annotations

from suppression.domain.policy import ALL_PURPOSES

PURPOSE_LABELS = {
    ALL_PURPOSES: "all marketing from us",
    "email_marketing": "marketing email",
    "ad_audiences": "personalised ads on other sites",
}
PURPOSE_HINTS = {
    "email_marketing": "News, offers and newsletters by email.",
    "ad_audiences": "Ads on platforms such as Google, Facebook, LinkedIn and Microsoft, "
    "shown because we shared a scrambled form of your address with them.",
}


def purpose_label(purpose: str) -> str:
    return PURPOSE_LABELS.get(purpose, purpose.replace("_", " "))
