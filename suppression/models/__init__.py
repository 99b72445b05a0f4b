"""Typed SQLAlchemy 2.0 mappings, one module per resource. No plaintext address
is stored in any table. Importing this package registers every table."""

from suppression.models.core import ApiKey, Block, ConsentEvent, ConsentState, Subject

__all__ = ["ApiKey", "Block", "ConsentEvent", "ConsentState", "Subject"]
