"""A production environment that passes every check production makes at start
(suppression/config/production.py): tests change one variable of it at a time."""

from __future__ import annotations

import base64
import hashlib


def fixed_key(name: str) -> str:
    """A key that looks random (32 bytes of SHA-256) and is the same in every run."""
    digest = hashlib.sha256(name.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


PRODUCTION_ENV = {
    "SUPPRESSION_ENV": "production",
    "DATABASE_URL": "postgresql://db.internal/suppression",
    "SECRET_KEY": "Zq3v-8KwYt2LmB7xN0cR5hJpD9sFgU1eA4oW6iTkEzQ",
    "ADDRESS_INDEX_KEY": fixed_key("index"),
    "ADDRESS_SEALING_KEYS": f"1:{fixed_key('sealing 1')}",
    "TOKEN_KEYS": f"1:{fixed_key('token 1')}",
    "PUBLIC_BASE_URL": "https://optout.example.com",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "METRICS_TOKEN": "mQ7-Xa2rV9cLk4ZpT0wHs6NdB1yGf8JuE3oKi5",
}
