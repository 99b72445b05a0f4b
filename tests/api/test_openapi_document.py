"""/openapi.json states the constraints the validation enforces, so that a client
generated from it sends valid requests; tests/security/test_openapi_fuzz.py sends
what schemathesis generates from it."""

from __future__ import annotations

import re
import string

import email_validator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suppression.api.fields import EMAIL_PATTERN, SPECIAL_USE_DOMAINS
from suppression.domain.addresses import canonicalise_strict


def _document(client) -> dict:
    return client.get("/openapi.json").get_json()


def _schema(document: dict, name: str) -> dict:
    return document["components"]["schemas"][name]


def test_special_use_domains_are_email_validators():
    assert set(SPECIAL_USE_DOMAINS) == set(email_validator.SPECIAL_USE_DOMAIN_NAMES)


ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
LABEL = string.ascii_letters + string.digits + "-"
ADDRESSES = st.builds(
    "{}@{}.{}".format,
    st.text(alphabet=ATEXT + ".", min_size=1, max_size=70),
    st.lists(st.text(alphabet=LABEL, min_size=1, max_size=12), min_size=1, max_size=4).map(
        ".".join
    ),
    st.one_of(
        st.sampled_from(("com", "de", "TEST", "local", "xn--p1ai", "c1", "co-uk", "ab--cd")),
        st.text(alphabet=LABEL, min_size=1, max_size=8),
    ),
)


@settings(
    max_examples=1000, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
@given(ADDRESSES)
def test_every_address_the_pattern_admits_is_accepted_by_single_writes(address):
    admitted = re.search(EMAIL_PATTERN, address) is not None and len(address) <= 254
    assert not admitted or canonicalise_strict(address)


def test_the_pattern_refuses_what_single_writes_refuse():
    pattern = re.compile(EMAIL_PATTERN)
    for address in (
        "jane@example.test",
        "jane@EXAMPLE.Invalid",
        "jane@ab--cd.com",
        "jane@example.c1",
        ".jane@example.com",
        "ja..ne@example.com",
        "j" * 65 + "@example.com",
        '"jane"@example.com',
        "jane@[127.0.0.1]",
    ):
        assert not pattern.search(address), address
    assert pattern.search("jane.o'neil+news@mail.example.co.uk")


def test_every_address_field_states_format_length_and_pattern(client):
    document = _document(client)
    for schema, field in (
        ("ConsentCreate", "email"),
        ("Block", "email"),
        ("Relationship", "email"),
        ("Lookup", "email"),
        ("ExportRequest", "email"),
        ("EraseRequest", "email"),
        ("LinkRequest", "email"),
        ("Recipient", "email"),
    ):
        email = _schema(document, schema)["properties"][field]
        assert email["format"] == "email", schema
        assert email["maxLength"] == 254, schema
        assert email["pattern"] == EMAIL_PATTERN, schema
        assert ".test" in email["description"], schema


def test_purposes_are_the_configured_ones(make_settings, app_on_same_database):
    application = app_on_same_database(make_settings(PURPOSES="newsletter,partners"))
    document = _document(application.test_client())
    assert _schema(document, "ConsentCreate")["properties"]["purpose"]["enum"] == [
        "newsletter",
        "partners",
        "all",
    ]
    assert _schema(document, "CheckRequest")["properties"]["purpose"]["enum"] == [
        "newsletter",
        "partners",
    ]
    query = document["paths"]["/v1/suppressions.csv"]["get"]["parameters"]
    purpose = next(p for p in query if p["name"] == "purpose")
    assert purpose["schema"]["enum"] == ["newsletter", "partners"]


def test_one_form_or_the_other_is_stated(client):
    document = _document(client)
    blocks = _schema(document, "BlockRequest")["oneOf"]
    assert {"required": ["email", "kind"], "not": {"required": ["events"]}} in blocks
    links = _schema(document, "LinkRequest")
    assert {"required": ["recipients"], "not": {"required": ["email"]}} in links["oneOf"]
    recipients = links["properties"]["recipients"]
    assert recipients["maxItems"] == 100_000
    assert recipients["items"]["anyOf"][1] == {"$ref": "#/components/schemas/Recipient"}
    entries = _schema(document, "CheckRequest")["properties"]["addresses"]["items"]["anyOf"]
    assert entries[1] == {"$ref": "#/components/schemas/CheckEntry"}
    assert "DE" in _schema(document, "CheckEntry")["properties"]["country"]["enum"]


def test_csv_bodies_are_text_csv_with_their_columns(client):
    document = _document(client)
    for path, columns in (
        ("/v1/checks.csv", ("`email`", "`country`")),
        ("/v1/imports", ("`email_sha256`", "`status`", "`occurred_at`", "`source`")),
    ):
        body = document["paths"][path]["post"]["requestBody"]
        assert body["required"]
        schema = body["content"]["text/csv"]["schema"]
        assert re.fullmatch(schema["pattern"], schema["example"]), path
        for column in columns:
            assert column in body["description"], (path, column)


def test_a_query_limit_is_what_is_enforced(client, admin):
    document = _document(client)
    query = document["paths"]["/v1/access-log"]["get"]["parameters"]
    actor = next(p for p in query if p["name"] == "actor")["schema"]
    assert actor["maxLength"] == 200
    fits = client.get("/v1/access-log", query_string={"actor": "a" * 200}, headers=admin)
    assert fits.status_code == 200
    longer = client.get("/v1/access-log", query_string={"actor": "a" * 201}, headers=admin)
    assert longer.status_code == 422


def test_a_query_parameter_given_twice_is_refused_naming_it(client, admin):
    response = client.get(f"/v1/access-log?actor=a&actor={'b' * 250}", headers=admin)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"query": {"actor": ["Give this parameter once."]}}
    csv = client.post(
        "/v1/checks.csv?only=all&only=sendable",
        data="email\nbob@example.com\n",
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert csv.status_code == 422
    assert "only" in csv.get_json()["errors"]["query"]
