"""Unsubscribe-link tokens: opaque, authenticated, short, and rotatable.

A token is base64url (no padding) of::

    header      format version (1 byte) || key id (1 byte)        in clear, authenticated
    siv         16 bytes: the synthetic IV, which is also the authentication tag
    ciphertext  issued-at (4 bytes, Unix seconds) || purpose || campaign || address

encrypted with AES-SIV (RFC 5297): deterministic authenticated encryption, so there
is no nonce to repeat and the overhead is 16 bytes. The 512-bit AES-SIV key is
derived with HKDF-SHA256 from the configured 32-byte key. Every bit of the token is
covered: a changed character, a truncation, a different key or a different header
is rejected, and the address cannot be read without the key. The key id travels
in clear, so a new key can mint while old links still open with the old key.

A token for `jane.doe@example.com` with a 20-character campaign is 86 characters
(a link of ~115 with the origin), well inside what mail clients keep intact.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = 1
HEADER_BYTES = 2
SIV_BYTES = 16
ISSUED_BYTES = 4
MAX_KEY_ID = 255
MAX_CAMPAIGN_BYTES = 100
MAX_PURPOSE_BYTES = 64
# Links minted a little ahead of a receiving server's clock are still good.
CLOCK_SKEW = timedelta(minutes=5)
_HKDF_INFO = b"suppression unsubscribe-link token v1"
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
# Well-known purposes cost one byte; any other is spelled out after a zero byte.
# Codes are never reused or renumbered: old links keep their meaning.
_PURPOSE_CODES = {"all": 1, "email_marketing": 2, "ad_audiences": 3}
_PURPOSE_NAMES = {code: name for name, code in _PURPOSE_CODES.items()}
_MIN_TOKEN_BYTES = HEADER_BYTES + SIV_BYTES + ISSUED_BYTES + 1 + 1 + 3  # shortest "a@b"


class TokenProblem(StrEnum):
    MALFORMED = "malformed"  # not one of our tokens at all (cut off, wrong characters)
    UNKNOWN_KEY = "unknown_key"  # minted with a key that is no longer held
    FORGED = "forged"  # does not verify: changed, or made with another key
    EXPIRED = "expired"  # genuine but older than the validity period


class TokenError(ValueError):
    """A token that is not accepted; `problem` says why (never the address)."""

    def __init__(self, problem: TokenProblem):
        super().__init__(f"unsubscribe token rejected: {problem.value}")
        self.problem = problem


class ClaimsError(ValueError):
    """Claims that cannot be put in a token (a purpose or campaign too long)."""


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a link says: whose it is, for which purpose and campaign, and when."""

    address: str  # canonical form
    purpose: str
    campaign: str | None
    issued_at: datetime  # whole seconds, UTC


def _derive(key: bytes) -> AESSIV:
    if len(key) != 32:
        raise ValueError("token keys are 32 bytes")
    material = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_HKDF_INFO).derive(key)
    return AESSIV(material)


def encode_campaign(campaign: str | None) -> bytes:
    """The campaign as stored in a token; raises ClaimsError when it is too long."""
    if not campaign:
        return b"\x00"
    raw = campaign.encode("utf-8")
    if len(raw) > MAX_CAMPAIGN_BYTES:
        raise ClaimsError(f"a campaign in a link is at most {MAX_CAMPAIGN_BYTES} bytes (UTF-8)")
    return bytes((len(raw),)) + raw


def encode_purpose(purpose: str) -> bytes:
    code = _PURPOSE_CODES.get(purpose)
    if code is not None:
        return bytes((code,))
    raw = purpose.encode("utf-8")
    if not raw or len(raw) > MAX_PURPOSE_BYTES:
        raise ClaimsError(f"a purpose in a link is 1 to {MAX_PURPOSE_BYTES} bytes")
    return b"\x00" + bytes((len(raw),)) + raw


class LinkTokens:
    """Mints with the highest key id; opens with any key held."""

    def __init__(self, keys: Mapping[int, bytes]):
        if not keys:
            raise ValueError("at least one token key is needed (TOKEN_KEYS)")
        if any(not 0 <= key_id <= MAX_KEY_ID for key_id in keys):
            raise ValueError(f"token key ids are 0..{MAX_KEY_ID} (one byte in each token)")
        self._ciphers = {key_id: _derive(key) for key_id, key in keys.items()}
        self.current = max(keys)
        self._header = bytes((FORMAT_VERSION, self.current))
        self._encrypt = self._ciphers[self.current].encrypt
        self._associated = [self._header]

    def mint(self, address: str, purpose: str, campaign: str | None, issued_at: datetime) -> str:
        return self.mint_encoded(
            address, encode_purpose(purpose), encode_campaign(campaign), encode_issued(issued_at)
        )

    def mint_encoded(self, address: str, purpose: bytes, campaign: bytes, issued: bytes) -> str:
        """The fast path for batches: purpose, campaign and time encoded once per batch."""
        body = self._encrypt(
            issued + purpose + campaign + address.encode("utf-8"), self._associated
        )
        return base64.urlsafe_b64encode(self._header + body).rstrip(b"=").decode("ascii")

    def read(self, token: str, now: datetime, max_age: timedelta) -> LinkClaims:
        """The claims of a genuine, unexpired token; TokenError otherwise."""
        raw = _decode(token)
        header, body = raw[:HEADER_BYTES], raw[HEADER_BYTES:]
        if header[0] != FORMAT_VERSION:
            raise TokenError(TokenProblem.MALFORMED)
        cipher = self._ciphers.get(header[1])
        if cipher is None:
            raise TokenError(TokenProblem.UNKNOWN_KEY)
        try:
            plain = cipher.decrypt(body, [header])
        except InvalidTag:
            raise TokenError(TokenProblem.FORGED) from None
        claims = _parse(plain)
        if claims.issued_at > now + CLOCK_SKEW:
            raise TokenError(TokenProblem.FORGED)  # only our key could mint it: a bad clock
        if now - claims.issued_at > max_age:
            raise TokenError(TokenProblem.EXPIRED)
        return claims


def encode_issued(moment: datetime) -> bytes:
    """The issue time as stored in a token: whole seconds since 1970."""
    if moment.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    return int(moment.timestamp()).to_bytes(ISSUED_BYTES, "big")


def _decode(token: str) -> bytes:
    if not isinstance(token, str) or not _ALPHABET.fullmatch(token) or len(token) % 4 == 1:
        raise TokenError(TokenProblem.MALFORMED)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    # Base64 ignores the spare bits of the last character: two spellings of one
    # token would both be accepted. Only the canonical spelling is.
    if len(raw) < _MIN_TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=") != token.encode():
        raise TokenError(TokenProblem.MALFORMED)
    return raw


def _parse(plain: bytes) -> LinkClaims:
    """Authenticated bytes from our own minting; a bad layout means a bug or a format
    we no longer read, and is rejected like any other bad token."""
    try:
        issued_at = datetime.fromtimestamp(int.from_bytes(plain[:ISSUED_BYTES], "big"), UTC)
        at = ISSUED_BYTES
        code = plain[at]
        at += 1
        if code == 0:
            size = plain[at]
            purpose = plain[at + 1 : at + 1 + size].decode("utf-8")
            at += 1 + size
        else:
            purpose = _PURPOSE_NAMES[code]
        size = plain[at]
        campaign = plain[at + 1 : at + 1 + size].decode("utf-8") if size else None
        at += 1 + size
        address = plain[at:].decode("utf-8")
    except (IndexError, KeyError, UnicodeDecodeError):
        raise TokenError(TokenProblem.MALFORMED) from None
    if "@" not in address:
        raise TokenError(TokenProblem.MALFORMED)
    return LinkClaims(address, purpose, campaign, issued_at)


def list_unsubscribe_headers(url: str, mailbox: str | None) -> dict[str, str]:
    """RFC 2369 / RFC 8058 header values: exactly one HTTPS URI, a mailto when configured."""
    value = f"<{url}>"
    if mailbox:
        value += f", <mailto:{mailbox}?subject=unsubscribe>"
    return {"List-Unsubscribe": value, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
