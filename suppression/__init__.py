"""Marketing consent and opt-out suppression service."""

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that importing suppression.domain does not load Flask or SQLAlchemy.
    if name == "create_app":
        from suppression.app import create_app

        return create_app
    raise AttributeError(name)
