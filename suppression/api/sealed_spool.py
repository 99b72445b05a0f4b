"""A write-then-read buffer for answers too large to hold in memory.

A check answer is written in full before its first byte goes out (a bad row late
in a list still gets a clean 4xx, and a client that sends its whole body before
reading cannot deadlock against us), and it holds every address checked. The
first `in_memory` bytes stay in memory; past that, blocks go to an unlinked
temporary file sealed with AES-GCM under a key made for this spool alone and
held only in this process's memory, so what reaches the disk cannot be read
back by anyone once the request ends, nor while it runs without the process.
"""

from __future__ import annotations

import io
import struct
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

IN_MEMORY_BYTES = 1024 * 1024  # most answers; a million-address one is 30-75 MB
BLOCK_BYTES = 256 * 1024
_LENGTH = struct.Struct(">I")


class SealedSpool:
    """Bytes in, the same bytes out, once, in order; `close` forgets them."""

    def __init__(self, in_memory: int | None = None) -> None:
        self._in_memory = IN_MEMORY_BYTES if in_memory is None else in_memory
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._pending = bytearray()
        self._file: IO[bytes] | None = None
        self._aead: AESGCM | None = None
        self._sealed_blocks = 0
        self.size = 0  # bytes written, all told

    @property
    def spilled(self) -> bool:
        return self._file is not None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self._pending += data
        if len(self._pending) >= BLOCK_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        block = bytes(self._pending)
        self._pending.clear()
        if self._file is None and self._kept_bytes + len(block) <= self._in_memory:
            self._kept.append(block)
            self._kept_bytes += len(block)
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        assert self._aead is not None
        # A counter nonce: never repeated under this spool's one-time key.
        nonce = self._sealed_blocks.to_bytes(12, "big")
        self._sealed_blocks += 1
        sealed = self._aead.encrypt(nonce, block, None)
        self._file.write(_LENGTH.pack(len(sealed)))
        self._file.write(sealed)

    def blocks(self) -> Iterator[bytes]:
        """The bytes written, in blocks; read once."""
        self._flush()
        while self._kept:
            yield self._kept.pop(0)
        if self._file is None:
            return
        assert self._aead is not None
        self._file.flush()
        self._file.seek(0)
        for number in range(self._sealed_blocks):
            (length,) = _LENGTH.unpack(self._file.read(_LENGTH.size))
            sealed = self._file.read(length)
            yield self._aead.decrypt(number.to_bytes(12, "big"), sealed, None)

    def close(self) -> None:
        self._kept.clear()
        self._pending.clear()
        self._aead = None
        if self._file is not None:
            self._file.close()
            self._file = None


class SealedUpload(io.RawIOBase):
    """A file part of a form upload, as Werkzeug's form parser spools it: written
    while the request arrives, rewound, then read once, sealed like a SealedSpool
    (a staff page's send list never reaches the disk as plain text)."""

    def __init__(self) -> None:
        super().__init__()
        self._spool = SealedSpool()
        self._blocks: Iterator[bytes] | None = None
        self._left = b""

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return self._blocks is None

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self._blocks is not None:
            raise io.UnsupportedOperation("the upload was read already")
        self._spool.write(bytes(data))
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        # The parser rewinds once, after the part ends; reading starts there.
        if offset != 0 or whence != io.SEEK_SET or self._blocks is not None:
            raise io.UnsupportedOperation("a sealed upload is read once, from its start")
        self._blocks = self._spool.blocks()
        return 0

    def readinto(self, buffer: Any) -> int:
        if self._blocks is None:
            self.seek(0)
        assert self._blocks is not None
        while not self._left:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._left = block
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size

    @property
    def size(self) -> int:
        return self._spool.size

    def close(self) -> None:
        self._spool.close()
        self._left = b""
        super().close()
