"""Rows of a suppression list to import: CSV text in, validated rows or errors out.

Each row is checked on its own (address or SHA-256, status, purpose, country,
time); a bad one becomes (line, what is wrong) and never reaches the writer
(services/imports/importer.py). Rows are tuples of plain values: an import reads a million.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from operator import itemgetter
from typing import IO, NamedTuple

from suppression.domain.addresses import canonicalise
from suppression.domain.errors import InvalidInput, MalformedInput
from suppression.domain.jurisdictions import UnknownCountry, normalise_country
from suppression.domain.policy import ALL_PURPOSES, ConsentStatus

COLUMNS = ("email", "email_sha256", "status", "purpose", "country", "occurred_at", "source")
_HEX64 = re.compile(r"[0-9a-f]{64}")
OPTED_OUT = ConsentStatus.OPTED_OUT
OPTED_IN = ConsentStatus.OPTED_IN
_STATUS = {"": OPTED_OUT, "opted_out": OPTED_OUT, "opted_in": OPTED_IN}


class ImportRow(NamedTuple):
    line: int
    canonical: str | None  # a plain row
    sha256: bytes | None  # a hashed row
    status: ConsentStatus
    purpose: str
    country: str | None
    occurred_at: datetime
    source: str


class RowReader:
    """CSV text → ImportRow or (line, error), one row at a time."""

    def __init__(self, purposes: tuple[str, ...], now: datetime, default_source: str):
        self.purposes = purposes
        self.now = now
        self.default_source = default_source
        self._countries: dict[str, str] = {}
        self._times: dict[str, datetime | str] = {}

    def _time(self, when: str) -> datetime | str:
        """The time of an `occurred_at` text, or what is wrong with it; remembered,
        as exports repeat their times (a bounded memory: forgotten at 10,000)."""
        if len(self._times) >= 10_000:
            self._times.clear()
        try:
            occurred_at = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            self._times[when] = "occurred_at is not an ISO 8601 time"
            return self._times[when]
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=UTC)
        self._times[when] = (
            "occurred_at is in the future" if occurred_at > self.now else occurred_at
        )
        return self._times[when]

    def read(self, text: IO[str]) -> Iterator[ImportRow | tuple[int, str]]:
        reader = csv.reader(text)
        line = 1
        try:
            header = next(reader, None)
            if header is None:
                raise InvalidInput("the CSV is empty", {"csv": ["A header row is required."]})
            columns = [name.strip().lower() for name in header]
            if "email" not in columns and "email_sha256" not in columns:
                raise InvalidInput(
                    "the CSV needs an `email` or an `email_sha256` column",
                    {"csv": {"1": ["No `email` or `email_sha256` column."]}},
                )
            # Columns the file lacks read the empty string appended to every row.
            width = len(columns)
            pick = itemgetter(*(columns.index(n) if n in columns else width for n in COLUMNS))
            row = self._row
            for line, values in enumerate(reader, start=2):
                if not "".join(values).strip():
                    continue  # a blank line
                if len(values) < width:
                    values += [""] * (width - len(values))
                values.append("")
                yield row(line, pick(values))
        except UnicodeDecodeError as exc:
            raise MalformedInput(f"the CSV is not UTF-8 (near line {line + 1})") from exc
        except csv.Error as exc:
            raise MalformedInput(f"malformed CSV near line {line + 1}: {exc}") from exc

    def _row(self, line: int, picked: tuple[str, ...]) -> ImportRow | tuple[int, str]:
        email, hashed, status_text, purpose, country, when, source = picked
        email, hashed, status_text, purpose = (
            email.strip(),
            hashed.strip(),
            status_text.strip(),
            purpose.strip(),
        )
        country, when, source = country.strip(), when.strip(), source.strip()
        canonical = sha256 = None
        if email:
            canonical = canonicalise(email)
            if canonical is None:
                return line, "not a valid email address"
        elif hashed:
            hashed = hashed.lower()
            if not _HEX64.fullmatch(hashed):
                return line, "email_sha256 must be 64 hexadecimal characters"
            sha256 = bytes.fromhex(hashed)
        else:
            return line, "no email or email_sha256"
        status = _STATUS.get(status_text)
        if status is None:
            return line, "status must be opted_in or opted_out"
        if sha256 is not None and status != OPTED_OUT:
            return line, "a hashed row can only suppress (status opted_out)"
        purpose = purpose or ALL_PURPOSES
        if purpose not in self.purposes and purpose != ALL_PURPOSES:
            return line, f"unknown purpose {purpose!r}"
        if country:
            known = self._countries.get(country)
            if known is None:
                try:
                    known = self._countries[country] = normalise_country(country)
                except UnknownCountry:
                    return line, f"unknown country {country!r}"
            country = known
        occurred_at = self.now
        if when:
            known_time = self._times.get(when)
            if known_time is None:
                known_time = self._time(when)
            if isinstance(known_time, str):
                return line, known_time
            occurred_at = known_time
        if "\x00" in source:
            # PostgreSQL stores no NUL in text (the strict UTF-8 decoding of the
            # file already refuses surrogates); every other column refuses it above.
            return line, "source contains a NUL character"
        source = (source or self.default_source)[:100]
        return ImportRow(
            line, canonical, sha256, status, purpose, country or None, occurred_at, source
        )
