"""Reading a JSON check request entry by entry: `{"purpose", "addresses": [...]}`.

The body is parsed as it arrives (ijson over yajl), never as one tree: a list of
two million `0`s or sixty megabytes of `"a",` costs a fixed amount of memory,
not gigabytes. Entries are checked for their type while they stream; a wrong
one is an error by position (the first 100 listed, all counted), and it is
never held. When `purpose` comes before `addresses`, entries go straight to the
check; otherwise (`purpose` later, or left to its default) they wait, sealed,
in a spool until the object ends and the purpose is known.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator
from typing import IO, Any

import ijson

from suppression.api.sealed_spool import SealedSpool
from suppression.domain.errors import FirstErrors, InvalidInput, MalformedInput
from suppression.domain.jurisdictions import UnknownCountry
from suppression.domain.text import UNSTORABLE_MESSAGE, is_storable
from suppression.services.checks.hints import HintNormaliser
from suppression.services.checks.lists import CheckItem

READ_BYTES = 256 * 1024
SPOOLED_ENTRIES = 20_000  # entries per sealed block while the purpose is not known
FIELDS = ("purpose", "addresses")
SCALARS = frozenset(("string", "number", "boolean", "null"))
NOT_AN_ENTRY = "Must be a string, or an object with `email` and optionally `country`."


# A \uD800-\uDFFF escape. yajl reads an unpaired one as "?", which would check
# `jane\ud800@x` as the address `jane?@x`. The guard below mends each unpaired
# one into \uffff (a noncharacter, the same six bytes) before yajl sees it, and
# a string holding U+FFFF is then refused by name or position, as the rest of
# the API refuses a lone surrogate (domain/text.py).
_SURROGATE = re.compile(rb"(\\+)u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LOW = re.compile(rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_HOLD = 12  # bytes held back from yajl: room to see the low half of a pair
MENDED = "\uffff"
LONE_SURROGATE = "Contains a lone surrogate (\\ud800-\\udfff): not Unicode text."


class UnicodeGuard:
    """A byte stream whose unpaired surrogate escapes read as \\uffff."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._held = b""
        self._odd_backslashes = False  # what went out ends in an odd run of them
        self.mended = False

    def read(self, size: int = READ_BYTES) -> bytes:
        if size == 0:
            # ijson asks for nothing to learn the stream's type; Werkzeug's input
            # stream takes a read of nothing for a client that went away.
            return b""
        while True:
            data = self._stream.read(size)
            buffer = bytearray(self._held + data)
            end = len(buffer) if not data else len(buffer) - _HOLD
            if end > 0 or not data:
                break
            self._held = bytes(buffer)  # too little to judge yet: read on
        if b"\\u" in buffer:
            end = self._mend(buffer, end)
        out = bytes(buffer[:end])
        self._held = bytes(buffer[end:])
        trailing = len(out) - len(out.rstrip(b"\\"))
        odd = trailing % 2 == 1
        self._odd_backslashes = odd != self._odd_backslashes if trailing == len(out) else odd
        return out

    def _mend(self, buffer: bytearray, end: int) -> int:
        """Mend the escapes that start before `end`; the new end keeps pairs whole."""
        paired_until = 0
        for match in _SURROGATE.finditer(buffer):
            escape = match.end(1) - 1  # the backslash that starts the escape
            if escape >= end:
                break
            backslashes = len(match.group(1))
            if match.start(1) == 0 and self._odd_backslashes:
                backslashes += 1
            if backslashes % 2 == 0 or escape < paired_until:
                continue  # an escaped backslash and a letter u, or a pair's low half
            if buffer[escape + 3] in b"89abAB" and _LOW.match(buffer, escape + 6):
                paired_until = escape + 12
                end = max(end, paired_until)
                continue
            buffer[escape : escape + 6] = b"\\uffff"
            self.mended = True
            end = max(end, escape + 6)
        return end


class CheckRequest:
    """One JSON check request, read once: `purpose`, then the entries."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._guard = UnicodeGuard(stream)
        self._events = ijson.basic_parse(self._guard, buf_size=READ_BYTES)
        self.errors = FirstErrors()  # per entry position
        self.field_errors: dict[str, list[str]] = {}
        self.purpose: str | None = None
        self.total = 0
        self._seen: set[str] = set()
        self._spool: SealedSpool | None = None
        self._hint = HintNormaliser()

    # The object around the list ---------------------------------------------

    def read_head(self) -> bool:
        """Read up to the list; True when its entries can be read in order now,
        False when the purpose is not known yet (`spool_entries` then)."""
        if self._next()[0] != "start_map":
            raise InvalidInput("The body must be a JSON object.", {"json": ["Not an object."]})
        return self._read_fields(until_addresses=True)

    def spool_entries(self) -> None:
        """Keep the entries, sealed, until the rest of the object names the purpose."""
        spool = self._spool = SealedSpool()
        batch: list[CheckItem] = []
        for item in self._entries():
            batch.append(item)
            if len(batch) >= SPOOLED_ENTRIES:
                spool.write(_framed(batch))
                batch = []
        if batch:
            spool.write(_framed(batch))
        self.read_tail()

    def read_tail(self) -> None:
        """The fields after the list, to the end of the body."""
        self._read_fields(until_addresses=False)

    def entries(self) -> Iterator[CheckItem]:
        """The list's entries, each as (email, country hint), in input order."""
        if self._spool is None:
            yield from self._entries()
            return
        try:
            for block in _unframed(self._spool.blocks()):
                yield from block
        finally:
            self._spool.close()

    def raise_entry_errors(self) -> None:
        if self.errors:
            raise InvalidInput(
                self.errors.summary("entries are not valid"),
                {"json": {"addresses": self.errors.as_dict()}},
            )

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()

    def _read_fields(self, until_addresses: bool) -> bool:
        while True:
            event, value = self._next()
            if event == "end_map":
                if until_addresses:
                    self.field_errors["addresses"] = ["Missing data for required field."]
                self._raise_field_errors()
                self._finish()
                return False
            name = value  # a map_key
            if name in self._seen:
                self.field_errors[name] = ["Give this field once."]
                self._skip(self._next()[0])
                continue
            self._seen.add(name)
            if name == "purpose":
                event, value = self._next()
                if event == "string" and self._is_text(value) and is_storable(value):
                    self.purpose = value
                elif event == "string":
                    self.field_errors["purpose"] = [UNSTORABLE_MESSAGE]
                else:
                    self.field_errors["purpose"] = ["Not a valid string."]
                    self._skip(event)
            elif name == "addresses":
                event, _ = self._next()
                if event != "start_array":
                    self.field_errors["addresses"] = ["Must be a list."]
                    self._skip(event)
                    continue
                if not until_addresses:  # cannot happen: the list is read once
                    raise AssertionError("the list was reached twice")
                self._raise_field_errors()
                return "purpose" in self._seen
            else:
                self.field_errors[name] = ["Unknown field."]
                self._skip(self._next()[0])

    def _finish(self) -> None:
        """Past the object: nothing but white space may follow (the parser says)."""
        for _ in self._events:
            raise MalformedInput("Extra data after the JSON object.", {"json": ["Extra data."]})

    def _raise_field_errors(self) -> None:
        if self.field_errors:
            names = ", ".join(sorted(self.field_errors))
            raise InvalidInput(f"invalid request fields: {names}", {"json": self.field_errors})

    # The entries --------------------------------------------------------------

    def _entries(self) -> Iterator[CheckItem]:
        position = -1
        errors = self.errors
        for event, value in self._events:
            position += 1
            if event == "string":
                if self._guard.mended and MENDED in value:
                    errors.add(position, LONE_SURROGATE)
                else:
                    yield (value, None)
            elif event == "start_map":
                item = self._entry_object(position)
                if item is not None:
                    yield item
            elif event == "end_array":
                self.total = position
                return
            else:
                errors.add(position, NOT_AN_ENTRY)
                self._skip(event)
        raise MalformedInput("The JSON body ends early.", {"json": ["Invalid JSON body."]})

    def _entry_object(self, position: int) -> CheckItem | None:
        email: str | None = None
        country: Any = None
        problem: str | None = None
        while True:
            event, key = self._next()
            if event == "end_map":
                break
            event, value = self._next()
            if key == "email":
                if event == "string" and not self._is_text(value):
                    problem = problem or f"`email`: {LONE_SURROGATE}"
                elif event == "string":
                    email = value
                else:
                    problem = problem or "`email` must be a string."
            elif key == "country":
                if event == "string" or event == "null":
                    country = value
                else:
                    problem = problem or "`country` must be a string."
            self._skip(event)
        if problem is None and email is None:
            problem = "`email` is missing."
        if problem is None:
            try:
                return (email, self._hint(country))
            except UnknownCountry as exc:
                problem = str(exc)
        self.errors.add(position, problem)
        return None

    def _is_text(self, value: str) -> bool:
        return not (self._guard.mended and MENDED in value)

    # Events --------------------------------------------------------------------

    def _next(self) -> tuple[str, Any]:
        try:
            return next(self._events)
        except StopIteration:
            raise MalformedInput(
                "The JSON body ends early.", {"json": ["Invalid JSON body."]}
            ) from None

    def _skip(self, event: str) -> None:
        """Pass over the value that `event` opened, however deep (a depth count)."""
        if event in SCALARS:
            return
        depth = 1
        for event, _ in self._events:
            if event == "start_map" or event == "start_array":
                depth += 1
            elif event == "end_map" or event == "end_array":
                depth -= 1
                if depth == 0:
                    return
        raise MalformedInput("The JSON body ends early.", {"json": ["Invalid JSON body."]})


def _framed(batch: list[CheckItem]) -> bytes:
    # Our own tuples of str and None, read back only by this process from a spool
    # sealed under a key it alone holds.
    data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(8, "big") + data


def _unframed(blocks: Iterator[bytes]) -> Iterator[list[CheckItem]]:
    buffer = bytearray()
    for block in blocks:
        buffer += block
        while len(buffer) >= 8:
            length = int.from_bytes(buffer[:8], "big")
            if len(buffer) < 8 + length:
                break
            yield pickle.loads(bytes(buffer[8 : 8 + length]))  # trusted: see _framed
            del buffer[: 8 + length]


def json_errors(error: Exception) -> MalformedInput:
    return MalformedInput("Invalid JSON body.", {"json": [str(error).split("\n", 1)[0]]})
