"""Email addresses: canonical form, syntax checks, keyed index, hashes, masking.

The canonical form is what every stored index and hash is computed from, so the
bulk path (cheap regex) and the single-write path (email-validator as an extra
gate) must produce exactly the same string for the same address.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

import idna

# RFC 5321 limits.
MAX_LOCAL = 64
MAX_ADDRESS = 254

# Local part: dot-atom of printable non-special characters (unicode allowed for
# SMTPUTF8 mailboxes); no quoted local parts, which marketing lists never need.
_ATOM = r"[^\s\x00-\x1f\x7f\u200b-\u200f\u2060\ufeff@\"(),:;<>\[\\\].]+"
_LOCAL = rf"{_ATOM}(?:\.{_ATOM})*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"(?:[a-z][a-z0-9-]{0,61}[a-z0-9]|xn--[a-z0-9-]{1,59})"
_ASCII_ADDRESS = re.compile(rf"({_LOCAL})@((?:{_LABEL}\.)+{_TLD})")
_LOCAL_ONLY = re.compile(_LOCAL)
_SURROGATE = re.compile("[\ud800-\udfff]")
# The common shape, a strict subset of _ASCII_ADDRESS (plain ASCII atoms, and only
# its first kind of top-level label): a third of its cost, for the same answer.
_PLAIN_ADDRESS = re.compile(
    rf"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:{_LABEL}\.)+[a-z][a-z0-9-]{{0,61}}[a-z0-9]"
)


class InvalidAddress(ValueError):
    """The text is not a syntactically valid email address."""


def canonicalise(raw: str) -> str | None:
    """Trim, lower-case and IDNA-encode the domain; None when not an address.

    This is the cheap check used for bulk lists: a regex, no DNS, no per-address
    validator object.
    """
    text = raw.strip().lower()
    if (
        _PLAIN_ADDRESS.fullmatch(text) is not None
        and len(text) <= MAX_ADDRESS
        and text.index("@") <= MAX_LOCAL
    ):
        return text  # what the full path below returns for it, without its unicode classes
    return _canonicalise_full(text)


def _canonicalise_full(text: str) -> str | None:
    """canonicalise for any trimmed, lower-cased text (tests compare the fast path to it)."""
    if not text.isascii():
        # Only here: the ASCII fast path (where the pattern refuses NUL) pays nothing.
        # A lone surrogate (JSON "\ud800") has no UTF-8 form to index or seal.
        if _SURROGATE.search(text):
            return None
        # One mailbox typed as composed or decomposed characters is one index.
        text = unicodedata.normalize("NFC", text)
    if len(text) > MAX_ADDRESS:
        return None
    if _ASCII_ADDRESS.fullmatch(text):
        if text.index("@") > MAX_LOCAL:
            return None
        return text
    return _canonicalise_international(text)


def _canonicalise_international(text: str) -> str | None:
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain or len(local) > MAX_LOCAL:
        return None
    if not _LOCAL_ONLY.fullmatch(local):
        return None
    if domain.isascii():
        return None  # an ASCII domain that failed the fast pattern is invalid
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None
    candidate = f"{local}@{ascii_domain}"
    if len(candidate) > MAX_ADDRESS or not _ASCII_ADDRESS.fullmatch(f"x@{ascii_domain}"):
        return None
    return candidate


def canonicalise_strict(raw: str) -> str:
    """Canonical form for a single write; raises InvalidAddress with a reason.

    email-validator adds the checks a bulk list can skip (reserved domains,
    label rules, unicode local parts) without any DNS query.
    """
    # Imported here: the check helpers (bulk only) never load it (~1 MB each).
    import email_validator

    canonical = canonicalise(raw) if isinstance(raw, str) else None
    if canonical is None:
        raise InvalidAddress("Not a valid email address (expected local-part@domain).")
    try:
        email_validator.validate_email(canonical, check_deliverability=False, allow_smtputf8=True)
    except email_validator.EmailNotValidError as exc:
        raise InvalidAddress(f"Not a valid email address: {exc}") from exc
    return canonical


def keyed_index(key: bytes, canonical: str) -> bytes:
    """HMAC-SHA256 of the canonical address: the lookup key stored instead of it."""
    return hmac.digest(key, canonical.encode("utf-8"), "sha256")


_BLOCK = 64  # SHA-256's block size: HMAC pads the key to it
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class KeyedIndexer:
    """keyed_index for many addresses under one key: the same HMAC-SHA256, with the
    hash states of the two padded key blocks computed once (RFC 2104, section 4)
    and copied per address, about a third of the one-shot cost."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))

    def __call__(self, canonical: str) -> bytes:
        inner = self._inner.copy()
        inner.update(canonical.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def sha256_hex(canonical: str) -> str:
    """Unkeyed SHA-256 hex, the form third parties and imports exchange."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def domain_of(canonical: str) -> str:
    return canonical.rpartition("@")[2]


def mask(canonical: str) -> str:
    """`jane@example.com` → `j***@example.com`, for pages that must not reveal it."""
    local, _, domain = canonical.partition("@")
    return f"{local[:1]}***@{domain}"
