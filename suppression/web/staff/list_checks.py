"""Check a list: a staff member uploads a send list (CSV) and downloads it cleaned.

The upload is read as Werkzeug's form parser spooled it (sealed: api/sealed_spool.py)
and checked row by row through the reader and the check of `POST /v1/checks.csv`
(services/checks/csv_lists.py, services/checks/lists.py), never held whole. The
full answer is written once to a sealed file held for the session
(web/staff/list_results.py); the counts go in the session, and both downloads are
read from that one answer. Cells a spreadsheet would run as a formula are quoted
in the downloads, which people open in Excel; the API's CSV stays as it was sent.
Each check is one access-log entry: who, when, the purpose and the row count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterator
from typing import IO, Any, cast

from flask import abort, flash, make_response, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from suppression.app import current
from suppression.domain.errors import SuppressionError
from suppression.domain.policy import Decision, Reason
from suppression.services.checks.csv_lists import (
    RESULT_HEADER,
    CsvList,
    Tally,
    neutralise,
    result_row,
)
from suppression.services.checks.lists import CheckItem, check_addresses
from suppression.services.staff.access_log import AccessChannel, Accessor, record_list_check
from suppression.web import CONTENT_SECURITY_POLICY
from suppression.web.staff.auth import actor
from suppression.web.staff.blueprint import bp
from suppression.web.staff.charts import NARROW_CHART_WIDTH, count_chart
from suppression.web.staff.list_results import (
    KEEP_SECONDS,
    RESULT_KEY,
    HeldResult,
    forget_held,
    held_result,
    results_folder,
    sweep,
)

FLUSH_CHARS = 256 * 1024
# The page's script (upload progress) and the request it sends; nothing else.
PAGE_POLICY = CONTENT_SECURITY_POLICY + "; script-src 'self'; connect-src 'self'"
REASON_TEXT = {
    Reason.INVALID: "not an email address",
    Reason.ERASED: "the person asked to be forgotten",
    Reason.COMPLAINED: "a spam complaint was recorded",
    Reason.BOUNCED: "a hard bounce was recorded",
    Reason.OPTED_OUT: "opted out of this purpose or of all marketing",
    Reason.RESTRICTED: "processing restricted (Art. 18) or an objection (Art. 21)",
    Reason.EEA: "an EEA address, and policy excludes the EEA",
    Reason.OPT_IN_REQUIRED: "the country requires an opt-in, and none is recorded",
    Reason.UNKNOWN_JURISDICTION: "no country known, and policy treats that as not sendable",
}
DOWNLOADS = {
    "cleaned": "cleaned-list.csv",  # `email`, the sendable rows only
    "full": "check-result.csv",  # `email,sendable,reason`, every row
}


@bp.get("/checks")
def list_check_form() -> Any:
    return _form_page({}, {})


def _form_page(form: dict[str, str], errors: dict[str, str], status: int = 200) -> Response:
    settings = current.settings()
    page = render_template(
        "staff/list_check.html",
        purposes=settings.purposes,
        form=form,
        errors=errors,
        max_megabytes=settings.max_content_length // (1024 * 1024),
        held=(session.get(RESULT_KEY) if held_result() else None),
        keep_minutes=KEEP_SECONDS // 60,
    )
    response = make_response(page, status)
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@bp.post("/checks")
def list_check() -> Any:
    settings = current.settings()
    form = {"purpose": request.form.get("purpose", "")}
    errors: dict[str, str] = {}  # in the page's order: the first takes the focus
    upload = request.files.get("list")
    if upload is None or not upload.filename:
        errors["list"] = "Choose the CSV file of the list."
    if form["purpose"] not in settings.purposes:
        errors["purpose"] = "Choose the purpose the list is for."
    if errors or upload is None:
        return _form_page(form, errors, 422)
    folder = results_folder(settings.instance_path)
    sweep(folder)
    forget_held()
    held = HeldResult.create(folder)
    try:
        listed, tally = _check_into(held, upload.stream, form["purpose"])
    except SuppressionError as error:
        held.discard()
        message = error.message[:1].upper() + error.message[1:]
        return _form_page(form, {"list": message + _error_lines(error.errors.get("csv"))}, 422)
    except BaseException:
        held.discard()
        raise
    db = current.db_session()
    accessor = Accessor(actor(), AccessChannel.PAGE, request.remote_addr)
    record_list_check(db, accessor, form["purpose"], tally.total, current.now())
    db.commit()
    session[RESULT_KEY] = {
        **held.session_data(),
        "at": current.now().timestamp(),
        "purpose": form["purpose"],
        "total": tally.total,
        "sendable": tally.sendable,
        "reasons": dict(tally.reasons),
        "delimiter": listed.delimiter,
    }
    return redirect(url_for("staff.list_check_result"), 303)


def _check_into(held: HeldResult, stream: Any, purpose: str) -> tuple[CsvList, Tally]:
    """Check the uploaded list, writing the full answer into `held`."""
    raw = stream if isinstance(stream, io.BufferedIOBase) else io.BufferedReader(stream)
    listed = CsvList(cast(IO[bytes], raw))
    tally = Tally()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RESULT_HEADER)
    decided = _decide(purpose, listed.entries())
    try:
        for (email, _), decision in decided:
            tally.add(decision)
            writer.writerow(result_row(email, decision))
            if buffer.tell() >= FLUSH_CHARS:
                held.write(buffer.getvalue().encode("utf-8"))
                buffer.seek(0)
                buffer.truncate()
        listed.raise_errors()
    finally:
        decided.close()
    held.write(buffer.getvalue().encode("utf-8"))
    held.finish()
    return listed, tally


def _decide(purpose: str, items: Iterator[CheckItem]) -> Generator[tuple[CheckItem, Decision]]:
    settings = current.settings()
    helpers = current.runtime().helpers if settings.check_processes > 0 else None
    reader = current.read_session()
    try:
        yield from check_addresses(
            reader,
            current.vault(),
            settings.policy,
            purpose,
            items,
            current.now(),
            settings.check_chunk_size,
            helpers,
            settings.check_parallel_min,
        )
    finally:
        reader.rollback()  # nothing was written; end the read transaction now


def _error_lines(details: Any) -> str:
    if not isinstance(details, dict):
        return "."
    lines = [f"line {n}: {'; '.join(texts)}" for n, texts in details.items() if n != "_total"]
    if not lines:
        return "."
    return ": " + ", ".join(lines[:10]) + ("…" if len(lines) > 10 else "") + "."


@bp.get("/checks/result")
def list_check_result() -> Any:
    if held_result() is None:
        flash("No checked list is held for you (it is kept for an hour): upload it again.")
        return redirect(url_for("staff.list_check_form"), 303)
    data = session[RESULT_KEY]
    reasons: dict[str, int] = data["reasons"]
    rows = [(reason, REASON_TEXT[reason], reasons.get(reason.value, 0)) for reason in Reason]
    points = [("sendable", int(data["sendable"]), "bar")]
    points += [(reason.value, count, "bar suppressed") for reason, _, count in rows if count]
    return render_template(
        "staff/list_check_result.html",
        result=data,
        suppressed=int(data["total"]) - int(data["sendable"]),
        rows=rows,
        chart=count_chart(points),
        # For a phone: half as wide, so its labels show at about their own size.
        narrow_chart=count_chart(points, width=NARROW_CHART_WIDTH),
        keep_minutes=KEEP_SECONDS // 60,
    )


@bp.get("/checks/result/<kind>.csv")
def list_check_download(kind: str) -> Any:
    if kind not in DOWNLOADS:
        abort(404)
    held = held_result()
    if held is None:
        flash("No checked list is held for you (it is kept for an hour): upload it again.")
        return redirect(url_for("staff.list_check_form"), 303)
    delimiter = str(session[RESULT_KEY].get("delimiter", ","))
    response = Response(_download(held, kind, delimiter), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{DOWNLOADS[kind]}"'
    return response


def _download(held: HeldResult, kind: str, delimiter: str) -> Iterator[bytes]:
    """The answer's rows, formula cells quoted; the cleaned list keeps the sendable."""
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel reads a UTF-8 CSV as UTF-8 only with a BOM
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    text = held.text()
    try:
        rows = csv.reader(text)
        header = next(rows)
        writer.writerow(["email"] if kind == "cleaned" else header)
        for email, sendable, reason in rows:
            if kind == "full":
                writer.writerow([neutralise(email), sendable, reason])
            elif sendable == "true":
                writer.writerow([neutralise(email)])
            if buffer.tell() >= FLUSH_CHARS:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")
    finally:
        text.close()
