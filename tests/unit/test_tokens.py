"""Link tokens: round trip, kinds, and rejection of every changed, cut, re-keyed,
expired or wrong-kind token."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from legacy_tokens import legacy_unsubscribe_token

from suppression.domain.tokens import (
    MAX_CAMPAIGN_BYTES,
    ClaimsError,
    ConfirmationClaims,
    LinkClaims,
    LinkKind,
    LinkTokens,
    TokenError,
    TokenProblem,
    list_unsubscribe_headers,
    unsubscribe_mailto,
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


link_kinds = st.sampled_from([LinkKind.UNSUBSCRIBE, LinkKind.PREFERENCES])
minters = st.none() | st.integers(min_value=1, max_value=2**32 - 1)


@examples
@given(
    address=addresses,
    purpose=purposes,
    campaign=campaigns,
    issued=moments,
    kind=link_kinds,
    minter=minters,
)
def test_a_minted_token_reads_back_as_its_claims(
    tokens, address, purpose, campaign, issued, kind, minter
):
    claims = tokens.read(tokens.mint(address, purpose, campaign, issued, kind, minter), NOW, VALID)
    assert claims.address == address
    assert claims.purpose == purpose
    assert claims.campaign == campaign
    assert claims.issued_at == issued.replace(microsecond=0)
    assert claims.kind == kind
    assert claims.minter == minter


def test_a_token_is_url_safe_and_short(tokens):
    token = mint(tokens, campaign=None)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    # The figure docs/api.md and the module docstring give: 66 characters without a
    # campaign, 92 with a 20-character one.
    assert len(token) == 66
    assert len(tokens.mint(ADDRESS, "email_marketing", "2026-11-black-friday", NOW)) == 92


def test_a_token_minted_before_kinds_reads_as_an_unsubscribe_token(tokens):
    token = legacy_unsubscribe_token(KEY_1, NOW, ADDRESS, "email_marketing", b"2026-10-news")
    assert len(token) == 75  # byte for byte what format 1 minted
    claims = tokens.read(token, NOW, VALID)
    assert claims == LinkClaims(ADDRESS, "email_marketing", "2026-10-news", NOW)
    assert (claims.kind, claims.minter) == (LinkKind.UNSUBSCRIBE, None)
    with pytest.raises(TokenError) as caught:
        tokens.read_confirmation(token, NOW, VALID)
    assert caught.value.problem == TokenProblem.WRONG_KIND


@examples
@given(kind=link_kinds, data=st.data())
def test_the_kind_of_a_token_cannot_be_changed(tokens, kind, data):
    token = tokens.mint(ADDRESS, "email_marketing", None, NOW, kind, 7)
    assert tokens.read(token, NOW, VALID).kind == kind
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    # The kind is the first byte of the ciphertext: any change to it breaks the tag.
    raw[18] ^= data.draw(st.integers(min_value=1, max_value=255))
    changed = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert problem(tokens, changed) == TokenProblem.FORGED


@examples
@given(
    address=addresses,
    chosen=st.lists(purposes, min_size=1, max_size=4, unique=True),
    request_id=st.integers(min_value=1, max_value=2**63 - 1),
    requested=moments,
)
def test_a_confirmation_token_reads_back_and_opens_nothing_else(
    tokens, address, chosen, request_id, requested
):
    token = tokens.mint_confirmation(address, chosen, request_id, requested)
    hours = timedelta(hours=48)
    assert tokens.read_confirmation(token, requested, hours) == ConfirmationClaims(
        address, tuple(chosen), request_id, requested.replace(microsecond=0)
    )
    with pytest.raises(TokenError) as caught:
        tokens.read(token, requested, VALID)
    assert caught.value.problem == TokenProblem.WRONG_KIND
    assert caught.value.kind == LinkKind.CONFIRMATION


def test_a_link_token_is_no_confirmation_and_a_confirmation_expires_in_hours(tokens):
    for kind in (LinkKind.UNSUBSCRIBE, LinkKind.PREFERENCES):
        link = tokens.mint(ADDRESS, "email_marketing", None, NOW, kind)
        with pytest.raises(TokenError) as caught:
            tokens.read_confirmation(link, NOW, VALID)
        assert caught.value.problem == TokenProblem.WRONG_KIND
    token = tokens.mint_confirmation(ADDRESS, ["email_marketing"], 1, NOW)
    hours = timedelta(hours=48)
    assert tokens.read_confirmation(token, NOW + hours, hours).request_id == 1
    with pytest.raises(TokenError) as caught:
        tokens.read_confirmation(token, NOW + hours + timedelta(seconds=1), hours)
    assert caught.value.problem == TokenProblem.EXPIRED


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
    # 66 characters leave spare bits in the last one; base64 would ignore them.
    token = mint(tokens, campaign=None)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    twin = token[:-1] + alphabet[last ^ 1]
    padding = "=" * (-len(token) % 4)
    assert base64.urlsafe_b64decode(twin + padding) == base64.urlsafe_b64decode(token + padding)
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
    mailto = unsubscribe_mailto("unsubscribe@example.com", "AQE")
    with_mailbox = list_unsubscribe_headers(url, mailto)
    assert with_mailbox["List-Unsubscribe"] == (
        f"<{url}>, <mailto:unsubscribe@example.com?subject=unsubscribe%20AQE>"
    )


def test_the_plus_mailto_carries_the_token_as_a_sub_address():
    assert unsubscribe_mailto("unsubscribe@example.com", "AQ-_z9", plus=True) == (
        "mailto:unsubscribe+AQ-_z9@example.com?subject=unsubscribe"
    )
