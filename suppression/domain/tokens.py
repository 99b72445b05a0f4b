"""Link tokens: opaque, authenticated, short, and rotatable.

Three kinds, each opening one thing:

- an **unsubscribe** token (the `List-Unsubscribe` header's link, `/u/<token>`):
  view and opt out, nothing else; the header is read by mailbox providers, mail
  scanners and whoever a mail is forwarded to;
- a **preference** token (the link in the mail's body, `/preferences/<token>`): the
  preference page, where opting back in only asks for a confirmation mail;
- a **confirmation** token (the double opt-in mail's link, `/confirm/<token>`): bound
  to the address, the purposes asked for and the request (its id and time).

A token is base64url (no padding) of::

    header      format version (1 byte) || key id (1 byte)        in clear, authenticated
    siv         16 bytes: the synthetic IV, which is also the authentication tag
    ciphertext  kind (1 byte) || issued-at (4 bytes, Unix seconds) || ...

where a link's `...` is the minting API key's id (4 bytes, 0 for none) || purpose ||
campaign || address, and a confirmation's is the request id (8 bytes) || the
purposes (a count, then each) || address. Format 1, from before kinds, is
issued-at || purpose || campaign || address and reads as an unsubscribe token.

Encrypted with AES-SIV (RFC 5297): deterministic authenticated encryption, so there
is no nonce to repeat and the overhead is 16 bytes. The 512-bit AES-SIV key is
derived with HKDF-SHA256 from the configured 32-byte key. Every bit of the token is
covered: a changed character, a truncation, a different key or a different header
is rejected, the kind cannot be changed, and the address cannot be read without the
key. The key id travels in clear, so a new key can mint while old links still open
with the old key.

A link token for `jane.doe@example.com` is 66 characters, 92 with a 20-character
campaign (a link of ~120 with the origin), well inside what mail clients keep intact.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LEGACY_FORMAT = 1  # unsubscribe tokens minted before there were kinds
FORMAT_VERSION = 2
HEADER_BYTES = 2
SIV_BYTES = 16
ISSUED_BYTES = 4
MINTER_BYTES = 4
REQUEST_ID_BYTES = 8
MAX_KEY_ID = 255
MAX_CAMPAIGN_BYTES = 100
MAX_PURPOSE_BYTES = 64
MAX_PURPOSES = 255
# Links minted a little ahead of a receiving server's clock are still good.
CLOCK_SKEW = timedelta(minutes=5)
_HKDF_INFO = b"suppression unsubscribe-link token v1"
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
# Well-known purposes cost one byte; any other is spelled out after a zero byte.
# Codes are never reused or renumbered: old links keep their meaning.
_PURPOSE_CODES = {"all": 1, "email_marketing": 2, "ad_audiences": 3}
_PURPOSE_NAMES = {code: name for name, code in _PURPOSE_CODES.items()}
_MIN_TOKEN_BYTES = HEADER_BYTES + SIV_BYTES + ISSUED_BYTES + 1 + 1 + 3  # shortest "a@b"


class LinkKind(IntEnum):
    """What a token opens. Values are bytes in tokens: never reused or renumbered."""

    UNSUBSCRIBE = 1
    PREFERENCES = 2
    CONFIRMATION = 3


class TokenProblem(StrEnum):
    MALFORMED = "malformed"  # not one of our tokens at all (cut off, wrong characters)
    UNKNOWN_KEY = "unknown_key"  # minted with a key that is no longer held
    FORGED = "forged"  # does not verify: changed, or made with another key
    EXPIRED = "expired"  # genuine but older than the validity period
    WRONG_KIND = "wrong_kind"  # genuine, but of a kind that does not open this page


class TokenError(ValueError):
    """A token that is not accepted; `problem` says why (never the address)."""

    def __init__(self, problem: TokenProblem, kind: LinkKind | None = None):
        super().__init__(f"link token rejected: {problem.value}")
        self.problem = problem
        self.kind = kind  # for WRONG_KIND: the kind the token is


class ClaimsError(ValueError):
    """Claims that cannot be put in a token (a purpose or campaign too long)."""


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a link says: whose it is, for which purpose and campaign, and when."""

    address: str  # canonical form
    purpose: str
    campaign: str | None
    issued_at: datetime  # whole seconds, UTC
    kind: LinkKind = LinkKind.UNSUBSCRIBE
    minter: int | None = None  # the id of the API key that minted it (None: not known)


@dataclass(frozen=True, slots=True)
class ConfirmationClaims:
    """What a double opt-in link says: whose, which purposes, which request, when."""

    address: str  # canonical form
    purposes: tuple[str, ...]
    request_id: int
    requested_at: datetime  # whole seconds, UTC


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


def encode_minter(key_id: int | None) -> bytes:
    """The minting API key's id (0 when there is none)."""
    value = key_id or 0
    if not 0 <= value < 2 ** (8 * MINTER_BYTES):
        raise ClaimsError("an API key id in a link is at most 4 bytes")
    return value.to_bytes(MINTER_BYTES, "big")


def encode_issued(moment: datetime) -> bytes:
    """The issue time as stored in a token: whole seconds since 1970."""
    if moment.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    return int(moment.timestamp()).to_bytes(ISSUED_BYTES, "big")


def link_fields(
    kind: LinkKind, issued: bytes, minter: bytes, purpose: bytes, campaign: bytes
) -> bytes:
    """Everything of a link token but the address, encoded (once per batch)."""
    if kind == LinkKind.CONFIRMATION:
        raise ClaimsError("a confirmation token is minted with mint_confirmation")
    return bytes((kind,)) + issued + minter + purpose + campaign


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

    def mint(
        self,
        address: str,
        purpose: str,
        campaign: str | None,
        issued_at: datetime,
        kind: LinkKind = LinkKind.UNSUBSCRIBE,
        minter: int | None = None,
    ) -> str:
        fields = link_fields(
            kind,
            encode_issued(issued_at),
            encode_minter(minter),
            encode_purpose(purpose),
            encode_campaign(campaign),
        )
        return self.mint_encoded(address, fields)

    def mint_encoded(self, address: str, fields: bytes) -> str:
        """The fast path for batches: `link_fields` encoded once per batch."""
        body = self._encrypt(fields + address.encode("utf-8"), self._associated)
        return base64.urlsafe_b64encode(self._header + body).rstrip(b"=").decode("ascii")

    def mint_confirmation(
        self, address: str, purposes: Sequence[str], request_id: int, requested_at: datetime
    ) -> str:
        if not 1 <= len(purposes) <= MAX_PURPOSES:
            raise ClaimsError("a confirmation names 1 to 255 purposes")
        fields = (
            bytes((LinkKind.CONFIRMATION,))
            + encode_issued(requested_at)
            + request_id.to_bytes(REQUEST_ID_BYTES, "big")
            + bytes((len(purposes),))
            + b"".join(encode_purpose(purpose) for purpose in purposes)
        )
        return self.mint_encoded(address, fields)

    def read(self, token: str, now: datetime, max_age: timedelta) -> LinkClaims:
        """The claims of a genuine, unexpired unsubscribe or preference token;
        TokenError otherwise (a confirmation token is the WRONG_KIND here)."""
        version, plain = self._open(token)
        claims = _parse_legacy(plain) if version == LEGACY_FORMAT else _parse_link(plain)
        _check_age(claims.issued_at, now, max_age)
        return claims

    def read_confirmation(
        self, token: str, now: datetime, max_age: timedelta
    ) -> ConfirmationClaims:
        """The claims of a genuine, unexpired confirmation token; TokenError otherwise."""
        version, plain = self._open(token)
        if version == LEGACY_FORMAT:
            raise TokenError(TokenProblem.WRONG_KIND, LinkKind.UNSUBSCRIBE)
        claims = _parse_confirmation(plain)
        _check_age(claims.requested_at, now, max_age)
        return claims

    def _open(self, token: str) -> tuple[int, bytes]:
        raw = _decode(token)
        header, body = raw[:HEADER_BYTES], raw[HEADER_BYTES:]
        if header[0] not in (LEGACY_FORMAT, FORMAT_VERSION):
            raise TokenError(TokenProblem.MALFORMED)
        cipher = self._ciphers.get(header[1])
        if cipher is None:
            raise TokenError(TokenProblem.UNKNOWN_KEY)
        try:
            return header[0], cipher.decrypt(body, [header])
        except InvalidTag:
            raise TokenError(TokenProblem.FORGED) from None


def _check_age(issued_at: datetime, now: datetime, max_age: timedelta) -> None:
    if issued_at > now + CLOCK_SKEW:
        raise TokenError(TokenProblem.FORGED)  # only our key could mint it: a bad clock
    if now - issued_at > max_age:
        raise TokenError(TokenProblem.EXPIRED)


def _decode(token: str) -> bytes:
    if not isinstance(token, str) or not _ALPHABET.fullmatch(token) or len(token) % 4 == 1:
        raise TokenError(TokenProblem.MALFORMED)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    # Base64 ignores the spare bits of the last character: two spellings of one
    # token would both be accepted. Only the canonical spelling is.
    if len(raw) < _MIN_TOKEN_BYTES or base64.urlsafe_b64encode(raw).rstrip(b"=") != token.encode():
        raise TokenError(TokenProblem.MALFORMED)
    return raw


class _Reader:
    """Walks authenticated bytes from our own minting; a bad layout means a bug or a
    format we no longer read, and is rejected like any other bad token."""

    def __init__(self, plain: bytes):
        self.plain = plain
        self.at = 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.plain):
            raise TokenError(TokenProblem.MALFORMED)
        part = self.plain[self.at : self.at + size]
        self.at += size
        return part

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.number(ISSUED_BYTES), UTC)

    def text(self, size: int) -> str:
        try:
            return self.take(size).decode("utf-8")
        except UnicodeDecodeError:
            raise TokenError(TokenProblem.MALFORMED) from None

    def purpose(self) -> str:
        code = self.number(1)
        if code == 0:
            return self.text(self.number(1))
        name = _PURPOSE_NAMES.get(code)
        if name is None:
            raise TokenError(TokenProblem.MALFORMED)
        return name

    def campaign(self) -> str | None:
        size = self.number(1)
        return self.text(size) if size else None

    def address(self) -> str:
        address = self.text(len(self.plain) - self.at)
        if "@" not in address:
            raise TokenError(TokenProblem.MALFORMED)
        return address


def _parse_legacy(plain: bytes) -> LinkClaims:
    reader = _Reader(plain)
    issued_at = reader.moment()
    purpose = reader.purpose()
    campaign = reader.campaign()
    return LinkClaims(reader.address(), purpose, campaign, issued_at)


def _kind(reader: _Reader) -> LinkKind:
    try:
        return LinkKind(reader.number(1))
    except ValueError:
        raise TokenError(TokenProblem.MALFORMED) from None


def _parse_link(plain: bytes) -> LinkClaims:
    reader = _Reader(plain)
    kind = _kind(reader)
    if kind == LinkKind.CONFIRMATION:
        raise TokenError(TokenProblem.WRONG_KIND, kind)
    issued_at = reader.moment()
    minter = reader.number(MINTER_BYTES) or None
    purpose = reader.purpose()
    campaign = reader.campaign()
    return LinkClaims(reader.address(), purpose, campaign, issued_at, kind, minter)


def _parse_confirmation(plain: bytes) -> ConfirmationClaims:
    reader = _Reader(plain)
    kind = _kind(reader)
    if kind != LinkKind.CONFIRMATION:
        raise TokenError(TokenProblem.WRONG_KIND, kind)
    requested_at = reader.moment()
    request_id = reader.number(REQUEST_ID_BYTES)
    purposes = tuple(reader.purpose() for _ in range(reader.number(1)))
    return ConfirmationClaims(reader.address(), purposes, request_id, requested_at)


def unsubscribe_mailto(mailbox: str, token: str, plus: bool = False) -> str:
    """The mailto that unsubscribes the token's recipient: the token in the subject
    (`unsubscribe <token>`), or with `plus` as a `local+<token>` sub-address. The
    token's alphabet (base64url) is valid in a URI query and in a local part as it is."""
    if plus:
        local, _, domain = mailbox.rpartition("@")
        return f"mailto:{local}+{token}@{domain}?subject=unsubscribe"
    return f"mailto:{mailbox}?subject=unsubscribe%20{token}"


def list_unsubscribe_headers(url: str, mailto: str | None) -> dict[str, str]:
    """RFC 2369 / RFC 8058 header values: exactly one HTTPS URI, a mailto when configured."""
    value = f"<{url}>"
    if mailto:
        value += f", <{mailto}>"
    return {"List-Unsubscribe": value, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
