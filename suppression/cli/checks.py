"""`suppression check FILE`: the check of `POST /v1/checks.csv`, from a shell.

The same reader (services/checks/csv_lists.py) and the same check
(services/checks/lists.py) as the API, on a read session of the command's
Runtime (with its helper processes for a large list), and the same bytes out.
A file named with `-o` appears only when the whole list was checked: the answer
is written beside it and renamed into place, so a bad row late in a list leaves
no half answer behind.
"""

from __future__ import annotations

import csv
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from suppression.domain.policy import Reason
from suppression.runtime import Runtime
from suppression.services.checks.csv_lists import RESULT_HEADER, CsvList, Tally, result_row
from suppression.services.checks.lists import check_addresses

REASON_ORDER = {reason.value: n for n, reason in enumerate(Reason)}
FLUSH_CHARS = 256 * 1024


@contextmanager
def answer_file(output: str) -> Iterator[IO[bytes]]:
    """Standard output for `-`; else a file that appears only when all went well."""
    if output == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(output)
    descriptor, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def write_check(
    runtime: Runtime, listed: CsvList, purpose: str, only: str, out: IO[bytes]
) -> Tally:
    """Check the list and write the answer as `POST /v1/checks.csv?only=` does."""
    settings = runtime.settings
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["email"] if only == "sendable" else RESULT_HEADER)
    tally = Tally()
    with runtime.sessions() as session:
        decided = check_addresses(
            session,
            runtime.vault,
            settings.policy,
            purpose,
            listed.entries(),
            runtime.clock(),
            settings.check_chunk_size,
            runtime.helpers,
            settings.check_parallel_min,
        )
        try:
            for (email, _), decision in decided:
                tally.add(decision)
                if only == "all" or (only == "sendable") == decision.sendable:
                    writer.writerow([email] if only == "sendable" else result_row(email, decision))
                if buffer.tell() >= FLUSH_CHARS:
                    out.write(buffer.getvalue().encode("utf-8"))
                    buffer.seek(0)
                    buffer.truncate()
            listed.raise_errors()
        finally:
            decided.close()
            session.rollback()  # a check writes nothing
    out.write(buffer.getvalue().encode("utf-8"))
    return tally
