"""A check list as CSV: the one reader of `POST /v1/checks.csv`, the staff page's
upload and `suppression check FILE`, so all three check the same entries.

A header row names the column `email` and optionally `country` (any case, other
columns ignored); the delimiter is whatever `csv.Sniffer` finds among `, ; TAB |`
in the first lines (a spreadsheet in a German locale exports `;`), else a comma.
Only the delimiter is taken from the sniffer: quoting stays the spreadsheet
standard's, and spaces around an address are kept, as the check echoes each
address exactly as sent. The text is UTF-8, with or without a BOM; anything
else is refused with the nearest line. Rows are read as the bytes arrive and
never held together; an entry that is not an address is answered `invalid` by
the check, an unknown country hint is an error naming its line.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any, cast

from suppression.domain.errors import FirstErrors, InvalidInput, MalformedInput
from suppression.domain.jurisdictions import UnknownCountry
from suppression.domain.policy import Decision
from suppression.services.checks.hints import HintNormaliser
from suppression.services.checks.lists import CheckItem

SNIFF_CHARS = 64 * 1024  # the first lines, where the delimiter is guessed
DELIMITERS = ",;\t|"
RESULT_HEADER = ("email", "sendable", "reason")
# What a spreadsheet runs as a formula when a cell starts with it (OWASP's
# "CSV injection" list): an equals, plus, minus or at sign, a tab, a return.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class CsvList:
    """One CSV check list, read once: `entries()` yields (email, country hint)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.errors = FirstErrors()  # unknown country hints, by line
        self.rows = 0  # data rows read (blank lines are not rows)
        self.delimiter = ","

    def entries(self) -> Iterator[CheckItem]:
        counted = _NewlineCounter(self._stream)
        text = io.TextIOWrapper(cast(IO[bytes], counted), encoding="utf-8-sig", newline="")
        line = 1
        try:
            sample = text.read(SNIFF_CHARS)
            if sample and not sample.endswith(("\n", "\r")):
                sample += text.readline()  # the sample ends on a whole line
            self.delimiter = sniff_delimiter(sample)
            lines = itertools.chain(io.StringIO(sample, newline=""), text)
            reader = csv.reader(lines, delimiter=self.delimiter)
            email_at, country_at = _columns(next(reader, None))
            hint = HintNormaliser()
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue  # a blank line is not an address
                self.rows += 1
                email = row[email_at] if email_at < len(row) else ""
                country = None
                if country_at is not None and country_at < len(row):
                    try:
                        country = hint(row[country_at].strip())
                    except UnknownCountry as exc:
                        self.errors.add(line, str(exc))
                        continue
                yield (email, country)
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc, counted.line_of(exc)) from exc
        except csv.Error as exc:
            raise MalformedInput(f"malformed CSV near line {line + 1}: {exc}") from exc
        finally:
            text.detach()

    def raise_errors(self) -> None:
        """After the entries: the unknown country hints, if any, fail the check."""
        if self.errors:
            raise InvalidInput(
                self.errors.summary("unknown country hint(s)"), {"csv": self.errors.as_dict()}
            )


def sniff_delimiter(sample: str) -> str:
    """The sniffer's delimiter when the header it splits names `email`, else a comma."""
    header = sample.splitlines()[0] if sample else ""
    try:
        found = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","  # one column, or too little to judge
    if found != "," and "email" in _names(header, found) and "email" not in _names(header, ","):
        return found
    return ","


def _names(header: str, delimiter: str) -> list[str]:
    row = next(csv.reader([header], delimiter=delimiter), [])
    return [name.strip().lower() for name in row]


def _columns(header: list[str] | None) -> tuple[int, int | None]:
    if header is None:
        raise InvalidInput("the CSV is empty", {"csv": ["A header row with `email` is required."]})
    columns = [name.strip().lower() for name in header]
    if "email" not in columns:
        raise InvalidInput(
            "the CSV header has no `email` column", {"csv": {"1": ["No `email` column."]}}
        )
    return columns.index("email"), columns.index("country") if "country" in columns else None


class _NewlineCounter(io.RawIOBase):
    """The byte stream as the text layer reads it, counting its lines, so that a
    byte that is not UTF-8 is reported on its own line (the decoder reads ahead)."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner
        self._lines_before_last_read = 0
        self._lines = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self._lines_before_last_read = self._lines
        self._lines += data.count(b"\n")
        return len(data)

    def line_of(self, error: UnicodeDecodeError) -> int:
        """The line of the undecodable byte: the decoder failed on the last read."""
        data = error.object if isinstance(error.object, bytes) else b""
        return self._lines_before_last_read + data[: error.start].count(b"\n") + 1


def _not_utf8(error: UnicodeDecodeError, line: int) -> MalformedInput:
    data = error.object if isinstance(error.object, bytes) else b""
    if line == 1 and data.startswith(UTF16_BOMS):
        advice = "it is UTF-16 (Excel's \u201cUnicode text\u201d)"
    else:
        advice = "another encoding, such as Windows-1252 or Latin-1, was used"
    return MalformedInput(
        f"the CSV is not UTF-8 (line {line}): {advice}; save it as "
        "\u201cCSV UTF-8\u201d and try again",
        {"csv": [str(error)]},
    )


def result_row(email: str, decision: Decision) -> tuple[str, str, str]:
    """One line of the full answer: `email,sendable,reason`."""
    if decision.sendable:
        return (email, "true", "")
    reason = decision.reason_code
    assert reason is not None, "a refusal always has its reason"
    return (email, "false", reason)


def neutralise(cell: str) -> str:
    """A cell a spreadsheet would run as a formula, quoted as text (a leading `'`)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


class Tally:
    """The counts of one check: all, sendable, and suppressed per reason."""

    def __init__(self) -> None:
        self.total = 0
        self.sendable = 0
        self.reasons: Counter[str] = Counter()

    def add(self, decision: Decision) -> None:
        self.total += 1
        if decision.sendable:
            self.sendable += 1
        else:
            self.reasons[decision.reason_code or "invalid"] += 1

    @property
    def suppressed(self) -> int:
        return self.total - self.sendable
