"""The tamper-evident event chain.

Each event's hash covers the previous event's hash, the event's non-personal
fields, and a digest of its personal fields (IP, user agent, evidence, country)
salted with a random value kept in the row. Erasure clears the personal fields
and the salt but keeps the digest, so the chain still verifies afterwards, and
without the salt the digest reveals nothing about what was erased.

The evidence is digested as its canonical JSON (`canonical_json`), the very bytes
that are sealed at rest: verification opens them and digests them as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

GENESIS = bytes(32)
SALT_BYTES = 16


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys: one spelling per value. Positional lists below keep
    the field order fixed without sorting (imports hash a million of these)."""
    return _ENCODER.encode(value).encode("utf-8")


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def personal_digest(
    salt: bytes,
    ip: str | None,
    user_agent: str | None,
    evidence: Mapping[str, Any] | None,
    country: str | None,
) -> bytes:
    body = canonical_json([ip, user_agent, evidence, country])
    return hashlib.sha256(salt + body).digest()


def personal_digest_of_json(
    salt: bytes,
    ip: str | None,
    user_agent: str | None,
    evidence_json: bytes,
    country: str | None,
) -> bytes:
    """`personal_digest` with the evidence given as its canonical JSON (b"null"
    for none): a JSON list's items joined by commas, as `canonical_json` has it."""
    body = b"[%b,%b,%b,%b]" % (
        canonical_json(ip),
        canonical_json(user_agent),
        evidence_json,
        canonical_json(country),
    )
    return hashlib.sha256(salt + body).digest()


@dataclass(frozen=True, slots=True)
class ChainedFields:
    """What the chain protects of one event, besides its personal digest."""

    seq: int
    subject_id: int
    action: str
    purpose: str | None
    source: str
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    campaign: str | None
    notice_version: str | None

    def encode(self) -> bytes:
        return canonical_json(
            [
                self.seq,
                self.subject_id,
                self.action,
                self.purpose,
                self.source,
                self.actor,
                _time(self.occurred_at),
                _time(self.recorded_at),
                self.campaign,
                self.notice_version,
            ]
        )


def link_hash(previous: bytes, fields: ChainedFields, digest: bytes) -> bytes:
    return hashlib.sha256(previous + fields.encode() + digest).digest()


class LinkParts(NamedTuple):
    """Everything of one link but its place in the chain (number, subject, the hash
    before it), so that it can be computed ahead, off the chain's critical path."""

    salt: bytes
    evidence: bytes  # canonical JSON of the evidence, b"null" for none
    digest: bytes  # the personal digest
    tail: bytes  # the JSON of the chained fields after the number and the subject


_REMEMBERED = 10_000  # values an encoder keeps: repeats are many, memory is bounded


class LinkEncoder:
    """`LinkParts` byte for byte as `personal_digest` and `ChainedFields.encode`
    would have them, but cheaper: an import repeats its actor, source, purposes and
    times a million times, so the JSON of each such value is computed once and each
    link's JSON is joined from those pieces (a list of scalars encodes as its items
    joined by commas)."""

    def __init__(self) -> None:
        # Looked up inline in `parts` (a method call per value costs more than the
        # lookup); a miss computes and keeps the value.
        self._texts: dict[str | None, bytes] = {}
        self._times: dict[datetime, bytes] = {}

    def _text(self, value: str | None) -> bytes:
        if len(self._texts) >= _REMEMBERED:
            self._texts.clear()
        encoded = self._texts[value] = canonical_json(value)
        return encoded

    def _time(self, value: datetime) -> bytes:
        if len(self._times) >= _REMEMBERED:
            self._times.clear()
        encoded = self._times[value] = canonical_json(_time(value))
        return encoded

    def parts(
        self,
        salt: bytes,
        action: str,
        purpose: str | None,
        source: str,
        actor: str,
        occurred_at: datetime,
        recorded_at: datetime,
        campaign: str | None,
        notice_version: str | None,
        ip: str | None,
        user_agent: str | None,
        evidence: Mapping[str, Any] | None,
        country: str | None,
    ) -> LinkParts:
        texts, times, text, time = self._texts.get, self._times.get, self._text, self._time
        evidence_json = canonical_json(evidence)
        body = b"[%b,%b,%b,%b]" % (
            texts(ip) or text(ip),
            texts(user_agent) or text(user_agent),
            evidence_json,
            texts(country) or text(country),
        )
        tail = b"%b,%b,%b,%b,%b,%b,%b,%b]" % (
            texts(action) or text(action),
            texts(purpose) or text(purpose),
            texts(source) or text(source),
            texts(actor) or text(actor),
            times(occurred_at) or time(occurred_at),
            times(recorded_at) or time(recorded_at),
            texts(campaign) or text(campaign),
            texts(notice_version) or text(notice_version),
        )
        return LinkParts(salt, evidence_json, hashlib.sha256(salt + body).digest(), tail)


class BatchLinker:
    """Links events one after another from their `LinkParts`, as `link_hash` would."""

    def __init__(self, previous: bytes, seq: int) -> None:
        self.previous = previous
        self.seq = seq

    def link(self, subject_id: int, parts: LinkParts) -> tuple[int, bytes, bytes]:
        """The next link: (its chain number, the hash before it, its hash)."""
        self.seq += 1
        previous = self.previous
        head = b"[%d,%d," % (self.seq, subject_id)
        self.previous = hashlib.sha256(previous + head + parts.tail + parts.digest).digest()
        return self.seq, previous, self.previous


@dataclass(frozen=True, slots=True)
class StoredLink:
    """One event as read back for verification."""

    event_id: int
    fields: ChainedFields
    prev_hash: bytes
    row_hash: bytes
    personal_digest: bytes
    salt: bytes | None
    ip: str | None
    user_agent: str | None
    evidence: bytes | None  # its canonical JSON, opened; None when there is none
    country: str | None
    evidence_unopened: bool = False  # sealed evidence that no held key opens


@dataclass(frozen=True, slots=True)
class Break:
    seq: int
    event_id: int | None
    problem: str


class ChainVerifier:
    """Feed links in chain order; the first problem found is kept."""

    def __init__(self) -> None:
        self.expected_seq = 1
        self.previous = GENESIS
        self.checked = 0
        self.first_break: Break | None = None

    def feed(self, link: StoredLink) -> bool:
        """False once the chain is broken (further links are not checked)."""
        if self.first_break is not None:
            return False
        problem = self._problem(link)
        if problem is not None:
            self.first_break = Break(link.fields.seq, link.event_id, problem)
            return False
        self.previous = link.row_hash
        self.expected_seq += 1
        self.checked += 1
        return True

    def _problem(self, link: StoredLink) -> str | None:
        seq = link.fields.seq
        if seq != self.expected_seq:
            return f"expected link {self.expected_seq} but found {seq}: a link is missing or moved"
        if link.prev_hash != self.previous:
            return "does not point at the link before it: a link was removed or reordered"
        if link.salt is not None:
            if link.evidence_unopened:
                return "its sealed evidence opens with no held key: changed, or the key was dropped"
            evidence = b"null" if link.evidence is None else link.evidence
            digest = personal_digest_of_json(
                link.salt, link.ip, link.user_agent, evidence, link.country
            )
            if digest != link.personal_digest:
                return "personal fields (ip, user agent, evidence, country) were changed"
        elif link.evidence_unopened or any(
            v is not None for v in (link.ip, link.user_agent, link.evidence, link.country)
        ):
            return "personal fields present on an erased event"
        if link_hash(link.prev_hash, link.fields, link.personal_digest) != link.row_hash:
            return "content does not match its hash: the event was edited"
        return None

    def finish(self, head_seq: int, head_hash: bytes) -> Break | None:
        """Compare the end of the chain with the recorded head (catches a cut tail)."""
        if self.first_break is None and (
            head_seq != self.expected_seq - 1 or head_hash != self.previous
        ):
            self.first_break = Break(
                self.expected_seq,
                None,
                f"the chain ends at link {self.expected_seq - 1} "
                f"but the head says {head_seq}: links were removed from the end",
            )
        return self.first_break
