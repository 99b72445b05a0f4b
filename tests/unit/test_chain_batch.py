"""The bulk chain path (LinkEncoder + BatchLinker) links events byte for byte as
the one-at-a-time path (personal_digest + link_hash)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from suppression.domain import chain
from suppression.domain.chain import (
    GENESIS,
    BatchLinker,
    ChainedFields,
    LinkEncoder,
    link_hash,
    personal_digest,
)

EVENTS = [
    # subject, action, purpose, source, actor, occurred_at, campaign, notice, ip, ua, evidence,
    # country
    (1, "opted_out", "all", "old_esp", "cli:ana", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
     None, None, None, None, {"import_id": 7, "line": 2}, None),
    (2, "opted_in", None, 'quo"te\\back\nline', "api_key:ü-ß", datetime(2025, 1, 2, tzinfo=UTC),
     "spring", "v3", "2001:db8::1", "Mozilla/5.0 «x»", {"z": [1, "é"], "a": {"k": None}}, "DE"),
    # the same instant in another zone, and a repeat of cached values
    (3, "opted_out", "all", "old_esp", "cli:ana",
     datetime(2025, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
     None, None, None, None, {"line": 3, "import_id": 7}, "US"),
    (4, "opted_out", "all", "old_esp", "cli:ana", datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
     None, None, "10.0.0.1", None, None, "US"),
]  # fmt: skip


@pytest.mark.parametrize("remembered", [10_000, 2])
def test_batch_links_match_single_links(remembered, monkeypatch):
    monkeypatch.setattr(chain, "_REMEMBERED", remembered)  # 2: the memory is forgotten often
    recorded_at = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    encoder = LinkEncoder()
    linker = BatchLinker(GENESIS, 0)
    previous = GENESIS
    for seq, event in enumerate(EVENTS, start=1):
        subject, action, purpose, source, actor, occurred_at, campaign, notice = event[:8]
        ip, user_agent, evidence, country = event[8:]
        salt = bytes([seq]) * 16
        parts = encoder.parts(
            salt, action, purpose, source, actor, occurred_at, recorded_at, campaign, notice,
            ip, user_agent, evidence, country,
        )  # fmt: skip
        assert parts.salt == salt
        assert parts.digest == personal_digest(salt, ip, user_agent, evidence, country)
        fields = ChainedFields(
            seq, subject, action, purpose, source, actor, occurred_at, recorded_at, campaign, notice
        )
        expected = link_hash(previous, fields, parts.digest)
        assert linker.link(subject, parts) == (seq, previous, expected)
        previous = expected
    assert (linker.seq, linker.previous) == (len(EVENTS), previous)


def test_the_digest_of_canonical_evidence_bytes_is_the_digest_of_the_evidence():
    # What verification digests (the opened, sealed bytes) is what was digested.
    for seq, event in enumerate(EVENTS, start=1):
        ip, user_agent, evidence, country = event[8:]
        salt = bytes([seq]) * 16
        evidence_json = chain.canonical_json(evidence)
        assert chain.personal_digest_of_json(
            salt, ip, user_agent, evidence_json, country
        ) == personal_digest(salt, ip, user_agent, evidence, country)


def _stored(evidence: bytes | None, salt: bytes | None, unopened: bool = False):
    occurred_at = datetime(2025, 1, 2, tzinfo=UTC)
    fields = ChainedFields(
        1, 7, "opted_in", "all", "form", "api", occurred_at, occurred_at, None, None
    )
    digest = chain.personal_digest_of_json(b"s" * 16, None, None, b'{"a":1}', None)
    return chain.StoredLink(
        event_id=1,
        fields=fields,
        prev_hash=GENESIS,
        row_hash=link_hash(GENESIS, fields, digest),
        personal_digest=digest,
        salt=salt,
        ip=None,
        user_agent=None,
        evidence=evidence,
        country=None,
        evidence_unopened=unopened,
    )


@pytest.mark.parametrize(
    ("evidence", "salt", "unopened", "problem"),
    [
        (b'{"a":1}', b"s" * 16, False, None),
        (b'{"a":2}', b"s" * 16, False, "were changed"),
        (None, b"s" * 16, True, "opens with no held key"),
        (None, None, True, "present on an erased event"),
        (None, None, False, None),
    ],
    ids=["intact", "changed", "unopened", "unopened-on-erased", "erased"],
)
def test_the_verifier_checks_opened_evidence(evidence, salt, unopened, problem):
    verifier = chain.ChainVerifier()
    verifier.feed(_stored(evidence, salt, unopened))
    found = verifier.first_break
    if problem is None:
        assert found is None
    else:
        assert problem in found.problem
