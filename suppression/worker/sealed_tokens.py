"""The token store the connectors save rotated OAuth refresh tokens in."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from suppression.domain.vault import AddressVault
from suppression.services.destinations.registry import load_sealed_token, save_sealed_token


class SealedTokenStore:
    """Rotated refresh tokens, sealed with the address keys, one per destination;
    saved at once in their own transaction (the old one is dead)."""

    def __init__(self, sessions: sessionmaker[Session], vault: AddressVault, name: str):
        self.sessions = sessions
        self.vault = vault
        self.name = name

    def load(self, seed: str) -> str | None:
        with self.sessions() as session:
            return load_sealed_token(session, self.vault, self.name, seed)

    def save(self, seed: str, refresh_token: str) -> None:
        with self.sessions() as session:
            save_sealed_token(session, self.vault, self.name, seed, refresh_token)
            session.commit()
