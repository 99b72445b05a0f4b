"""Unsubscribe links at the edges: the app's token codec (built once per app from
TOKEN_KEYS), the page paths, and reading a token the way every page does."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from suppression import runtime
from suppression.config import ConfigError
from suppression.domain.tokens import LinkClaims, LinkTokens

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
    """The claims of a link; raises TokenError for a bad, changed or expired one."""
    days = runtime.settings().links.validity_days
    return link_tokens().read(token, runtime.now(), timedelta(days=days))
