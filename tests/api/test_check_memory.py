"""A JSON check holds a bounded amount of memory, however long its list.

The body is parsed as it streams (api/check_lists.py), decided chunk by chunk
(services/checks/lists.py) and answered through sealed spools that move to disk
past 1 MiB (api/sealed_spool.py). The proof: the peak that Python allocates
while a list is checked (tracemalloc, in this process, with no helper processes)
stays about the same when the list is eight times longer. No clock is read.
"""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import replace
from typing import IO

CHUNK = 2_000  # entries decided at once: the bound is a few chunks' worth


class GeneratedBody(IO[bytes]):
    """`{"purpose", "addresses": [...]}` made as it is read: the test holds no body."""

    def __init__(self, count: int) -> None:
        self._parts = self._generate(count)
        self._pending = b""
        self._length = sum(len(part) for part in self._generate(count))
        self._position = 0  # only its length is sought (the test client's Content-Length)

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        self._position = self._length + offset if whence == 2 else offset
        return self._position

    @staticmethod
    def _generate(count: int):
        yield b'{"purpose":"email_marketing","addresses":['
        for start in range(0, count, 1_000):
            entries = (
                # Every hundredth is not an address, so the answer grows with the list.
                f'"not an address {i}"' if i % 100 == 0 else f'"member{i}@example.com"'
                for i in range(start, min(count, start + 1_000))
            )
            yield (("," if start else "") + ",".join(entries)).encode()
        yield b"]}"

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            part = next(self._parts, None)
            if part is None:
                break
            self._pending += part
        if size < 0:
            size = len(self._pending)
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def readable(self) -> bool:
        return True


def checked_peak(client, headers, count: int) -> tuple[int, dict]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        response = client.post(
            "/v1/checks",
            input_stream=GeneratedBody(count),
            content_type="application/json",
            headers=headers,
            buffered=False,
        )
        # The whole list is decided and the answer spooled before the view returns.
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    return peak, json.loads(b"".join(response.response))


def test_a_check_eight_times_longer_does_not_hold_eight_times_the_memory(make_settings, sender_for):
    settings = replace(make_settings(), check_chunk_size=CHUNK, check_processes=0)
    client, headers = sender_for(settings)
    checked_peak(client, headers, 1_000)  # first-request set-up is not the list's
    small, small_answer = checked_peak(client, headers, 20_000)
    large, large_answer = checked_peak(client, headers, 160_000)
    assert (small_answer["total"], small_answer["invalid"]) == (20_000, 200)
    assert (large_answer["total"], large_answer["invalid"]) == (160_000, 1_600)
    assert large_answer["suppressed"][-1] == {
        "email": "not an address 159900",
        "reason": "invalid",
    }
    # Held per address, the large list's 140,000 extra entries would add over 10 MB.
    assert large < small * 1.5, (small, large)
