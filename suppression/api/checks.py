"""POST /v1/checks (JSON) and POST /v1/checks.csv (CSV in, CSV out)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from suppression import check_helpers, metrics, runtime
from suppression.api.auth import protected
from suppression.api.fields import COUNTRY_CODES
from suppression.api.presenters import CSV_FIELD, csv_body, require_csv_body
from suppression.api.schemas import (
    CheckCsvQuerySchema,
    CheckQuerySchema,
    CheckRequestSchema,
    CheckResponseSchema,
)
from suppression.check_helpers import HelperPool
from suppression.config import Settings
from suppression.domain.jurisdictions import UnknownCountry, normalise_country
from suppression.errors import InvalidInput, MalformedInput
from suppression.services.api_keys import Role
from suppression.services.checks import CheckItem, check_addresses
from suppression.services.consents import check_purpose

blp = Blueprint("checks", __name__, url_prefix="/v1", description="Pre-send checks")

SPOOL_IN_MEMORY = 8 * 1024 * 1024  # past this the answer waits on disk, not in memory
CHECK_CSV_BODY = csv_body(
    "A header row naming the column `email` and optionally `country` (`email` or "
    "`email,country`), then one address a line, with an optional country hint "
    "(ISO 3166-1 alpha-2, case-insensitive; empty: none). An "
    "unknown country fails the call (422, naming the lines); an entry that is not an "
    "address is answered `invalid`. Blank lines are skipped; UTF-8, a BOM allowed.",
    "^(?:email(?:\\r?\\n{field})*|email,country(?:\\r?\\n{field}(?:,(?:{codes})?)?)*)"
    "\\r?\\n?$".format(field=CSV_FIELD, codes="|".join(COUNTRY_CODES)),
    "email,country\nbob@example.com,\nli@example.com,CA\n",
)


class HintNormaliser:
    """Country hints repeat across a list; each distinct text is parsed once."""

    def __init__(self) -> None:
        self._known: dict[str, str | None] = {}

    def __call__(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise UnknownCountry(f"country must be a string, not {type(value).__name__}")
        try:
            country = self._known[value]
        except KeyError:
            try:
                country = normalise_country(value)
            except UnknownCountry:
                country = None
            self._known[value] = country
        if country is None:
            raise UnknownCountry(f"unknown country code {value!r}")
        return country


def _json_items(addresses: list[Any]) -> list[CheckItem]:
    """(email as sent, hint) per entry; an unknown country fails the call, naming it."""
    hint = HintNormaliser()
    items: list[CheckItem] = []
    errors: dict[int, list[str]] = {}
    append = items.append
    for position, entry in enumerate(addresses):
        if isinstance(entry, str):
            append((entry, None))
        elif isinstance(entry, dict):
            try:
                append((entry.get("email"), hint(entry.get("country"))))
            except UnknownCountry as exc:
                errors[position] = [str(exc)]
        else:
            append((entry, None))  # decided as invalid, echoed as sent
    if errors:
        raise InvalidInput(
            f"{len(errors)} unknown country hint(s)", {"json": {"addresses": _first(errors)}}
        )
    return items


def _first(errors: dict[int, list[str]], limit: int = 100) -> dict[int, list[str]]:
    return dict(list(errors.items())[:limit])


@blp.route("/checks")
class Checks(MethodView):
    @protected(blp, Role.SENDER)
    @blp.arguments(CheckQuerySchema, location="query")
    @blp.arguments(CheckRequestSchema)
    @blp.response(200, CheckResponseSchema)
    def post(self, query: dict[str, Any], data: dict[str, Any]) -> Response:
        """Check a list: the suppressed addresses with their reason, or every result."""
        settings = runtime.settings()
        purpose = check_purpose(data["purpose"], settings.purposes, allow_all=False)
        items = _json_items(data["addresses"])
        detail = query.get("detail") == "all"
        sendable = invalid = 0
        suppressed: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        reasons: Counter[str] = Counter()
        session = runtime.read_session()
        for (email, _), decision in check_addresses(
            session,
            runtime.vault(),
            settings.policy,
            purpose,
            items,
            runtime.now(),
            settings.check_chunk_size,
            *_helpers(settings),
        ):
            reason = decision.reason_code
            if decision.sendable:
                sendable += 1
            else:
                reasons[reason] += 1
                suppressed.append({"email": email, "reason": reason})
                if reason == "invalid":
                    invalid += 1
            if detail:
                results.append({"email": email, "sendable": decision.sendable, "reason": reason})
        session.rollback()  # nothing was written; end the read transaction now
        _count(purpose, reasons, sendable)
        body: dict[str, Any] = {
            "purpose": purpose,
            "total": len(items),
            "sendable": sendable,
            "suppressed": suppressed,
            "invalid": invalid,
        }
        if detail:
            body["results"] = results
        return Response(_json_bytes(body), mimetype="application/json")


def _json_bytes(body: dict[str, Any]) -> bytes:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # An entry echoed as sent holds a lone surrogate (JSON "\ud800"), which has
        # no UTF-8 form: escaped, the answer echoes it exactly as it was sent.
        return json.dumps(body, separators=(",", ":")).encode("ascii")


def _helpers(settings: Settings) -> tuple[HelperPool | None, int]:
    """The helper processes for large lists, and the chunk size that uses them."""
    if settings.check_processes <= 0:
        return None, settings.check_parallel_min
    return check_helpers.pool(settings.check_processes), settings.check_parallel_min


def _count(purpose: str, reasons: Counter[str], sendable: int) -> None:
    metrics.CHECKED.labels(purpose, "sendable").inc(sendable)
    for reason, count in reasons.items():
        metrics.CHECKED.labels(purpose, reason).inc(count)


def _csv_items(stream: IO[bytes], errors: dict[int, list[str]]) -> Iterator[CheckItem]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    line = 1
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidInput(
                "the CSV is empty", {"csv": ["A header row with `email` is required."]}
            )
        columns = [name.strip().lower() for name in header]
        if "email" not in columns:
            raise InvalidInput(
                "the CSV header has no `email` column", {"csv": {"1": ["No `email` column."]}}
            )
        email_at = columns.index("email")
        country_at = columns.index("country") if "country" in columns else None
        hint = HintNormaliser()
        for line, row in enumerate(reader, start=2):
            if not row:
                continue  # a blank line is not an address
            email = row[email_at] if email_at < len(row) else ""
            country = None
            if country_at is not None and country_at < len(row):
                try:
                    country = hint(row[country_at].strip())
                except UnknownCountry as exc:
                    errors[line] = [str(exc)]
                    continue
            yield (email, country)
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"the CSV is not UTF-8 (near line {line + 1})", {"csv": [str(exc)]}
        ) from exc
    except csv.Error as exc:
        raise MalformedInput(f"malformed CSV near line {line + 1}: {exc}") from exc
    finally:
        text.detach()


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

        `only=sendable` answers just the `email` column: the cleaned list.
        """
        require_csv_body()
        settings = runtime.settings()
        purpose = check_purpose(query["purpose"], settings.purposes, allow_all=False)
        only = query["only"]
        # The whole answer is written before the first byte goes out: a client that
        # sends the whole body before reading cannot deadlock against us, and a bad
        # row later in the file still gets a clean 4xx.
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by the generator)
            max_size=SPOOL_IN_MEMORY, mode="w+", encoding="utf-8", newline=""
        )
        writer = csv.writer(spool, lineterminator="\n")
        writer.writerow(["email"] if only == "sendable" else ["email", "sendable", "reason"])
        errors: dict[int, list[str]] = {}
        reasons: Counter[str] = Counter()
        sendable = 0
        session = runtime.read_session()
        try:
            for (email, _), decision in check_addresses(
                session,
                runtime.vault(),
                settings.policy,
                purpose,
                _csv_items(request.stream, errors),
                runtime.now(),
                settings.check_chunk_size,
                *_helpers(settings),
            ):
                if decision.sendable:
                    sendable += 1
                    if only != "suppressed":
                        writer.writerow([email] if only == "sendable" else [email, "true", ""])
                else:
                    reasons[decision.reason_code] += 1
                    if only != "sendable":
                        writer.writerow([email, "false", decision.reason_code])
            if errors:
                raise InvalidInput(
                    f"{len(errors)} unknown country hint(s)", {"csv": _first(errors)}
                )
        except BaseException:
            spool.close()
            raise
        finally:
            session.rollback()
        _count(purpose, reasons, sendable)
        spool.seek(0)
        return Response(stream_with_context(_drain(spool)), mimetype="text/csv")


def _drain(spool: IO[str]) -> Iterator[str]:
    try:
        while block := spool.read(256 * 1024):
            yield block
    finally:
        spool.close()
