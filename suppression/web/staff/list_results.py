"""The answer of a staff list check, held for the session that uploaded it.

The full answer (`email,sendable,reason` for every row, in the list's order) is
written once, while the list is checked, to a file in the instance folder,
sealed block by block with AES-GCM under a key made for this answer alone. The
key travels only in the staff member's signed session cookie, so the file is
unreadable without that session, and both downloads are read from it: the list
is checked once. The file is deleted when the same person checks another list,
on sign-out, when its session asks for it past KEEP_SECONDS, and by the next
check of anyone once it is older than that (a session never seen again).
"""

from __future__ import annotations

import base64
import io
import os
import secrets
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import session

from suppression.app import current

FOLDER = "list-checks"
RESULT_KEY = "list_check"  # in the session: the key, the id and the counts
KEEP_SECONDS = 3600  # an hour to download the answers, then it is gone
BLOCK_BYTES = 256 * 1024
_LENGTH = struct.Struct(">I")


def results_folder(instance_path: Path) -> Path:
    folder = instance_path / FOLDER
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


class HeldResult:
    """The sealed answer file of one check: written once, then read any times."""

    def __init__(self, folder: Path, result_id: str, key: bytes) -> None:
        if not result_id.isalnum():  # it names a file: never a path
            raise ValueError("not a result id")
        self.path = folder / f"{result_id}.sealed"
        self.result_id = result_id
        self.key = key
        self._aead = AESGCM(key)
        self._pending = bytearray()
        self._blocks = 0
        self._file: IO[bytes] | None = None

    @classmethod
    def create(cls, folder: Path) -> HeldResult:
        held = cls(folder, secrets.token_hex(16), AESGCM.generate_key(bit_length=256))
        descriptor = os.open(held.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        held._file = os.fdopen(descriptor, "wb")
        return held

    @classmethod
    def from_session(cls, folder: Path, data: Any) -> HeldResult | None:
        if not isinstance(data, dict):
            return None
        try:
            key = base64.urlsafe_b64decode(str(data["key"]))
            held = cls(folder, str(data["id"]), key)
        except (KeyError, ValueError):
            return None
        return held if held.path.exists() else None

    def session_data(self) -> dict[str, str]:
        return {"id": self.result_id, "key": base64.urlsafe_b64encode(self.key).decode()}

    def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= BLOCK_BYTES:
            self._seal()

    def finish(self) -> None:
        self._seal()
        assert self._file is not None
        self._file.close()
        self._file = None

    def _seal(self) -> None:
        if not self._pending:
            return
        assert self._file is not None, "a held result is written once"
        # A counter nonce under a key used for this file alone; the id binds each
        # block to its file, the number to its place.
        sealed = self._aead.encrypt(self._nonce(self._blocks), bytes(self._pending), self._aad())
        self._blocks += 1
        self._pending.clear()
        self._file.write(_LENGTH.pack(len(sealed)))
        self._file.write(sealed)

    def blocks(self) -> Iterator[bytes]:
        """The answer's bytes, in order; a changed or cut file stops with an error."""
        with self.path.open("rb") as file:
            number = 0
            while head := file.read(_LENGTH.size):
                (length,) = _LENGTH.unpack(head)
                sealed = file.read(length)
                try:
                    yield self._aead.decrypt(self._nonce(number), sealed, self._aad())
                except InvalidTag as exc:
                    raise OSError("the held list check answer is damaged") from exc
                number += 1

    def text(self) -> io.TextIOWrapper:
        """The answer as text, for the csv module."""
        raw = _BlockStream(self.blocks())
        return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8", newline="")

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)

    def _nonce(self, number: int) -> bytes:
        return number.to_bytes(12, "big")

    def _aad(self) -> bytes:
        return self.result_id.encode()


class _BlockStream(io.RawIOBase):
    def __init__(self, blocks: Iterator[bytes]) -> None:
        super().__init__()
        self._blocks = blocks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._left = block
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


def sweep(folder: Path, keep_seconds: int = KEEP_SECONDS) -> None:
    """Delete answers older than `keep_seconds`, whoever's they were."""
    oldest = time.time() - keep_seconds
    for path in folder.glob("*.sealed"):
        try:
            if path.stat().st_mtime < oldest:
                path.unlink(missing_ok=True)
        except FileNotFoundError:
            continue  # another worker swept it first


def held_result() -> HeldResult | None:
    """The session's answer while it may still be read; an older one is deleted."""
    data = session.get(RESULT_KEY)
    if not isinstance(data, dict):
        return None
    held = HeldResult.from_session(results_folder(current.settings().instance_path), data)
    if held is None or current.now().timestamp() - float(data.get("at", 0)) > KEEP_SECONDS:
        if held is not None:
            held.discard()
        session.pop(RESULT_KEY, None)
        return None
    return held


def forget_held() -> None:
    """The session's answer is deleted (a new check, sign-out)."""
    if session.get(RESULT_KEY) is None:
        return
    held = held_result()
    if held is not None:
        held.discard()
    session.pop(RESULT_KEY, None)
