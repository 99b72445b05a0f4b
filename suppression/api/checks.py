"""POST /v1/checks (JSON) and POST /v1/checks.csv (CSV in, CSV out).

Both read the list as it arrives (api/check_lists.py for JSON, the csv module for
CSV) and write the answer in full before its first byte goes out: a bad entry
late in a list still gets a clean 4xx, and a client that sends its whole body
before reading cannot deadlock against us. The answer waits in sealed spools
(api/sealed_spool.py): in memory up to 1 MiB, past that encrypted on disk under
a key only this request holds, never as plaintext addresses.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import ijson
from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint

from suppression.api.auth import protected
from suppression.api.check_lists import CheckRequest, json_errors
from suppression.api.fields import COUNTRY_CODES
from suppression.api.presenters import CSV_FIELD, csv_body, require_csv_body
from suppression.api.schemas import (
    CheckCsvQuerySchema,
    CheckQuerySchema,
    CheckRequestSchema,
    CheckResponseSchema,
)
from suppression.api.sealed_spool import SealedSpool
from suppression.app import current
from suppression.config.settings import Settings
from suppression.domain.errors import InvalidInput
from suppression.domain.policy import Decision
from suppression.observability import metrics
from suppression.services.checks.csv_lists import RESULT_HEADER, CsvList, Tally, result_row
from suppression.services.checks.lists import CheckItem, check_addresses
from suppression.services.consents.recording import check_purpose
from suppression.services.staff.api_keys import Role
from suppression.worker.check_helpers import HelperPool

blp = Blueprint("checks", __name__, url_prefix="/v1", description="Pre-send checks")

DEFAULT_PURPOSE = "email_marketing"
ANSWER_CHUNK = 10_000  # answer entries serialised at once into a spool
CSV_FLUSH_CHARS = 256 * 1024
CHECK_JSON_BODY = {
    "required": True,
    "content": {"application/json": {"schema": CheckRequestSchema}},
}
CHECK_CSV_BODY = csv_body(
    "A header row naming the column `email` and optionally `country` (`email` or "
    "`email,country`), then one address a line, with an optional country hint "
    "(ISO 3166-1 alpha-2, case-insensitive; empty: none). An "
    "unknown country fails the call (422, naming the lines); an entry that is not an "
    "address is answered `invalid`. Blank lines are skipped; the delimiter is the one "
    "`csv.Sniffer` finds among `,` `;` tab `|` (else a comma); UTF-8, a BOM allowed.",
    "^(?:email(?:\\r?\\n{field})*|email,country(?:\\r?\\n{field}(?:,(?:{codes})?)?)*)"
    "\\r?\\n?$".format(field=CSV_FIELD, codes="|".join(COUNTRY_CODES)),
    "email,country\nbob@example.com,\nli@example.com,CA\n",
)


@blp.route("/checks")
class Checks(MethodView):
    @protected(blp, Role.SENDER)
    @blp.arguments(CheckQuerySchema, location="query")
    @blp.doc(requestBody=CHECK_JSON_BODY)
    @blp.response(200, CheckResponseSchema)
    @blp.alt_response(400, response="DEFAULT_ERROR", description="Malformed JSON")
    @blp.alt_response(413, response="DEFAULT_ERROR", description="Over MAX_JSON_BYTES")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, query: dict[str, Any]) -> Response:
        """Check a list: the suppressed addresses with their reason, or every result.

        Entries are strings (an address as it stands in the list; one that is not
        an address is answered `invalid`) or objects `{"email", "country"?}`. Any
        other entry fails the call (422), naming its position: the first 100 are
        listed and `_total` counts them all.
        """
        if not request.is_json:
            raise InvalidInput(
                "the body is not JSON",
                {"json": {"addresses": ["Missing data for required field."]}},
            )
        settings = current.settings()
        answer = JsonAnswer(detail=query.get("detail") == "all")
        check = CheckRequest(request.stream)
        decided: Generator[tuple[CheckItem, Decision]] | None = None
        try:
            in_order = check.read_head()
            if not in_order:
                check.spool_entries()
            purpose = check_purpose(
                check.purpose or DEFAULT_PURPOSE, settings.purposes, allow_all=False
            )
            decided = _decide(settings, purpose, check.entries())
            reasons = answer.write(decided)
            if in_order:
                check.read_tail()
            check.raise_entry_errors()
        except ijson.JSONError as exc:
            answer.close()
            raise json_errors(exc) from exc
        except BaseException:
            answer.close()
            raise
        finally:
            if decided is not None:
                decided.close()  # its read transaction ends now, not when collected
            check.close()
        _count(purpose, reasons, answer.sendable)
        return answer.response(purpose)


class JsonAnswer:
    """The JSON answer, built in sealed spools while the list is decided."""

    def __init__(self, detail: bool) -> None:
        self.suppressed = SealedSpool()
        self.results = SealedSpool() if detail else None
        self.total = self.sendable = self.invalid = 0

    def write(self, decided: Iterable[tuple[CheckItem, Decision]]) -> Counter[str]:
        reasons: Counter[str] = Counter()
        suppressed: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        detail = self.results is not None
        for (email, _), decision in decided:
            self.total += 1
            if decision.sendable:
                self.sendable += 1
                reason = None  # most of a list: no reason to look up
            else:
                reason = decision.reason_code
                assert reason is not None, "a refusal always has its reason"
                reasons[reason] += 1
                suppressed.append({"email": email, "reason": reason})
                if reason == "invalid":
                    self.invalid += 1
                if len(suppressed) >= ANSWER_CHUNK:
                    _append(self.suppressed, suppressed)
            if detail:
                results.append({"email": email, "sendable": decision.sendable, "reason": reason})
                if len(results) >= ANSWER_CHUNK:
                    _append(self.results, results)
        _append(self.suppressed, suppressed)
        if self.results is not None:
            _append(self.results, results)
        return reasons

    def response(self, purpose: str) -> Response:
        head = json.dumps(
            {"purpose": purpose, "total": self.total, "sendable": self.sendable},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        parts: list[bytes | SealedSpool] = [
            head[:-1].encode() + b',"suppressed":[',
            self.suppressed,
            b'],"invalid":' + str(self.invalid).encode(),
        ]
        if self.results is not None:
            parts += [b',"results":[', self.results, b"]"]
        parts.append(b"}")
        length = sum(len(p) if isinstance(p, bytes) else p.size for p in parts)
        response = Response(_stream(parts, self.close), mimetype="application/json")
        response.content_length = length
        return response

    def close(self) -> None:
        self.suppressed.close()
        if self.results is not None:
            self.results.close()


def _append(spool: SealedSpool | None, entries: list[dict[str, Any]]) -> None:
    """Entries as the inside of a JSON array, after those written before."""
    if spool is None or not entries:
        return
    text = json.dumps(entries, ensure_ascii=False, separators=(",", ":"))[1:-1]
    spool.write((b"," if spool.size else b"") + text.encode())
    entries.clear()


def _stream(parts: list[bytes | SealedSpool], close: Any) -> Iterator[bytes]:
    # A generator: the server closes it when the client goes away, and the spools
    # are forgotten then as well.
    try:
        for part in parts:
            if isinstance(part, bytes):
                yield part
            else:
                yield from part.blocks()
    finally:
        close()


def _decide(
    settings: Settings, purpose: str, items: Iterable[CheckItem]
) -> Generator[tuple[CheckItem, Decision]]:
    session = current.read_session()
    try:
        yield from check_addresses(
            session,
            current.vault(),
            settings.policy,
            purpose,
            items,
            current.now(),
            settings.check_chunk_size,
            *_helpers(settings),
        )
    finally:
        session.rollback()  # nothing was written; end the read transaction now


def _helpers(settings: Settings) -> tuple[HelperPool | None, int]:
    """The helper processes for large lists, and the chunk size that uses them."""
    if settings.check_processes <= 0:
        return None, settings.check_parallel_min
    return current.runtime().helpers, settings.check_parallel_min


def _count(purpose: str, reasons: Counter[str], sendable: int) -> None:
    metrics.CHECKED.labels(purpose, "sendable").inc(sendable)
    for reason, count in reasons.items():
        metrics.CHECKED.labels(purpose, reason).inc(count)


@blp.route("/checks.csv")
class ChecksCsv(MethodView):
    @protected(blp, Role.SENDER)
    @blp.arguments(CheckCsvQuerySchema, location="query")
    @blp.doc(requestBody=CHECK_CSV_BODY)
    @blp.response(200, content_type="text/csv")
    @blp.alt_response(400, response="DEFAULT_ERROR", description="Malformed CSV or not UTF-8")
    @blp.alt_response(415, response="DEFAULT_ERROR", description="The body is not CSV")
    def post(self, query: dict[str, Any]) -> Response:
        """Check a CSV (header `email`, optionally `country`): `email,sendable,reason`.

        `only=sendable` answers just the `email` column: the cleaned list. Unknown
        country hints fail the call (422) naming their lines: the first 100 are
        listed and `_total` counts them all.
        """
        require_csv_body()
        settings = current.settings()
        purpose = check_purpose(query["purpose"], settings.purposes, allow_all=False)
        only = query["only"]
        spool = SealedSpool()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["email"] if only == "sendable" else RESULT_HEADER)
        listed = CsvList(request.stream)
        tally = Tally()
        decided = _decide(settings, purpose, listed.entries())
        try:
            for (email, _), decision in decided:
                tally.add(decision)
                if only == "all" or (only == "sendable") == decision.sendable:
                    writer.writerow([email] if only == "sendable" else result_row(email, decision))
                if buffer.tell() >= CSV_FLUSH_CHARS:
                    _flush(buffer, spool)
            _flush(buffer, spool)
            listed.raise_errors()
        except BaseException:
            spool.close()
            raise
        finally:
            decided.close()
        _count(purpose, tally.reasons, tally.sendable)
        response = Response(_stream([spool], spool.close), mimetype="text/csv")
        response.content_length = spool.size
        return response


def _flush(buffer: io.StringIO, spool: SealedSpool) -> None:
    spool.write(buffer.getvalue().encode("utf-8"))
    buffer.seek(0)
    buffer.truncate()
