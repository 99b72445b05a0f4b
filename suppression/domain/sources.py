"""Where a consent change came from (an event's `source`) when it is one of the
service's own channels. Callers may send any source; these are the ones the staff
pages offer and that metrics count by name."""

from __future__ import annotations

# How a person reached us, as staff record it (and API callers often send it too:
# API.md names `email_request` and `phone`); the label is what the form shows.
STAFF_CHANNELS = {
    "email_request": "Email to us",
    "phone": "Phone call",
    "letter": "Letter",
    "in_person": "In person",
    "web_form": "Web or signup form",
    "other": "Other (say how in the reason)",
}

# The service's own ways in: the link pages, the unsubscribe mail, the sending
# platforms' webhooks (domain/feedback.py), the Keap pull, and the API's default.
SOURCE_ONE_CLICK = "one_click"
SOURCE_UNSUBSCRIBE_PAGE = "unsubscribe_page"
SOURCE_PREFERENCE_PAGE = "preference_page"
SOURCE_MAILTO = "mailto"  # a mail to the List-Unsubscribe mailto (api/inbound_mail.py)
SOURCE_KEAP = "keap"  # Keap's own unsubscribes, pulled (services/destinations/keap_pull.py)
CHANNELS = {
    SOURCE_ONE_CLICK: "One-click unsubscribe (RFC 8058)",
    SOURCE_UNSUBSCRIBE_PAGE: "Unsubscribe page",
    SOURCE_PREFERENCE_PAGE: "Preference page",
    SOURCE_MAILTO: "Unsubscribe mail (List-Unsubscribe mailto)",
    "ses": "Amazon SES webhook",
    "sendgrid": "SendGrid webhook",
    "mailgun": "Mailgun webhook",
    "postmark": "Postmark webhook",
    SOURCE_KEAP: "Keap (pulled)",
    "api": "API",
    "signup_form": "Signup form",
    **{name: f"Staff: {label}" for name, label in STAFF_CHANNELS.items() if name != "other"},
    "import": "Import",
    "retention": "Retention schedule",
}
# Sources that carry a detail after a colon (`import:<file source>`, `retention:<rule>`).
PREFIXED_CHANNELS = ("import", "retention")
OTHER_CHANNEL = "other"


def channel_of(source: str) -> str:
    """The channel a source counts under: itself when it is one of CHANNELS, its
    prefix for the bulk paths, `other` for whatever else a caller wrote."""
    if source in CHANNELS:
        return source
    prefix = source.partition(":")[0]
    return prefix if prefix in PREFIXED_CHANNELS else OTHER_CHANNEL


def channel_label(source: str) -> str:
    channel = channel_of(source)
    return CHANNELS.get(channel, "Other (a source the caller named)")
