"""Marketing consent and opt-out suppression service."""

from suppression.app import create_app

__all__ = ["create_app"]
