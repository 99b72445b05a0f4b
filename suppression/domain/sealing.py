"""Sealing addresses at rest: AES-GCM ciphertext with the key id in front.

The keyed index finds a subject; the sealed address is only opened for export
and for destinations that need the address itself. Several keys may be held so
that a new key can be introduced while old ciphertexts stay readable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12
_TAG = 16


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

    def seal(self, canonical: str) -> bytes:
        nonce = os.urandom(_NONCE)
        head = self._current.to_bytes(2, "big")
        body = self._aeads[self._current].encrypt(nonce, canonical.encode("utf-8"), head)
        return head + nonce + body

    def open(self, sealed: bytes) -> str:
        if len(sealed) < 2 + _NONCE + _TAG:
            raise SealError("ciphertext is too short")
        head, nonce, body = sealed[:2], sealed[2 : 2 + _NONCE], sealed[2 + _NONCE :]
        aead = self._aeads.get(int.from_bytes(head, "big"))
        if aead is None:
            raise SealError("sealed with a key that is no longer held")
        try:
            return aead.decrypt(nonce, body, head).decode("utf-8")
        except InvalidTag as exc:
            raise SealError("ciphertext does not verify") from exc
