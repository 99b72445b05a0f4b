"""Hostile request bodies: oversized, deeply nested, mislabelled, not UTF-8, random
CSV. Each gets a clear 4xx in the one error shape and nothing is stored."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from suppression.db import Base

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
