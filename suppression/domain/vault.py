"""The keys that turn a canonical address into what is stored: index and seal;
the same sealing keys seal an event's free evidence (its canonical JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from suppression.domain.addresses import keyed_index
from suppression.domain.sealing import AddressSealer


@dataclass(frozen=True, slots=True)
class AddressVault:
    index_key: bytes
    sealer: AddressSealer

    def index(self, canonical: str) -> bytes:
        return keyed_index(self.index_key, canonical)

    def seal(self, canonical: str) -> bytes:
        return self.sealer.seal(canonical)

    def open(self, sealed: bytes) -> str:
        return self.sealer.open(sealed)

    def seal_evidence(self, canonical_json: bytes) -> bytes:
        return self.sealer.seal_evidence(canonical_json)

    def seal_evidence_batch(self, canonical_jsons: Sequence[bytes]) -> list[bytes]:
        return self.sealer.seal_evidence_batch(canonical_jsons)

    def open_evidence(self, sealed: bytes) -> bytes:
        """The canonical JSON that was sealed; SealError if no held key opens it."""
        return self.sealer.open_evidence(sealed)
