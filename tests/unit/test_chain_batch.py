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
