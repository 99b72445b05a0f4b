"""The pieces that read a JSON check list as a stream, without a database."""

from __future__ import annotations

import io
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suppression.api.check_lists import UnicodeGuard
from suppression.api.sealed_spool import SealedSpool
from suppression.domain.errors import FirstErrors

LONE = re.compile("[\ud800-\udfff]")


class Trickle(io.RawIOBase):
    """A stream that answers each read with at most `step` bytes, as a socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(self._step, size if size >= 0 else self._step))


def guarded(body: bytes, step: int) -> tuple[bytes, bool]:
    guard = UnicodeGuard(Trickle(body, step))
    out = b""
    while block := guard.read(7):
        out += block
    return out, guard.mended


@pytest.mark.parametrize("step", [1, 2, 5, 6, 11, 12, 13, 4096])
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (rb'["a\ud800b"]', rb'["a\uffffb"]'),
        (rb'["a\ud83d\ude00b"]', rb'["a\ud83d\ude00b"]'),
        (rb'["a\\ud800b"]', rb'["a\\ud800b"]'),
        (rb'["a\\\ud800b"]', rb'["a\\\uffffb"]'),
        (rb'["\udc00\ud800"]', rb'["\uffff\uffff"]'),
        (rb'["\ud800\ud800\udc00"]', rb'["\uffff\ud800\udc00"]'),
        (rb'["\\\\\\\udc00"]', rb'["\\\\\\\uffff"]'),
    ],
)
def test_only_unpaired_surrogate_escapes_are_mended(body, expected, step):
    assert guarded(body, step) == (expected, body != expected)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(codec=None, blacklist_categories=())), max_size=8),
    st.integers(min_value=1, max_value=40),
)
def test_a_guarded_body_parses_as_sent_with_lone_surrogates_as_uffff(entries, step):
    body = json.dumps(entries).encode("ascii")
    out, mended = guarded(body, step)
    assert json.loads(out) == [LONE.sub("\uffff", entry) for entry in entries]
    assert mended == any(LONE.search(entry) for entry in entries)


def test_a_sealed_spool_gives_back_what_it_took_and_keeps_no_plaintext_on_disk(tmp_path):
    spool = SealedSpool(in_memory=1000)
    written = [f"user{i}@example.com,".encode() * 50 for i in range(400)]
    for block in written:
        spool.write(block)
    assert spool.spilled
    assert spool.size == sum(map(len, written))
    on_disk = spool._file  # the unlinked file: what an attacker with the disk reads
    assert on_disk is not None
    on_disk.flush()
    on_disk.seek(0)
    raw = on_disk.read()
    assert b"@example.com" not in raw
    assert len(raw) > 100_000
    assert b"".join(spool.blocks()) == b"".join(written)
    spool.close()
    assert on_disk.closed


def test_first_errors_keep_a_hundred_and_count_all():
    errors = FirstErrors()
    assert not errors
    for position in range(250):
        errors.add(position, "bad")
    listed = errors.as_dict()
    assert listed.pop("_total") == 250
    assert list(listed) == [str(n) for n in range(100)]
    assert errors.summary("rows are bad") == "250 rows are bad; the first 100 are listed"
