from dataclasses import replace

import pytest
from seeding import block, record
from sqlalchemy import func, select

from suppression.store.models import ConsentEvent, Subject

DONE_WHEN_LIST = [
    " jane.doe@example.com",
    "hans@firma.de",
    "bob@example.com",
    {"email": "li@example.com", "country": "CA"},
]


def results(client, headers, addresses, purpose="email_marketing"):
    response = client.post(
        "/v1/checks?detail=all", json={"purpose": purpose, "addresses": addresses}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    return [(r["email"], r["sendable"], r["reason"]) for r in response.get_json()["results"]]


def test_the_readme_walkthrough_answers_as_promised(client, sender):
    record(client, sender, "Jane.Doe@Example.COM")
    response = client.post(
        "/v1/checks",
        json={"purpose": "email_marketing", "addresses": DONE_WHEN_LIST},
        headers=sender,
    )
    assert response.status_code == 200
    assert response.get_json() == {
        "purpose": "email_marketing",
        "total": 4,
        "sendable": 1,
        "suppressed": [
            {"email": " jane.doe@example.com", "reason": "opted_out"},
            {"email": "hans@firma.de", "reason": "eea"},
            {"email": "li@example.com", "reason": "opt_in_required"},
        ],
        "invalid": 0,
    }


def test_detail_all_answers_every_address_in_input_order(client, sender):
    record(client, sender, "jane.doe@example.com")
    assert results(client, sender, DONE_WHEN_LIST) == [
        (" jane.doe@example.com", False, "opted_out"),
        ("hans@firma.de", False, "eea"),
        ("bob@example.com", True, None),
        ("li@example.com", False, "opt_in_required"),
    ]


def test_strings_that_are_not_addresses_are_answered_invalid(client, sender):
    response = client.post(
        "/v1/checks",
        json={"addresses": ["ok@example.com", "nope", {"email": ""}, "a@@b.com"]},
        headers=sender,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["total"], body["sendable"], body["invalid"]) == (4, 1, 3)
    assert [s["email"] for s in body["suppressed"]] == ["nope", "", "a@@b.com"]
    assert {s["reason"] for s in body["suppressed"]} == {"invalid"}


def test_entries_of_the_wrong_type_fail_the_call_by_position(client, sender):
    addresses = ["ok@example.com", 42, None, {"email": 7}, {}, [], {"country": "DE"}]
    response = client.post("/v1/checks", json={"addresses": addresses}, headers=sender)
    assert response.status_code == 422
    listed = response.get_json()["errors"]["json"]["addresses"]
    assert sorted(listed, key=int) == ["1", "2", "3", "4", "5", "6"]
    assert listed["3"] == ["`email` must be a string."]
    assert listed["4"] == ["`email` is missing."]
    assert "_total" not in listed


def test_a_list_of_millions_of_bad_entries_lists_the_first_100_and_counts_all(client, sender):
    body = b'{"addresses":[' + b",".join([b"0"] * 20_000) + b"]}"
    response = client.post("/v1/checks", data=body, content_type="application/json", headers=sender)
    assert response.status_code == 422
    answer = response.get_json()
    listed = answer["errors"]["json"]["addresses"]
    assert listed.pop("_total") == 20_000
    assert sorted(map(int, listed)) == list(range(100))
    assert answer["message"] == "20000 entries are not valid; the first 100 are listed"


@pytest.mark.parametrize(
    "body",
    [
        '{"addresses": ["a@example.com", "b@example.de"], "purpose": "email_marketing"}',
        '{"addresses": ["a@example.com", "b@example.de"]}',
        '  {"purpose": "email_marketing", "addresses": ["a@example.com", "b@example.de"]}\n',
    ],
    ids=["purpose-after", "purpose-absent", "purpose-first"],
)
def test_purpose_may_come_anywhere_or_default(client, sender, body):
    response = client.post(
        "/v1/checks?detail=all", data=body, content_type="application/json", headers=sender
    )
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["purpose"] == "email_marketing"
    assert [(r["email"], r["reason"]) for r in answer["results"]] == [
        ("a@example.com", None),
        ("b@example.de", "eea"),
    ]


def test_a_later_purpose_is_applied_to_a_list_spooled_in_several_blocks(
    make_settings, sender_for, monkeypatch
):
    monkeypatch.setattr("suppression.api.check_lists.SPOOLED_ENTRIES", 3)
    monkeypatch.setattr("suppression.api.checks.ANSWER_CHUNK", 4)
    settings = replace(make_settings(), check_chunk_size=5)
    client, headers = sender_for(settings)
    record(client, headers, "user4@example.com", purpose="ad_audiences")
    addresses = [f"user{i}@example.com" for i in range(11)]
    response = client.post(
        "/v1/checks?detail=all",
        json={"addresses": addresses, "purpose": "ad_audiences"},
        headers=headers,
    )
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["purpose"] == "ad_audiences"
    assert [r["email"] for r in answer["results"]] == addresses
    assert [s["email"] for s in answer["suppressed"]] == ["user4@example.com"]
    assert int(response.headers["Content-Length"]) == len(response.data)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ('{"addresses": [], "list": 1}', "list", "Unknown field."),
        ('{"addresses": [], "addresses": []}', "addresses", "Give this field once."),
        ('{"purpose": 3, "addresses": []}', "purpose", "Not a valid string."),
        ('{"purpose": "email_marketing"}', "addresses", "Missing data for required field."),
    ],
)
def test_fields_of_the_request_are_validated(client, sender, body, field, message):
    response = client.post("/v1/checks", data=body, content_type="application/json", headers=sender)
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"][field] == [message]


def test_a_body_that_is_not_json_is_422_naming_the_list(client, sender):
    response = client.post("/v1/checks", data="a@example.com", headers=sender)
    assert response.status_code == 422
    assert "addresses" in response.get_json()["errors"]["json"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"addresses": []} {"addresses": []}', 400),
        (b'{"addresses": ["a@example.com"', 400),
        (b'{"addresses": ["a@example.com" "b@example.com"]}', 400),
        (b"[1, 2]", 422),
        (b'"a@example.com"', 422),
    ],
    ids=["trailing-data", "cut-short", "no-comma", "a-list", "a-string"],
)
def test_a_body_that_is_not_one_json_object_is_refused(client, sender, body, status):
    response = client.post("/v1/checks", data=body, content_type="application/json", headers=sender)
    assert response.status_code == status
    assert response.get_json()["code"] == status


def test_lone_surrogate_escapes_are_422_by_position_not_read_as_question_marks(client, sender):
    body = (
        b'{"addresses": ["ok@example.com", "jane\\ud800@example.com",'
        b' "x\\udc00\\ud800@example.com", {"email": "b\\udfff@example.com"}]}'
    )
    response = client.post("/v1/checks", data=body, content_type="application/json", headers=sender)
    assert response.status_code == 422
    listed = response.get_json()["errors"]["json"]["addresses"]
    assert sorted(listed) == ["1", "2", "3"]
    assert "lone surrogate" in listed["1"][0]


def test_escaped_astral_characters_are_echoed_as_sent(client, sender):
    body = b'{"addresses": ["\\ud83d\\ude00@example.com", "x\\\\ud800"]}'
    response = client.post(
        "/v1/checks?detail=all", data=body, content_type="application/json", headers=sender
    )
    assert response.status_code == 200, response.get_json()
    emails = [r["email"] for r in response.get_json()["results"]]
    assert emails == ["\U0001f600@example.com", "x\\ud800"]


def test_reasons_follow_the_contracts_order(client, sender):
    record(client, sender, "all@example.com")
    block(client, sender, "all@example.com", "hard_bounce")
    block(client, sender, "all@example.com", "complaint")
    block(client, sender, "bounced@example.com", "hard_bounce")
    record(client, sender, "bounced@example.com")
    block(client, sender, "restricted@example.com", "restriction")
    block(client, sender, "objected@example.de", "objection")
    assert results(
        client,
        sender,
        ["all@example.com", "bounced@example.com", "restricted@example.com", "objected@example.de"],
    ) == [
        ("all@example.com", False, "complained"),
        ("bounced@example.com", False, "bounced"),
        ("restricted@example.com", False, "restricted"),
        ("objected@example.de", False, "restricted"),
    ]


def test_lifting_a_restriction_makes_the_address_sendable_again(client, sender, staff):
    block(client, sender, "r@example.com", "restriction")
    block(client, staff, "r@example.com", "lift_restriction")
    assert results(client, sender, ["r@example.com"]) == [("r@example.com", True, None)]


def test_recorded_opt_in_makes_an_opt_in_jurisdiction_sendable(client, sender):
    record(client, sender, "li@example.com", status="opted_in", country="CA")
    assert results(client, sender, ["li@example.com", "new@example.ca"]) == [
        ("li@example.com", True, None),
        ("new@example.ca", False, "opt_in_required"),
    ]


def test_a_declared_country_beats_the_hint_in_the_check(client, sender):
    record(
        client, sender, "a@example.com", status="opted_in", country="US", country_source="declared"
    )
    assert results(client, sender, [{"email": "a@example.com", "country": "DE"}]) == [
        ("a@example.com", True, None)
    ]


def test_a_hint_in_the_check_beats_the_inferred_country(client, sender):
    assert results(client, sender, [{"email": "x@firma.de", "country": "US"}, "y@shop.co.uk"]) == [
        ("x@firma.de", True, None),
        ("y@shop.co.uk", False, "opt_in_required"),
    ]


def test_eea_addresses_are_admitted_with_an_opt_in_when_settings_say_so(
    make_settings, clock, engine, sender_for
):
    client, headers = sender_for(make_settings(EEA_POLICY="opt_in"))
    record(client, headers, "hans@firma.de", status="opted_in")
    assert results(client, headers, ["hans@firma.de", "greta@firma.de"]) == [
        ("hans@firma.de", True, None),
        ("greta@firma.de", False, "opt_in_required"),
    ]


def test_unknown_jurisdiction_can_be_made_unsendable(make_settings, sender_for):
    client, headers = sender_for(make_settings(REGIME_UNKNOWN="deny"))
    assert results(client, headers, ["bob@example.com", "joe@example.us"]) == [
        ("bob@example.com", False, "unknown_jurisdiction"),
        ("joe@example.us", True, None),
    ]


def test_soft_opt_in_lasts_two_years_after_a_purchase(make_settings, sender_for, clock):
    client, headers = sender_for(make_settings(SOFT_OPT_IN_COUNTRIES="CA"))
    response = client.post(
        "/v1/relationships",
        json={"email": "buyer@shop.ca", "kind": "purchase", "occurred_at": "2025-01-01T00:00:00Z"},
        headers=headers,
    )
    assert response.status_code == 201
    assert results(client, headers, ["buyer@shop.ca"]) == [("buyer@shop.ca", True, None)]
    clock.advance(days=400)  # now 2028-01: more than two years after the purchase
    assert results(client, headers, ["buyer@shop.ca"]) == [
        ("buyer@shop.ca", False, "opt_in_required")
    ]


def test_unknown_purpose_is_422(client, sender):
    response = client.post("/v1/checks", json={"purpose": "all", "addresses": []}, headers=sender)
    assert response.status_code == 422
    assert "purpose" in response.get_json()["errors"]


def test_unknown_country_hint_is_422_naming_the_position(client, sender):
    response = client.post(
        "/v1/checks",
        json={"addresses": ["a@example.com", {"email": "b@example.com", "country": "XX"}]},
        headers=sender,
    )
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"]["addresses"] == {
        "1": ["unknown country code 'XX'"]
    }


def test_addresses_must_be_a_list(client, sender):
    response = client.post("/v1/checks", json={"addresses": "a@example.com"}, headers=sender)
    assert response.status_code == 422
    assert "addresses" in response.get_json()["errors"]["json"]


def test_malformed_json_is_400(client, sender):
    response = client.post(
        "/v1/checks", data=b'{"addresses": [', content_type="application/json", headers=sender
    )
    assert response.status_code == 400


def test_an_oversized_body_is_413_in_the_error_shape(app, client, sender):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.post(
        "/v1/checks", json={"addresses": ["a@example.com"] * 100}, headers=sender
    )
    assert response.status_code == 413
    assert response.get_json()["code"] == 413


def test_a_check_stores_nothing_about_the_addresses(client, sender, session):
    record(client, sender, "known@example.com")
    before = (
        session.scalar(select(func.count()).select_from(Subject)),
        session.scalar(select(func.count()).select_from(ConsentEvent)),
    )
    session.rollback()
    results(client, sender, [f"user{i}@example.com" for i in range(200)])
    after = (
        session.scalar(select(func.count()).select_from(Subject)),
        session.scalar(select(func.count()).select_from(ConsentEvent)),
    )
    assert before == after == (1, 1)


def test_a_list_larger_than_one_chunk_keeps_order_and_answers(make_settings, sender_for):
    settings = replace(make_settings(), check_chunk_size=7)
    client, headers = sender_for(settings)
    for i in range(0, 30, 3):
        record(client, headers, f"user{i}@example.com")
    addresses = [f"user{i}@example.com" for i in range(30)]
    answered = results(client, headers, addresses)
    assert [a[0] for a in answered] == addresses
    assert [i for i, a in enumerate(answered) if a[2] == "opted_out"] == list(range(0, 30, 3))


# --- CSV ---------------------------------------------------------------------


def csv_check(client, headers, body, **query):
    return client.post(
        "/v1/checks.csv", query_string=query, data=body, content_type="text/csv", headers=headers
    )


def test_csv_check_answers_email_sendable_reason(client, sender):
    record(client, sender, "jane.doe@example.com")
    body = (
        "email,country\n jane.doe@example.com,\nhans@firma.de,\nbob@example.com,\n"
        "li@example.com,ca\n"
    )
    response = csv_check(client, sender, body)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.get_data(as_text=True) == (
        "email,sendable,reason\n"
        " jane.doe@example.com,false,opted_out\n"
        "hans@firma.de,false,eea\n"
        "bob@example.com,true,\n"
        "li@example.com,false,opt_in_required\n"
    )


@pytest.mark.parametrize(
    ("only", "expected"),
    [
        ("sendable", "email\nbob@example.com\n"),
        ("suppressed", "email,sendable,reason\nx@example.com,false,opted_out\nbad,false,invalid\n"),
    ],
)
def test_csv_only_filters_the_answer(client, sender, only, expected):
    record(client, sender, "x@example.com")
    response = csv_check(client, sender, "email\nx@example.com\nbob@example.com\nbad\n", only=only)
    assert response.get_data(as_text=True) == expected


def test_csv_header_may_have_other_columns_and_a_bom(client, sender):
    body = "\ufeffName,Email,Country\nBob,bob@example.com,US\n\nLi,li@example.com,CA\n"
    response = csv_check(client, sender, body.encode("utf-8"))
    assert response.get_data(as_text=True) == (
        "email,sendable,reason\nbob@example.com,true,\nli@example.com,false,opt_in_required\n"
    )


def test_csv_without_an_email_column_is_422(client, sender):
    response = csv_check(client, sender, "address\na@example.com\n")
    assert response.status_code == 422
    assert "email" in response.get_json()["message"]


def test_csv_that_is_not_utf8_is_400(client, sender):
    response = csv_check(client, sender, b"email\nj\xf6rg@example.com\n")
    assert response.status_code == 400
    assert "UTF-8" in response.get_json()["message"]


def test_csv_with_an_unknown_country_is_422_naming_the_line(client, sender):
    response = csv_check(client, sender, "email,country\na@example.com,US\nb@example.com,QQ\n")
    assert response.status_code == 422
    assert response.get_json()["errors"]["csv"] == {"3": ["unknown country code 'QQ'"]}


def test_csv_check_refuses_json(client, sender):
    response = client.post("/v1/checks.csv", json={"addresses": []}, headers=sender)
    assert response.status_code == 415
    assert response.get_json()["code"] == 415


def test_csv_empty_body_is_422(client, sender):
    assert csv_check(client, sender, "").status_code == 422
