"""Hostile request bodies: oversized, deeply nested, mislabelled, not UTF-8, random
CSV. Each gets a clear 4xx in the one error shape and nothing is stored."""

from __future__ import annotations

import json
import re
import tempfile
import traceback
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from suppression.app.links import link_tokens
from suppression.services.staff.accounts import create_staff_user
from suppression.store import engines as database
from suppression.store.models import ConsentEvent, Subject
from suppression.store.schema import Base

CONSENT = b'{"email": "a@example.com", "purpose": "all", "status": "opted_out", "source": "t"}'
JSON_ENDPOINTS = [
    "/v1/consents",
    "/v1/blocks",
    "/v1/relationships",
    "/v1/checks",
    "/v1/subjects/lookup",
    "/v1/subjects/export",
    "/v1/subjects/erase",
    "/v1/unsubscribe-links",
]
CSV_ENDPOINTS = ["/v1/checks.csv?purpose=email_marketing", "/v1/imports"]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def table_counts(session) -> dict[str, int]:
    counts = {
        table.name: session.scalar(select(func.count()).select_from(table))
        for table in Base.metadata.sorted_tables
        if table.name != "api_keys"
    }
    session.rollback()
    return counts


def assert_error_shape(response, *codes: int) -> None:
    assert response.status_code in codes, (response.status_code, response.get_data()[:300])
    body = response.get_json()
    assert body["code"] == response.status_code
    assert isinstance(body["message"], str)
    assert body["message"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS + CSV_ENDPOINTS)
def test_a_body_over_the_size_limit_is_413_and_stores_nothing(app, client, admin, session, path):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    before = table_counts(session)
    body = b"email\n" + b"someone@example.com\n" * 200
    content_type = "text/csv" if path in CSV_ENDPOINTS else "application/json"
    response = client.post(path, data=body, content_type=content_type, headers=admin)
    assert_error_shape(response, 413)
    assert table_counts(session) == before


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("depth", [64, 5000, 100_000])
def test_deeply_nested_json_is_a_clear_4xx(client, admin, session, path, depth):
    before = table_counts(session)
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = client.post(path, data=body, content_type="application/json", headers=admin)
        assert_error_shape(response, 400, 422)
    assert table_counts(session) == before


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/csv", None]
)
def test_json_endpoints_refuse_other_content_types(client, admin, session, path, content_type):
    before = table_counts(session)
    response = client.post(path, data=CONSENT, content_type=content_type, headers=admin)
    assert_error_shape(response, 400, 415, 422)
    assert table_counts(session) == before


@pytest.mark.parametrize("path", CSV_ENDPOINTS)
@pytest.mark.parametrize("content_type", ["application/json", "image/png", None])
def test_csv_endpoints_refuse_other_content_types(client, admin, session, path, content_type):
    before = table_counts(session)
    response = client.post(
        path, data=b"email\na@example.com\n", content_type=content_type, headers=admin
    )
    assert_error_shape(response, 415)
    assert table_counts(session) == before


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_json_that_is_not_utf8_is_a_clear_4xx(client, admin, session, path):
    before = table_counts(session)
    body = CONSENT.replace(b"a@example.com", b"\xff\xfe@example.com")
    response = client.post(path, data=body, content_type="application/json", headers=admin)
    assert_error_shape(response, 400, 422)
    assert table_counts(session) == before


@pytest.mark.parametrize("path", CSV_ENDPOINTS)
def test_csv_that_is_not_utf8_is_400_and_stores_nothing(client, admin, session, path):
    before = table_counts(session)
    body = b"email\nok@example.com\n\xff\xfe\xfd@example.com\n"
    response = client.post(path, data=body, content_type="text/csv", headers=admin)
    assert_error_shape(response, 400)
    assert "UTF-8" in response.get_json()["message"]
    assert table_counts(session) == before


csv_cell = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30
) | st.sampled_from(["a@example.com", "x@bücher.de", "CA", "opted_in", "", '"', "\r", "\x00"])
csv_body = st.one_of(
    st.binary(max_size=300),
    st.lists(st.lists(csv_cell, max_size=5), max_size=8).map(
        lambda rows: "\n".join(",".join(row) for row in rows).encode()
    ),
    st.lists(st.lists(csv_cell, min_size=1, max_size=3), max_size=6).map(
        lambda rows: ("email,country\n" + "\n".join(",".join(r) for r in rows)).encode()
    ),
)


@FUZZ
@given(body=csv_body)
def test_random_bytes_to_the_check_csv_never_fail_the_server(client, sender, body):
    response = client.post(
        "/v1/checks.csv?purpose=email_marketing", data=body, content_type="text/csv", headers=sender
    )
    if response.status_code == 200:
        assert response.mimetype == "text/csv"
        assert response.get_data(as_text=True).split("\n", 1)[0] == "email,sendable,reason"
    else:
        assert_error_shape(response, 400, 422)


@FUZZ
@given(body=csv_body)
def test_random_bytes_to_the_import_are_a_report_or_a_clear_4xx(client, admin, session, body):
    before = table_counts(session)
    response = client.post("/v1/imports", data=body, content_type="text/csv", headers=admin)
    if response.status_code == 200:
        report = response.get_json()
        assert report["imported"] + len(report["rejected"]) <= report["rows"]
    else:
        assert_error_shape(response, 400, 422)
        after = table_counts(session)
        assert {k: v for k, v in after.items() if k != "import_runs"} == {
            k: v for k, v in before.items() if k != "import_runs"
        }


token_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="/?#%"),
    min_size=1,
    max_size=120,
) | st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=200
)


@FUZZ
@given(token=token_text, page=st.sampled_from(["/u/", "/preferences/"]))
def test_any_text_as_a_link_token_is_a_400_page_and_records_nothing(client, session, token, page):
    before = table_counts(session)
    for method in ("GET", "POST"):
        response = client.open(
            page + token, method=method, data={"List-Unsubscribe": "One-Click", "action": "save"}
        )
        assert response.status_code in (400, 404), (method, token)  # 404: no token at all
        assert response.mimetype == "text/html"
    assert table_counts(session) == before


# --- Hostile text: NUL (PostgreSQL stores none) and lone surrogates (no UTF-8 form).
NUL, SURROGATE = "\x00", "\ud800"
CONSENT_BODY = {"email": "t@example.com", "purpose": "all", "status": "opted_out", "source": "t"}
BLOCK_BODY = {"email": "t@example.com", "kind": "complaint"}
RELATIONSHIP_BODY = {"email": "t@example.com", "kind": "purchase"}
EXPORT_BODY = {"email": "t@example.com", "reason": "DSAR 7"}
ERASE_BODY = {"email": "t@example.com", "reason": "request"}


def _poisoned(value, bad: str):
    """`value` with `bad` in its first string at any depth (in the key, where the
    value is "KEY")."""
    if isinstance(value, str):
        return value[:1] + bad + value[1:]
    if isinstance(value, dict):
        key, item = next(iter(value.items()))
        if item == "KEY":
            return {key + bad: item}
        return {key: _poisoned(item, bad), **{k: v for k, v in value.items() if k != key}}
    return [_poisoned(value[0], bad), *value[1:]]


def _consent(**extra):
    return {**CONSENT_BODY, **extra}


def _block(**extra):
    return {**BLOCK_BODY, **extra}


LINK = {"email": "t@example.com"}
DEEP_EVIDENCE = {"a": {"b": [{"c": ["deep"]}]}}
# (path, a good body, the field to poison, where `errors.json` names it: the field
# itself unless given)
TEXT_FIELDS = [
    ("/v1/consents", CONSENT_BODY, "email"),
    ("/v1/consents", CONSENT_BODY, "purpose"),
    ("/v1/consents", CONSENT_BODY, "status"),
    ("/v1/consents", CONSENT_BODY, "source"),
    ("/v1/consents", _consent(campaign="nov"), "campaign"),
    ("/v1/consents", _consent(notice_version="n1"), "notice_version"),
    ("/v1/consents", _consent(country="US"), "country"),
    ("/v1/consents", _consent(country="US", country_source="declared"), "country_source"),
    ("/v1/consents", _consent(evidence={"form": "signup"}), "evidence"),
    ("/v1/consents", _consent(evidence={"form": "KEY"}), "evidence"),
    ("/v1/consents", _consent(evidence=DEEP_EVIDENCE), "evidence"),
    ("/v1/blocks", BLOCK_BODY, "email"),
    ("/v1/blocks", BLOCK_BODY, "kind"),
    ("/v1/blocks", _block(source="fbl"), "source"),
    ("/v1/blocks", _block(campaign="nov"), "campaign"),
    ("/v1/blocks", _block(evidence={"text": "x"}), "evidence"),
    ("/v1/blocks", {"events": [BLOCK_BODY, BLOCK_BODY]}, "events", ("events", "0", "email")),
    ("/v1/relationships", RELATIONSHIP_BODY, "email"),
    ("/v1/relationships", RELATIONSHIP_BODY, "kind"),
    ("/v1/relationships", {**RELATIONSHIP_BODY, "source": "shop"}, "source"),
    ("/v1/checks", {"purpose": "email_marketing", "addresses": ["a@example.com"]}, "purpose"),
    ("/v1/subjects/lookup", {"email": "t@example.com"}, "email"),
    ("/v1/subjects/lookup", {"email": "t@example.com", "reason": "T-1"}, "reason"),
    ("/v1/subjects/export", EXPORT_BODY, "email"),
    ("/v1/subjects/export", EXPORT_BODY, "reason"),
    ("/v1/subjects/erase", ERASE_BODY, "email"),
    ("/v1/subjects/erase", ERASE_BODY, "reason"),
    ("/v1/unsubscribe-links", LINK, "email"),
    ("/v1/unsubscribe-links", {**LINK, "purpose": "all"}, "purpose"),
    ("/v1/unsubscribe-links", {**LINK, "campaign": "nov"}, "campaign"),
    (
        "/v1/unsubscribe-links",
        {"recipients": ["t@example.com"]},
        "recipients",
        ("recipients", "0", "email"),
    ),
    (
        "/v1/unsubscribe-links",
        {"recipients": [{"campaign": "nov", **LINK}]},
        "recipients",
        ("recipients", "0", "campaign"),
    ),
    (
        "/v1/unsubscribe-links",
        {"recipients": [{"purpose": "all", **LINK}]},
        "recipients",
        ("recipients", "0", "purpose"),
    ),
]


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    "case",
    TEXT_FIELDS,
    ids=[f"{case[0].rsplit('/', 1)[1]}-{case[2]}-{n}" for n, case in enumerate(TEXT_FIELDS)],
)
def test_a_nul_or_a_lone_surrogate_in_any_string_is_422_naming_the_field(
    client, admin, session, case, bad
):
    path, body, field, *given = case
    named = given[0] if given else (field,)
    before = table_counts(session)
    hostile = {**body, field: _poisoned(body[field], bad)}
    # json.dumps writes both as escapes (\u0000, \ud800), as a client's JSON would.
    response = client.post(
        path, data=json.dumps(hostile), content_type="application/json", headers=admin
    )
    assert_error_shape(response, 422)
    errors = response.get_json()["errors"]["json"]
    for key in named:
        assert key in errors, (named, response.get_json())
        errors = errors[key]
    assert table_counts(session) == before


def test_a_batch_with_hostile_text_names_every_position_and_mints_nothing(client, sender):
    recipients = [
        "ok@example.com",
        "a\ud800@example.com",
        {"email": "b@example.com", "campaign": "c\ud800"},
        {"email": "c@example.com", "campaign": "c\x00"},
        {"email": "d\x00@example.com"},
        {"email": "e@example.com", "purpose": "all\ud800"},
    ]
    response = client.post(
        "/v1/unsubscribe-links",
        data=json.dumps({"recipients": recipients}),
        content_type="application/json",
        headers=sender,
    )
    assert_error_shape(response, 422)
    named = response.get_json()["errors"]["json"]["recipients"]
    assert set(named) == {"1", "2", "3", "4", "5"}
    assert "links" not in response.get_json()


def test_a_check_answers_hostile_strings_invalid_without_failing_the_list(client, sender):
    addresses = [
        "ok@example.com",
        "j\u00f6rg@b\u00fccher.de\ufffe",
        "a\x00@example.com",
        {"email": "b\x00@example.com", "country": "US"},
        "\U0001f600",
    ]
    response = client.post(
        "/v1/checks?detail=all",
        data=json.dumps({"purpose": "email_marketing", "addresses": addresses}),
        content_type="application/json",
        headers=sender,
    )
    assert response.status_code == 200
    body = json.loads(response.get_data())  # escapes in, escapes out: echoed as sent
    assert (body["total"], body["sendable"], body["invalid"]) == (5, 1, 4)
    sent = [entry if isinstance(entry, str) else entry["email"] for entry in addresses]
    assert [r["email"] for r in body["results"]] == sent
    assert [r["reason"] for r in body["results"]] == [None] + ["invalid"] * 4


def test_a_check_refuses_lone_surrogates_by_position_and_answers_nothing(client, sender):
    # yajl would read each as "?": `a?@example.com` is an address, and not the one sent.
    addresses = [
        "ok@example.com",
        "a\ud800@example.com",
        "j\u00f6rg@b\u00fccher.de\udcff",
        {"email": "b\ud800@example.com", "country": "US"},
        "\ud83d",
    ]
    response = client.post(
        "/v1/checks?detail=all",
        data=json.dumps({"purpose": "email_marketing", "addresses": addresses}),
        content_type="application/json",
        headers=sender,
    )
    assert_error_shape(response, 422)
    assert sorted(response.get_json()["errors"]["json"]["addresses"]) == ["1", "2", "3", "4"]


def test_a_hostile_country_hint_in_a_check_is_422_naming_its_position(client, sender):
    addresses = ["ok@example.com", {"email": "b@example.com", "country": "U\ud800"}]
    response = client.post(
        "/v1/checks",
        data=json.dumps({"purpose": "email_marketing", "addresses": addresses}),
        content_type="application/json",
        headers=sender,
    )
    assert_error_shape(response, 422)
    assert set(response.get_json()["errors"]["json"]["addresses"]) == {"1"}


def test_a_check_csv_with_nul_answers_the_row_invalid_or_names_the_hint(client, sender):
    body = "email,country\nok@example.com,US\na\x00@example.com,US\n"
    response = client.post(
        "/v1/checks.csv?purpose=email_marketing",
        data=body.encode(),
        content_type="text/csv",
        headers=sender,
    )
    assert response.status_code == 200
    assert response.get_data(as_text=True).splitlines()[1:] == [
        "ok@example.com,true,",
        "a\x00@example.com,false,invalid",
    ]
    hinted = client.post(
        "/v1/checks.csv?purpose=email_marketing",
        data=b"email,country\nok@example.com,U\x00\n",
        content_type="text/csv",
        headers=sender,
    )
    assert_error_shape(hinted, 422)
    assert "2" in hinted.get_json()["errors"]["csv"]


def test_an_import_row_with_a_nul_is_rejected_with_its_line_and_the_rest_imported(
    client, admin, session
):
    rows = (
        "email,source,country,purpose,status\n"
        "good@example.com,old-crm,US,all,opted_out\n"
        "nul-source@example.com,old\x00crm,US,all,opted_out\n"
        "nul\x00email@example.com,old-crm,US,all,opted_out\n"
        "nul-country@example.com,old-crm,U\x00,all,opted_out\n"
        "nul-purpose@example.com,old-crm,US,all\x00,opted_out\n"
        "nul-status@example.com,old-crm,US,all,opted_out\x00\n"
    )
    response = client.post(
        "/v1/imports", data=rows.encode(), content_type="text/csv", headers=admin
    )
    assert response.status_code == 200
    report = response.get_json()
    assert report["imported"] == 1
    assert [r["line"] for r in report["rejected"]] == [3, 4, 5, 6, 7]
    assert "NUL" in report["rejected"][0]["error"]
    assert session.scalar(select(func.count()).select_from(Subject)) == 1


# How a WSGI server hands over a header's bytes: each byte one character (latin-1).
HOSTILE_AGENT = "Mozilla/5.0 \x00 \xff\xfe (x)"


def test_a_user_agent_with_nul_and_odd_bytes_is_stored_cleaned(client, sender, session):
    response = client.post(
        "/v1/consents", json=CONSENT_BODY, headers={**sender, "User-Agent": HOSTILE_AGENT}
    )
    assert response.status_code == 201
    event = session.scalars(select(ConsentEvent)).one()
    assert event.user_agent == "Mozilla/5.0 \ufffd \xff\xfe (x)"


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_one_click_with_a_hostile_user_agent_still_opts_out(app, client, sender, admin, session):
    link = client.post(
        "/v1/unsubscribe-links", json={"email": "jane@example.com"}, headers=sender
    ).get_json()
    provider = app.test_client(use_cookies=False)
    response = provider.post(
        urlsplit(link["url"]).path,
        data={"List-Unsubscribe": "One-Click"},
        headers={"User-Agent": HOSTILE_AGENT},
    )
    assert response.status_code == 200
    looked_up = client.post(
        "/v1/subjects/lookup", json={"email": "jane@example.com"}, headers=admin
    ).get_json()
    assert looked_up["decisions"]["email_marketing"]["reason"] == "opted_out"
    [event] = looked_up["events"]
    assert event["user_agent"] == "Mozilla/5.0 \ufffd \xff\xfe (x)"


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_link_minted_with_a_nul_campaign_before_it_was_refused_still_opts_out(
    app, client, admin, clock
):
    """Links in mailboxes may carry such a campaign: the opt-out must not fail on it."""
    with app.app_context():
        token = link_tokens().mint("jane@example.com", "email_marketing", "nov\x00", clock())
    provider = app.test_client(use_cookies=False)
    response = provider.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    looked_up = client.post(
        "/v1/subjects/lookup", json={"email": "jane@example.com"}, headers=admin
    ).get_json()
    [event] = looked_up["events"]
    assert (event["action"], event["campaign"]) == ("opted_out", "nov\ufffd")


@pytest.mark.committed  # engines of its own
def test_engines_keep_bound_parameters_out_of_their_errors(app, database_url):
    """A failing statement's error, raised and logged with its traceback, names the
    SQL but never the values bound to it (evidence, IPs, addresses)."""
    address = "leaked.person@example.com"
    engines = [database.make_engine(database_url), app.extensions["suppression"].engine]
    intake = app.extensions["suppression"].intake_engine
    assert (intake is not None) == (engines[0].dialect.name == "postgresql")
    engines += [intake] if intake is not None else []
    try:
        for engine in engines:
            with pytest.raises(DBAPIError) as failure, engine.connect() as connection:
                connection.execute(
                    text("INSERT INTO no_such_table (email) VALUES (:email)"), {"email": address}
                )
            logged = "".join(traceback.format_exception(failure.value))
            assert "no_such_table" in logged
            assert address not in logged
            assert "hidden" in str(failure.value)  # SQLAlchemy's own note
    finally:
        engines[0].dispose()


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_the_error_shape_survives_hostile_text_in_an_unknown_field(client, admin, bad, session):
    before = table_counts(session)
    body = {**CONSENT_BODY, "x" + bad: "y" + bad}
    response = client.post(
        "/v1/consents", data=json.dumps(body), content_type="application/json", headers=admin
    )
    assert_error_shape(response, 422)
    assert table_counts(session) == before


# --- The staff pages: hostile text in a form is a form error, never a 500.
STAFF_PASSWORD = "hostile text passphrase, long enough"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _staff_client(app, clock, role: str = "admin"):
    session = app.extensions["suppression"].sessions()
    create_staff_user(session, "hostile", role, STAFF_PASSWORD, clock())
    session.commit()
    session.close()
    client = app.test_client()
    token = CSRF.search(client.get("/admin/sign-in").get_data(as_text=True)).group(1)
    data = {"username": "hostile", "password": STAFF_PASSWORD, "csrf_token": token}
    assert client.post("/admin/sign-in", data=data).status_code == 303
    return client, CSRF.search(client.get("/admin/").get_data(as_text=True)).group(1)


@pytest.mark.parametrize("field", ["username", "password"])
def test_sign_in_with_a_nul_is_a_form_error_and_records_nothing(app, client, session, field):
    before = table_counts(session)
    token = CSRF.search(client.get("/admin/sign-in").get_data(as_text=True)).group(1)
    data = {"username": "hostile", "password": STAFF_PASSWORD, "csrf_token": token}
    data[field] = data[field][:3] + NUL + data[field][3:]
    response = client.post("/admin/sign-in", data=data)
    assert response.status_code == 422
    assert "a NUL byte or a broken character" in response.get_data(as_text=True)
    assert table_counts(session) == before  # not even a failed attempt
    assert client.get("/admin/").status_code == 303


def test_sign_in_with_bytes_that_are_not_utf8_is_refused_not_a_500(client):
    token = CSRF.search(client.get("/admin/sign-in").get_data(as_text=True)).group(1)
    body = f"username=a%ED%A0%80b%FF&password=x%00%ED%A0%80&csrf_token={token}"
    response = client.post(
        "/admin/sign-in", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in (401, 422)


# (form path, its fields, the field to poison, how the page names the error)
STAFF_FORMS = [
    ("/admin/search", {"email": "jane@example.com", "reason": "T-1"}, "email"),
    ("/admin/search", {"email": "jane@example.com", "reason": "T-1"}, "reason"),
    (
        "/admin/subjects/opt-out",
        {"email": "new@example.com", "purpose": "all", "channel": "email_request", "reason": "r"},
        "reason",
    ),
    ("{subject}/opt-out", {"purpose": "all", "channel": "phone", "reason": "Asked"}, "reason"),
    (
        "{subject}/opt-in",
        {"purpose": "all", "channel": "letter", "evidence": "Signed form", "notice_version": "n"},
        "evidence",
    ),
    (
        "{subject}/opt-in",
        {"purpose": "all", "channel": "letter", "evidence": "Signed form", "notice_version": "n"},
        "notice_version",
    ),
    ("{subject}/jurisdiction", {"country": "US", "reason": "Wrote from Ohio"}, "reason"),
    ("{subject}/export", {"reason": "DSAR 7"}, "reason"),
]


@pytest.mark.parametrize(("path", "form", "field"), STAFF_FORMS)
def test_a_nul_in_a_staff_form_is_a_clear_form_error_and_changes_nothing(
    app, clock, client, admin, session, path, form, field
):
    body = {"email": "jane@example.com", "purpose": "all", "status": "opted_out", "source": "t"}
    assert client.post("/v1/consents", json=body, headers=admin).status_code == 201
    subject = f"/admin/subjects/{session.scalar(select(Subject.id))}"
    session.rollback()
    staff, token = _staff_client(app, clock)
    before = table_counts(session)
    data = {**form, field: form[field][:2] + NUL + form[field][2:], "csrf_token": token}
    response = staff.post(path.format(subject=subject), data=data)
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert "cannot be stored" in response.get_data(as_text=True)
    assert table_counts(session) == before


@pytest.mark.parametrize(("path", "form", "field"), STAFF_FORMS)
def test_bytes_that_are_not_utf8_in_a_staff_form_never_fail_the_server(
    app, clock, client, admin, session, path, form, field
):
    body = {"email": "jane@example.com", "purpose": "all", "status": "opted_out", "source": "t"}
    assert client.post("/v1/consents", json=body, headers=admin).status_code == 201
    subject = f"/admin/subjects/{session.scalar(select(Subject.id))}"
    session.rollback()
    staff, token = _staff_client(app, clock)
    # A lone surrogate's UTF-8-like bytes: the form parser makes them U+FFFD.
    fields = {**form, "csrf_token": token}
    encoded = "&".join(f"{name}={quote(value)}" for name, value in fields.items())
    encoded += f"&{field}=%ED%A0%80{quote(form[field])}"
    response = staff.post(
        path.format(subject=subject),
        data=encoded,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code < 500


def test_a_nul_in_the_access_log_filter_is_a_clear_400(app, clock):
    staff, _token = _staff_client(app, clock)
    response = staff.get("/admin/access-log?actor=staff%3Aa%00b")
    assert response.status_code == 400
    assert "NUL" in response.get_data(as_text=True)


def test_an_account_with_a_nul_in_its_password_is_refused(app, clock, session):
    staff, token = _staff_client(app, clock)
    before = table_counts(session)
    data = {"username": "newbie", "role": "staff", "password": "long enough\x00 passphrase"}
    response = staff.post("/admin/accounts", data={**data, "csrf_token": token})
    assert response.status_code == 422
    assert table_counts(session) == before


@pytest.mark.parametrize("action", ["disable", "enable"])
def test_a_nul_in_an_account_name_in_the_url_is_a_404(app, clock, session, action):
    staff, token = _staff_client(app, clock)
    before = table_counts(session)
    response = staff.post(f"/admin/accounts/ho%00stile/{action}", data={"csrf_token": token})
    assert response.status_code == 404
    assert table_counts(session) == before
    assert staff.get("/admin/").status_code == 200  # the account named "hostile" is untouched


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_json_bodies_have_their_own_lower_size_limit(app, client, admin, session, path):
    app.config["MAX_JSON_BYTES"] = 2048
    before = table_counts(session)
    body = b'{"addresses": [' + b'"someone@example.com",' * 200 + b'"x@example.com"]}'
    response = client.post(path, data=body, content_type="application/json", headers=admin)
    assert_error_shape(response, 413)
    assert table_counts(session) == before


def test_a_csv_list_of_the_same_size_is_taken_past_the_json_limit(app, client, sender):
    app.config["MAX_JSON_BYTES"] = 2048
    body = "email\n" + "someone@example.com\n" * 200
    response = client.post(
        "/v1/checks.csv?purpose=email_marketing",
        data=body,
        content_type="text/csv",
        headers=sender,
    )
    assert response.status_code == 200
    assert response.get_data(as_text=True).count("someone@example.com") == 200


@pytest.mark.parametrize("path", [p for p in JSON_ENDPOINTS if p != "/v1/checks"])
def test_a_json_body_of_a_million_tiny_values_is_413_before_it_is_parsed(
    client, admin, session, path
):
    # 2 MB of `[],` parse into a million lists: gigabytes at the size limit.
    before = table_counts(session)
    body = b'{"events": [' + b"[]," * 1_000_000 + b"[]]}"
    response = client.post(path, data=body, content_type="application/json", headers=admin)
    assert_error_shape(response, 413)
    assert "values" in response.get_json()["message"]
    assert table_counts(session) == before


@pytest.mark.slow
def test_a_batch_of_ten_thousand_events_is_within_the_value_budget(client, sender):
    events = [{"email": f"u{i}@example.com", "kind": "hard_bounce"} for i in range(10_000)]
    response = client.post("/v1/blocks", json={"events": events}, headers=sender)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["recorded"] == 10_000


def test_a_large_check_answer_waits_sealed_never_as_plaintext_on_disk(
    client, sender, monkeypatch, tmp_path
):
    from suppression.api import sealed_spool

    files = []

    def kept_file():  # a file left on disk after it is closed, for the test to read
        handle = tempfile.NamedTemporaryFile(dir=tmp_path, delete=False)  # noqa: SIM115
        files.append(handle)
        return handle

    monkeypatch.setattr(sealed_spool, "IN_MEMORY_BYTES", 4096)
    monkeypatch.setattr(sealed_spool, "BLOCK_BYTES", 1024)
    monkeypatch.setattr(sealed_spool.tempfile, "TemporaryFile", kept_file)
    addresses = [f"person{i}@example.com" for i in range(3000)]
    for path, data, content_type in (
        ("/v1/checks?detail=all", json.dumps({"addresses": addresses}), "application/json"),
        ("/v1/checks.csv", "email\n" + "\n".join(addresses), "text/csv"),
    ):
        files.clear()
        response = client.post(path, data=data, content_type=content_type, headers=sender)
        assert response.status_code == 200
        answer = response.get_data(as_text=True)
        assert all(a in answer for a in addresses[::97])
        # The JSON list waited for its purpose (it names none), and the results.
        assert len(files) == (2 if "detail" in path else 1)
        assert all(handle.closed for handle in files)
        for handle in files:
            raw = Path(handle.name).read_bytes()
            assert len(raw) > 10_000
            assert b"@example.com" not in raw
            assert b"person1" not in raw
