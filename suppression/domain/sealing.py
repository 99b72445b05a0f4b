"""Sealing addresses and free evidence at rest: AES-GCM ciphertext with the key
id in front.

The keyed index finds a subject; the sealed address is only opened for export
and for destinations that need the address itself, sealed evidence only to be
shown or verified. Several keys may be held so that a new key can be introduced
while old ciphertexts stay readable: the current (highest) id seals, every held
id opens.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12
_TAG = 16


# The associated data of sealed evidence (addresses have none, as before).
EVIDENCE = b"evidence"


class SealError(ValueError):
    """A ciphertext that no held key opens."""


class AddressSealer:
    def __init__(self, keys: Mapping[int, bytes], current: int):
        if current not in keys:
            raise ValueError("the current sealing key is not among the keys")
        if any(not 0 <= key_id < 2**16 for key_id in keys):
            raise ValueError("sealing key ids are 0..65535 (two bytes in each ciphertext)")
        self._aeads = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current

    @property
    def current(self) -> int:
        """The id of the key that seals."""
        return self._current

    @staticmethod
    def sealed_with(sealed: bytes) -> int:
        """The id of the key a ciphertext was sealed with (it travels in clear)."""
        return int.from_bytes(sealed[:2], "big")

    def seal(self, canonical: str) -> bytes:
        return self.seal_bytes(canonical.encode("utf-8"))

    def open(self, sealed: bytes) -> str:
        return self.open_bytes(sealed).decode("utf-8")

    def seal_bytes(self, plain: bytes, context: bytes = b"") -> bytes:
        """`context` is bound to the ciphertext (associated data): a ciphertext of
        one kind (evidence) does not open as another (an address)."""
        nonce = os.urandom(_NONCE)
        head = self._current.to_bytes(2, "big")
        body = self._aeads[self._current].encrypt(nonce, plain, head + context)
        return head + nonce + body

    def open_bytes(self, sealed: bytes, context: bytes = b"") -> bytes:
        if len(sealed) < 2 + _NONCE + _TAG:
            raise SealError("ciphertext is too short")
        head, nonce, body = sealed[:2], sealed[2 : 2 + _NONCE], sealed[2 + _NONCE :]
        aead = self._aeads.get(int.from_bytes(head, "big"))
        if aead is None:
            raise SealError("sealed with a key that is no longer held")
        try:
            return aead.decrypt(nonce, body, head + context)
        except InvalidTag as exc:
            raise SealError("ciphertext does not verify") from exc

    def seal_evidence(self, canonical_json: bytes) -> bytes:
        return self.seal_bytes(canonical_json, EVIDENCE)

    def seal_evidence_batch(self, canonical_jsons: Sequence[bytes]) -> list[bytes]:
        """`seal_evidence` of each, as one loop with one read of the system's random
        source for every nonce: an import seals a million."""
        nonces = os.urandom(_NONCE * len(canonical_jsons))
        head = self._current.to_bytes(2, "big")
        encrypt, associated = self._aeads[self._current].encrypt, head + EVIDENCE
        sealed = []
        for at, plain in enumerate(canonical_jsons):
            nonce = nonces[at * _NONCE : (at + 1) * _NONCE]
            sealed.append(head + nonce + encrypt(nonce, plain, associated))
        return sealed

    def open_evidence(self, sealed: bytes) -> bytes:
        """The canonical JSON that was sealed; SealError if no held key opens it."""
        return self.open_bytes(sealed, EVIDENCE)
