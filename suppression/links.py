"""Links at the edges: the app's token codec (built once per app from TOKEN_KEYS),
the page paths, and reading a token the way every page does."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from suppression import runtime
from suppression.config import ConfigError
from suppression.domain.tokens import ConfirmationClaims, LinkClaims, LinkTokens
from suppression.worker.confirmation_mail import CONFIRM_PATH

__all__ = ["CONFIRM_PATH", "PREFERENCES_PATH", "UNSUBSCRIBE_PATH", "link_tokens", "read_token"]

EXTENSION = "suppression.link_tokens"
UNSUBSCRIBE_PATH = "/u/"
PREFERENCES_PATH = "/preferences/"


def link_tokens() -> LinkTokens:
    tokens = current_app.extensions.get(EXTENSION)
    if tokens is None:
        keys = runtime.settings().keys.token_keys
        if not keys:
            raise ConfigError("TOKEN_KEYS holds no key: unsubscribe links cannot work")
        tokens = current_app.extensions[EXTENSION] = LinkTokens(keys)
    return tokens


def read_token(token: str) -> LinkClaims:
    """The claims of an unsubscribe or preference link; raises TokenError for a bad,
    changed or expired one, or a confirmation link."""
    days = runtime.settings().links.validity_days
    return link_tokens().read(token, runtime.now(), timedelta(days=days))


def read_confirmation(token: str) -> ConfirmationClaims:
    """The claims of a double opt-in link; TokenError for any other token."""
    hours = runtime.settings().mail.confirm_link_hours
    return link_tokens().read_confirmation(token, runtime.now(), timedelta(hours=hours))
