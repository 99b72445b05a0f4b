"""Address canonicalisation, syntax checks, keyed index, hashes and masking."""

from __future__ import annotations

import hashlib
import hmac
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from suppression.domain.addresses import (
    MAX_ADDRESS,
    MAX_LOCAL,
    InvalidAddress,
    KeyedIndexer,
    _canonicalise_full,
    canonicalise,
    canonicalise_strict,
    domain_of,
    keyed_index,
    mask,
    sha256_hex,
)

# --- strategies ----------------------------------------------------------------

# Unicode letters whose upper and lower case map one-to-one, so that changing
# their case is a pure case change (unlike "ß" -> "SS" or a final sigma).
_SIMPLE_CASE_UNICODE = "äöüéèñøåçłжщ"
_ATOM_CHARS = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"

atoms = st.text(alphabet=_ATOM_CHARS, min_size=1, max_size=12)
unicode_atoms = st.text(alphabet=_ATOM_CHARS + _SIMPLE_CASE_UNICODE, min_size=1, max_size=12)


@st.composite
def local_parts(draw, atom=atoms):
    local = ".".join(draw(st.lists(atom, min_size=1, max_size=4)))
    return local[:MAX_LOCAL].rstrip(".")


# Letters and digits with single inner hyphens: valid both as a plain ASCII label
# and next to an IDNA label (IDNA forbids "--" in the third and fourth place).
ascii_labels = st.from_regex(r"[a-zA-Z0-9]{1,10}(-[a-zA-Z0-9]{1,10}){0,2}", fullmatch=True)


unicode_labels = st.sampled_from(["bücher", "münchen", "café", "ñandú", "øre", "日本", "пример"])
tlds = st.sampled_from(["com", "org", "net", "de", "uk", "io", "email", "COM", "De"])


@st.composite
def ascii_addresses(draw):
    labels = draw(st.lists(ascii_labels, min_size=1, max_size=3))
    return f"{draw(local_parts())}@{'.'.join(labels)}.{draw(tlds)}"


@st.composite
def international_addresses(draw):
    labels = draw(st.lists(ascii_labels | unicode_labels, min_size=1, max_size=3))
    local = draw(local_parts(unicode_atoms))
    return f"{local}@{'.'.join(labels)}.{draw(tlds)}"


addresses = ascii_addresses() | international_addresses()
whitespace = st.text(alphabet=" \t\r\n\u00a0\u2003\u3000", max_size=4)
# Arbitrary text, and text shaped like an address so that the paths past the
# first checks are reached often.
address_like = st.builds("{}@{}".format, st.text(max_size=30), st.text(max_size=30)) | st.text()


def _flip_ascii_case(text: str, flips: list[bool]) -> str:
    return "".join(
        ch.swapcase() if ch.isascii() and flip else ch
        for ch, flip in zip(text, flips + [False] * len(text), strict=False)
    )


# "example" in fullwidth letters, which IDNA maps to ASCII.
FULLWIDTH_EXAMPLE = "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45"


# --- canonical form ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("  jane@example.com\n", "jane@example.com"),
        ("\tJANE@EXAMPLE.COM\t", "jane@example.com"),
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("User@BÜCHER.DE", "user@xn--bcher-kva.de"),
        ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
        (f"a@{FULLWIDTH_EXAMPLE}.com", "a@example.com"),
        ("jöhn@example.com", "jöhn@example.com"),
        ("a+tag@x.com", "a+tag@x.com"),
        ("Jane+Newsletter@Example.com", "jane+newsletter@example.com"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("first.middle.last@sub.example.co.uk", "first.middle.last@sub.example.co.uk"),
        ("a@b-c.io", "a@b-c.io"),
        ("a@example.xn--p1ai", "a@example.xn--p1ai"),
    ],
)
def test_canonicalise_trims_lower_cases_and_idna_encodes_the_domain(raw, canonical):
    assert canonicalise(raw) == canonical


def test_canonicalise_keeps_plus_address_tags():
    assert canonicalise("a+tag@x.com") == "a+tag@x.com"
    assert canonicalise("a+tag@x.com") != canonicalise("a@x.com")


def test_canonicalise_keeps_dots_in_the_local_part():
    assert canonicalise("j.a.n.e@gmail.com") == "j.a.n.e@gmail.com"


_LONG_DOMAIN_189 = f"{'b' * 63}.{'c' * 63}.{'d' * 57}.com"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   ", "only whitespace"),
        ("jane.example.com", "no @"),
        ("jane@@example.com", "two @ in a row"),
        ("jane@doe@example.com", "two @"),
        ("@example.com", "empty local part"),
        ("jane@", "empty domain"),
        ("@", "only @"),
        ("jane doe@example.com", "space in the local part"),
        ("jane@exa mple.com", "space in the domain"),
        ("jane\u00a0doe@example.com", "no-break space in the local part"),
        (".jane@example.com", "leading dot in the local part"),
        ("jane.@example.com", "trailing dot in the local part"),
        ("ja..ne@example.com", "consecutive dots in the local part"),
        ("jane@.example.com", "leading dot in the domain"),
        ("jane@example.com.", "trailing dot in the domain"),
        ("jane@example..com", "consecutive dots in the domain"),
        ("jane@bücher..de", "consecutive dots in an international domain"),
        ("jane@bücher.de.", "trailing dot in an international domain"),
        ("a" * (MAX_LOCAL + 1) + "@example.com", "local part over 64 characters"),
        ("ü" * (MAX_LOCAL + 1) + "@example.com", "unicode local part over 64 characters"),
        ("ü" * (MAX_LOCAL + 1) + "@bücher.de", "over-long local part, international domain"),
        ("a" * 64 + "@" + f"{'b' * 63}.{'c' * 63}.{'d' * 58}.com", "address of 255"),
        ("a" * 64 + "@" + f"{'b' * 63}.{'c' * 63}.{'d' * 63}.com", "address over 254"),
        ("a" * 64 + "@" + "bücher." * 14 + "de", "over 254 only after IDNA encoding"),
        ("jane@-example.com", "domain label starting with a hyphen"),
        ("jane@example-.com", "domain label ending with a hyphen"),
        ("jane@sub.-example.com", "inner domain label starting with a hyphen"),
        ("jane@-bücher.de", "international label starting with a hyphen"),
        ("jane@" + "b" * 64 + ".com", "domain label over 63 characters"),
        ("jane@example.123", "numeric TLD"),
        ("jane@192.0.2.1", "IP address as domain"),
        ("jane@[192.0.2.1]", "address literal"),
        ("jane@example", "no TLD"),
        ("jane@localhost", "single-label domain"),
        ("jane@example.c", "one-letter TLD"),
        ("jane@exa_mple.com", "underscore in the domain"),
        ('"jane"@example.com', "quoted local part"),
        ("jane(comment)@example.com", "comment in the local part"),
        ("jane@example.com>", "angle bracket"),
        ("<jane@example.com>", "angle brackets around the address"),
        ("Jane Doe <jane@example.com>", "display name"),
        ("jane@example.com,john@example.com", "two addresses"),
        ("jane@exa\u2603mple.c\u2603m", "symbol in the domain"),
    ],
)
def test_canonicalise_returns_none_for_invalid_addresses(raw, why):
    assert canonicalise(raw) is None, why


@pytest.mark.parametrize(
    "raw",
    [
        "a" * MAX_LOCAL + "@example.com",
        "ü" * MAX_LOCAL + "@example.com",
        "jane@" + "b" * 63 + ".com",
        "a" * 64 + "@" + _LONG_DOMAIN_189,
    ],
    ids=["local-64", "unicode-local-64", "label-63", "address-254"],
)
def test_canonicalise_accepts_addresses_at_the_length_limits(raw):
    assert canonicalise(raw) == raw


def test_longest_accepted_address_is_exactly_254_characters():
    raw = "a" * 64 + "@" + _LONG_DOMAIN_189
    assert len(raw) == MAX_ADDRESS == 254
    assert canonicalise(raw) == raw
    assert canonicalise("a" + raw) is None


@given(addresses)
@example("Jane.Doe@Example.COM")
@example("user@bücher.de")
def test_canonicalise_accepts_generated_addresses(raw):
    assert canonicalise(raw) is not None


@given(addresses | address_like)
@example("user@BÜCHER.DE")
@example(f"a@{FULLWIDTH_EXAMPLE}.com")
def test_canonicalise_is_idempotent(raw):
    canonical = canonicalise(raw)
    if canonical is not None:
        assert canonicalise(canonical) == canonical
    else:
        assert canonicalise(raw) is None


@given(addresses | address_like, whitespace, whitespace)
def test_canonicalise_ignores_surrounding_whitespace(raw, before, after):
    assert canonicalise(before + raw + after) == canonicalise(raw)


@given(addresses)
def test_canonicalise_is_invariant_under_upper_and_lower_case(raw):
    canonical = canonicalise(raw)
    assert canonicalise(raw.upper()) == canonical
    assert canonicalise(raw.lower()) == canonical
    assert canonicalise(raw.title()) == canonical
    assert canonicalise(raw.swapcase()) == canonical


@given(addresses | address_like, st.lists(st.booleans()))
def test_canonicalise_is_invariant_under_ascii_case_changes_of_any_text(raw, flips):
    assert canonicalise(_flip_ascii_case(raw, flips)) == canonicalise(raw)


@given(st.text())
def test_canonicalise_never_raises_on_arbitrary_text(raw):
    result = canonicalise(raw)
    assert result is None or isinstance(result, str)


@given(address_like)
def test_canonicalise_never_raises_on_text_around_an_at_sign(raw):
    result = canonicalise(raw)
    assert result is None or "@" in result


@given(addresses)
def test_canonical_form_is_trimmed_lower_case_and_ascii_domain(raw):
    canonical = canonicalise(raw)
    assert canonical is not None
    assert canonical == canonical.strip()
    assert canonical == canonical.lower()
    assert domain_of(canonical).isascii()
    assert len(canonical) <= MAX_ADDRESS
    assert len(canonical.rpartition("@")[0]) <= MAX_LOCAL


# --- strict check for single writes ----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("user@bücher.de", "user@xn--bcher-kva.de"),
        ("a+tag@x.com", "a+tag@x.com"),
        ("jöhn@example.com", "jöhn@example.com"),
    ],
)
def test_canonicalise_strict_returns_the_same_canonical_form(raw, canonical):
    assert canonicalise_strict(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "jane.example.com",
        "jane@@example.com",
        "@example.com",
        "jane@",
        "jane doe@example.com",
        "jane..doe@example.com",
        "a" * 65 + "@example.com",
        "jane@-example.com",
        "jane@example.123",
    ],
)
def test_canonicalise_strict_raises_invalid_address_for_syntax_errors(raw):
    with pytest.raises(InvalidAddress, match=r"(?i)not a valid email address"):
        canonicalise_strict(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "jane@example.test",
        "jane@example.localhost",
        "jane@host.invalid",
        "jane@example.onion",
    ],
    ids=["test-tld", "localhost-tld", "invalid-tld", "onion"],
)
def test_canonicalise_strict_rejects_what_only_email_validator_catches(raw):
    assert canonicalise(raw) is not None  # the cheap bulk check lets it through
    with pytest.raises(InvalidAddress) as info:
        canonicalise_strict(raw)
    assert str(info.value)


@pytest.mark.parametrize("raw", [None, 42, b"jane@example.com"])
def test_canonicalise_strict_raises_invalid_address_for_non_text(raw):
    with pytest.raises(InvalidAddress):
        canonicalise_strict(raw)


def test_invalid_address_is_a_value_error():
    assert issubclass(InvalidAddress, ValueError)


def _strict_or_none(raw):
    try:
        return canonicalise_strict(raw)
    except InvalidAddress:
        return None


@given(addresses | address_like)
@example("Jane.Doe@Example.COM ")
@example("user@bücher.de")
@example("jane@example.test")
def test_strict_check_accepts_only_bulk_valid_addresses_with_the_same_canonical_form(raw):
    strict = _strict_or_none(raw)
    assert strict is None or strict == canonicalise(raw)


@given(addresses)
def test_strict_check_accepts_generated_addresses_on_public_domains(raw):
    assert canonicalise_strict(raw) == canonicalise(raw)


# --- keyed index, hashes, masking ----------------------------------------------

KEY_A = b"k" * 32
KEY_B = b"K" * 32


def test_keyed_index_is_deterministic_for_one_key():
    assert keyed_index(KEY_A, "jane@example.com") == keyed_index(KEY_A, "jane@example.com")


def test_keyed_index_differs_per_key():
    assert keyed_index(KEY_A, "jane@example.com") != keyed_index(KEY_B, "jane@example.com")


def test_keyed_index_differs_per_address():
    assert keyed_index(KEY_A, "jane@example.com") != keyed_index(KEY_A, "john@example.com")


@pytest.mark.parametrize("canonical", ["jane@example.com", "jöhn@xn--bcher-kva.de", ""])
def test_keyed_index_is_32_bytes_of_hmac_sha256(canonical):
    digest = keyed_index(KEY_A, canonical)
    assert isinstance(digest, bytes)
    assert len(digest) == 32
    assert digest == hmac.new(KEY_A, canonical.encode("utf-8"), hashlib.sha256).digest()


@given(addresses, st.binary(min_size=1, max_size=64))
def test_keyed_index_is_32_bytes_for_any_key_and_address(raw, key):
    assert len(keyed_index(key, canonicalise(raw))) == 32


@pytest.mark.parametrize("canonical", ["jane@example.com", "jöhn@xn--bcher-kva.de", ""])
def test_sha256_hex_matches_hashlib(canonical):
    assert sha256_hex(canonical) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_sha256_hex_of_canonical_form_hashes_the_trimmed_lower_cased_address():
    expected = hashlib.sha256(b"jane.doe@example.com").hexdigest()
    assert sha256_hex(canonicalise("  Jane.Doe@Example.COM ")) == expected


def test_sha256_hex_is_64_lower_case_hex_digits():
    digest = sha256_hex("jane@example.com")
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")


@pytest.mark.parametrize(
    ("canonical", "masked"),
    [
        ("jane@example.com", "j***@example.com"),
        ("j@example.com", "j***@example.com"),
        ("jöhn@xn--bcher-kva.de", "j***@xn--bcher-kva.de"),
        ("a+tag@x.com", "a***@x.com"),
    ],
)
def test_mask_keeps_first_character_and_domain(canonical, masked):
    assert mask(canonical) == masked


def test_mask_hides_the_rest_of_the_local_part():
    assert "ane" not in mask("jane@example.com")


@pytest.mark.parametrize(
    ("canonical", "domain"),
    [("jane@example.com", "example.com"), ("user@xn--bcher-kva.de", "xn--bcher-kva.de")],
)
def test_domain_of_returns_the_part_after_the_at_sign(canonical, domain):
    assert domain_of(canonical) == domain


@pytest.mark.parametrize(
    "raw",
    [
        "jane\x00doe@example.com",
        "jane\x7fdoe@example.com",
        "jane\u200bdoe@example.com",
        "jane\tdoe@example.com",
    ],
    ids=["nul", "del", "zero-width-space", "tab"],
)
def test_bulk_check_rejects_control_and_invisible_characters(raw):
    assert canonicalise(raw) is None


def test_composed_and_decomposed_unicode_give_one_canonical_form():
    composed = "j\u00f6rg@example.com"
    decomposed = "jo\u0308rg@example.com"
    assert canonicalise(composed) == canonicalise(decomposed) == composed


@pytest.mark.parametrize(
    "raw",
    [
        "jane\ud800doe@example.com",
        "\udcffjane@example.com",
        "jane@exam\udfffple.com",
        "jörg\ud800@example.de",
        "jane@bücher\ud83d.de",
        "jane@example.com\ud800",
        "\x00jane@example.com",
        "jane@example.com\x00",
        "jane@exa\x00mple.com",
        "jörg\x00@bücher.de",
    ],
    ids=[
        "surrogate-local",
        "surrogate-first",
        "surrogate-domain",
        "surrogate-unicode-local",
        "surrogate-idn-domain",
        "surrogate-last",
        "nul-first",
        "nul-last",
        "nul-domain",
        "nul-unicode",
    ],
)
def test_a_lone_surrogate_or_a_nul_is_not_an_address(raw):
    assert canonicalise(raw) is None
    with pytest.raises(InvalidAddress):
        canonicalise_strict(raw)


# Surrogates (Cs) and control characters (Cc, NUL among them) among ordinary ones.
hostile_text = st.text(
    alphabet=st.characters(categories=["Cs", "Cc", "Ll", "Lu", "Nd", "Po"]), max_size=40
)


@given(hostile_text, address_like)
def test_every_canonical_form_has_a_utf8_form(noise, raw):
    """What the index, the seal and the hashes are computed from must encode, even
    from text with lone surrogates (JSON "\\ud800") anywhere in it."""
    for text in (noise, raw, noise + raw, raw + noise, noise + "@example.com"):
        canonical = canonicalise(text)
        assert canonical is None or canonical.encode("utf-8")


# --- the plain-shape fast path and the precomputed HMAC --------------------------

_PLAIN_CHARS = string.ascii_letters + string.digits + "._+-"
# Near the plain shape, where a fast path would go wrong: dots, hyphens and digits in
# every place, a few characters outside it, long labels and local parts.
_NEAR_PLAIN = st.text(alphabet=_PLAIN_CHARS + "@@..--'!é\u212a \t", min_size=0, max_size=80)


@st.composite
def plain_shaped(draw):
    """Text of the common shape [a-z0-9._+-]+@[a-z0-9.-]+, valid or not."""
    local = draw(st.text(alphabet=_PLAIN_CHARS, min_size=1, max_size=70))
    domain = draw(st.text(alphabet=string.ascii_letters + string.digits + ".-", min_size=1))
    return f"{local}@{domain}"


@given(st.one_of(plain_shaped(), _NEAR_PLAIN, ascii_addresses(), st.text(max_size=40)))
@example("a" * MAX_LOCAL + "@example.com")
@example("a" * (MAX_LOCAL + 1) + "@example.com")
@example("a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 57 + ".com")
@example("a@b." + "c" * 64)
@example("a@b.xn--p1ai")
@example("a@b.co-")
@example("a@-b.com")
@example("a@b-.com")
@example("a@b..com")
@example(".a@b.com")
@example("a.@b.com")
@example("a..b@b.com")
@example("a@b.c0m")
@example("a@b.0om")
@example("\u212aate@example.com")  # KELVIN SIGN lower-cases to an ASCII k
def test_the_fast_path_gives_what_the_full_path_gives(raw):
    assert canonicalise(raw) == _canonicalise_full(raw.strip().lower())


@given(st.binary(min_size=0, max_size=100), st.text(max_size=60))
@example(b"k" * 32, "jane@example.com")
@example(b"k" * 65, "jane@example.com")  # longer than a block: HMAC hashes the key first
def test_the_keyed_indexer_is_hmac_sha256(key, canonical):
    indexer = KeyedIndexer(key)
    assert indexer(canonical) == keyed_index(key, canonical)
    assert indexer(canonical) == indexer(canonical)  # its prepared states are not used up
