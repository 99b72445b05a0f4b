"""Unsubscribe-link tokens: round trip, and rejection of every changed, cut, re-keyed
or expired token."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suppression.domain.tokens import (
    MAX_CAMPAIGN_BYTES,
    ClaimsError,
    LinkTokens,
    TokenError,
    TokenProblem,
    list_unsubscribe_headers,
)

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(32, 64))
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
VALID = timedelta(days=180)
ADDRESS = "jane.doe@example.com"

examples = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

local_parts = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc", "Zs"), exclude_characters="@"
    ),
    min_size=1,
    max_size=64,
)
addresses = st.builds(
    lambda local, domain: f"{local}@{domain}.com",
    local_parts,
    st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True),
)
purposes = st.sampled_from(["email_marketing", "ad_audiences", "all", "sms_marketing", "x"])
campaigns = st.none() | st.text(min_size=1, max_size=25)
moments = st.builds(
    lambda seconds, micro: NOW - timedelta(seconds=seconds, microseconds=micro),
    st.integers(min_value=0, max_value=180 * 86400 - 1),
    st.integers(min_value=0, max_value=999_999),
)


@pytest.fixture
def tokens() -> LinkTokens:
    return LinkTokens({1: KEY_1})


def mint(tokens: LinkTokens, address: str = ADDRESS, campaign: str | None = "2026-11-news") -> str:
    return tokens.mint(address, "email_marketing", campaign, NOW)


def problem(tokens: LinkTokens, token: str, now: datetime = NOW) -> TokenProblem:
    with pytest.raises(TokenError) as caught:
        tokens.read(token, now, VALID)
    return caught.value.problem


@examples
@given(address=addresses, purpose=purposes, campaign=campaigns, issued=moments)
def test_a_minted_token_reads_back_as_its_claims(tokens, address, purpose, campaign, issued):
    claims = tokens.read(tokens.mint(address, purpose, campaign, issued), NOW, VALID)
    assert claims.address == address
    assert claims.purpose == purpose
    assert claims.campaign == campaign
    assert claims.issued_at == issued.replace(microsecond=0)


def test_a_token_is_url_safe_and_short(tokens):
    token = mint(tokens, campaign=None)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    # The figure the README and the module docstring give: 59 characters without a
    # campaign, 86 with a 20-character one.
    assert len(token) == 59
    assert len(tokens.mint(ADDRESS, "email_marketing", "2026-11-black-friday", NOW)) == 86


def test_the_address_cannot_be_read_from_a_token(tokens):
    token = mint(tokens)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for secret in (ADDRESS, "jane.doe", "example.com", "2026-11-news"):
        assert secret.encode() not in raw
        assert secret not in token


@examples
@given(data=st.data())
def test_any_flipped_bit_is_rejected(tokens, data):
    token = mint(tokens)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    bit = data.draw(st.integers(min_value=0, max_value=len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    changed = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert problem(tokens, changed) in {
        TokenProblem.MALFORMED,
        TokenProblem.UNKNOWN_KEY,
        TokenProblem.FORGED,
    }


@examples
@given(data=st.data())
def test_any_changed_character_is_rejected(tokens, data):
    token = mint(tokens)
    at = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.~ ")
    )
    changed = token[:at] + replacement + token[at + 1 :]
    if changed == token:
        return
    with pytest.raises(TokenError):
        tokens.read(changed, NOW, VALID)


@examples
@given(data=st.data())
def test_a_truncated_or_extended_token_is_rejected(tokens, data):
    token = mint(tokens)
    cut = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    assert problem(tokens, token[:cut]) in {TokenProblem.MALFORMED, TokenProblem.FORGED}
    extra = data.draw(st.text(alphabet="ABCabc0123-_", min_size=1, max_size=8))
    assert problem(tokens, token + extra) in {TokenProblem.MALFORMED, TokenProblem.FORGED}


def test_a_token_from_another_key_with_the_same_id_is_forged():
    token = mint(LinkTokens({1: KEY_2}))
    assert problem(LinkTokens({1: KEY_1}), token) == TokenProblem.FORGED


def test_a_token_whose_key_was_dropped_is_rejected():
    token = mint(LinkTokens({1: KEY_1}))
    assert problem(LinkTokens({2: KEY_2}), token) == TokenProblem.UNKNOWN_KEY


def test_after_rotation_new_links_use_the_new_key_and_old_links_still_work():
    old = mint(LinkTokens({1: KEY_1}))
    rotated = LinkTokens({1: KEY_1, 2: KEY_2})
    new = mint(rotated)
    assert rotated.read(old, NOW, VALID).address == ADDRESS
    assert rotated.read(new, NOW, VALID).address == ADDRESS
    assert problem(LinkTokens({1: KEY_1}), new) == TokenProblem.UNKNOWN_KEY


def test_a_token_is_valid_for_its_whole_period_and_expires_after(tokens):
    token = mint(tokens)
    assert tokens.read(token, NOW + VALID, VALID).address == ADDRESS
    assert problem(tokens, token, NOW + VALID + timedelta(seconds=1)) == TokenProblem.EXPIRED


@examples
@given(age=st.integers(min_value=181 * 86400, max_value=20 * 365 * 86400))
def test_any_token_older_than_the_period_is_expired(tokens, age):
    assert problem(tokens, mint(tokens), NOW + timedelta(seconds=age)) == TokenProblem.EXPIRED


def test_a_token_minted_well_in_the_future_is_rejected(tokens):
    token = tokens.mint(ADDRESS, "email_marketing", None, NOW + timedelta(hours=1))
    assert problem(tokens, token) == TokenProblem.FORGED
    skewed = tokens.mint(ADDRESS, "email_marketing", None, NOW + timedelta(minutes=4))
    assert tokens.read(skewed, NOW, VALID).address == ADDRESS


@pytest.mark.parametrize(
    "text", ["", "!!!!", "AQE", "a" * 500, "AQE=", "AQE" + "\u00e9" * 40, "A" * 61]
)
def test_text_that_is_no_token_is_malformed(tokens, text):
    assert problem(tokens, text) in {TokenProblem.MALFORMED, TokenProblem.UNKNOWN_KEY}


@examples
@given(text=st.text(max_size=200) | st.from_regex(r"[A-Za-z0-9_=-]{0,120}", fullmatch=True))
def test_any_text_is_refused_as_a_token_problem_and_nothing_else(tokens, text):
    assert problem(tokens, text) in set(TokenProblem)


def test_a_non_canonical_spelling_of_a_token_is_rejected(tokens):
    # 59 characters leave spare bits in the last one; base64 would ignore them.
    token = mint(tokens, campaign=None)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    twin = token[:-1] + alphabet[last ^ 1]
    assert base64.urlsafe_b64decode(twin + "=") == base64.urlsafe_b64decode(token + "=")
    assert problem(tokens, twin) == TokenProblem.MALFORMED


def test_a_campaign_too_long_for_a_link_is_refused(tokens):
    assert tokens.mint(ADDRESS, "all", "c" * MAX_CAMPAIGN_BYTES, NOW)
    with pytest.raises(ClaimsError):
        tokens.mint(ADDRESS, "all", "c" * (MAX_CAMPAIGN_BYTES + 1), NOW)
    with pytest.raises(ClaimsError):
        tokens.mint(ADDRESS, "all", "\u00e9" * 51, NOW)  # 102 bytes in UTF-8


def test_key_ids_are_one_byte():
    with pytest.raises(ValueError, match=r"0\.\.255"):
        LinkTokens({256: KEY_1})
    with pytest.raises(ValueError, match="at least one"):
        LinkTokens({})


def test_headers_hold_one_https_uri_and_the_mailto_when_configured():
    url = "https://optout.example.com/u/AQE"
    assert list_unsubscribe_headers(url, None) == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    with_mailbox = list_unsubscribe_headers(url, "unsubscribe@example.com")
    assert with_mailbox["List-Unsubscribe"] == (
        f"<{url}>, <mailto:unsubscribe@example.com?subject=unsubscribe>"
    )
