"""The decisions for one slice of a check list, from a plain DB-API connection.

This is the whole per-address work of a pre-send check: canonicalise and index
(domain/address_batches.py), one set query for the indexes the store holds, and
the pure decision. It imports neither SQLAlchemy nor Flask, so that a helper
process (suppression/worker/check_helpers.py) can run it on its own connection as well
as the web worker on its session's; nothing about the checked addresses is
written anywhere.

What the time goes to (benchmarks/checks.py): canonicalising and hashing, then
the query and the per-row decision. So the query reads the store in the order of
its keys (sorted indexes, then subject ids), timestamps travel only where the
decision can need them, and a decision is computed once per distinct combination
of what it depends on and then looked up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from suppression.domain.address_batches import index_batch
from suppression.domain.jurisdictions import CountrySource, Jurisdiction
from suppression.domain.policy import (
    NEVER_SEEN,
    SENDABLE,
    BlockKind,
    ConsentRecord,
    ConsentStatus,
    Decision,
    PolicySettings,
    Reason,
    SubjectState,
    decide,
    denied,
    effective_consent,
    has_implied_consent,
)
from suppression.store.check_reads import StoreReader

_ROW_CACHE_SIZE = 50_000  # distinct stored rows whose decision is remembered as such

# Decisions travel between processes as one byte each: 0 sendable, else a reason.
DECISIONS: tuple[Decision, ...] = (SENDABLE, *(denied(reason) for reason in Reason))
DECISION_CODES = {decision: code for code, decision in enumerate(DECISIONS)}

# What an opt-out from elsewhere (an imported hashed list, a one-click not yet
# folded) does not override.
STRONGER_THAN_OPT_OUT = frozenset(
    {Reason.INVALID, Reason.ERASED, Reason.COMPLAINED, Reason.BOUNCED, Reason.OPTED_OUT}
)


class SliceChecker:
    """Decides slices of one check list; caches what many addresses share.

    A stored subject's decision depends only on: erased or not, its active
    blocks, its purpose and `all` consent statuses and which of the two is newer,
    the country of its jurisdiction (and the stored source, so that a bad value
    still fails as before), and (where soft opt-in applies) whether a purchase or
    inquiry is recent enough. The first row with a combination is decided in
    full; every later one looks the answer up. If `decide` ever reads more of the
    state, that must join `_signature`.
    """

    def __init__(
        self,
        reader: StoreReader,
        index_key: bytes,
        settings: PolicySettings,
        purpose: str,
        now: datetime,
    ):
        self.reader = reader
        self.index_key = index_key
        self.settings = settings
        self.purpose = purpose
        self.now = now
        self._unseen: dict[str | None, Decision] = {}
        self._stored: dict[tuple[Any, ...], Decision] = {}
        self._by_row: dict[tuple[Any, ...], Decision] = {}

    def decide(
        self,
        raws: Sequence[str | None],
        hints: Sequence[str | None],
        with_sha256: bool = False,
        pending: frozenset[bytes] = frozenset(),
    ) -> tuple[list[Decision], list[bytes | None] | None]:
        """Each address's decision, in order, and (when asked) its unkeyed SHA-256
        for the imported hashed lists. None in `raws` is not an address; `pending`
        holds the indexes with a one-click opt-out not yet folded into the store
        (services/consents/intake.py), which already counts."""
        batch = index_batch(self.index_key, raws, with_sha256)
        stored = self.reader.fetch({k for k in batch.keys if k is not None}, self.purpose)
        invalid = denied(Reason.INVALID)
        unseen = self._unseen_decision
        known = self._stored
        by_row = self._by_row
        signature = self._signature
        decisions: list[Decision] = []
        append = decisions.append
        for hint, key, domain_country in zip(
            hints, batch.keys, batch.domain_countries, strict=True
        ):
            if key is None:
                append(invalid)
                continue
            row = stored.get(key)
            if row is None:
                append(unseen(hint if hint is not None else domain_country))
                continue
            # Most rows repeat another row's columns exactly (no timestamps travel
            # for them): the row itself is then the cheapest key to the decision.
            probe = (row[1:], hint, domain_country)
            decision = by_row.get(probe)
            if decision is None:
                sign = signature(row, hint, domain_country)
                decision = known.get(sign)
                if decision is None:
                    decision = known[sign] = self._stored_decision(row, hint, domain_country)
                if len(by_row) < _ROW_CACHE_SIZE:
                    by_row[probe] = decision
            append(decision)
        if pending:
            opted_out = denied(Reason.OPTED_OUT)
            for position, key in enumerate(batch.keys):
                if key in pending and decisions[position].reason not in STRONGER_THAN_OPT_OUT:
                    decisions[position] = opted_out
        return decisions, batch.sha256s

    def _unseen_decision(self, country: str | None) -> Decision:
        decision = self._unseen.get(country)
        if decision is None:
            source = None if country is None else CountrySource.INFERRED
            decision = decide(NEVER_SEEN, Jurisdiction(country, source), self.settings, self.now)
            self._unseen[country] = decision
        return decision

    @staticmethod
    def _jurisdiction(
        country: str | None, source: int | None, hint: str | None, domain_country: str | None
    ) -> Jurisdiction:
        """Declared > hint in this request > stored > inferred from the domain."""
        if source == CountrySource.DECLARED:
            return Jurisdiction(country, CountrySource.DECLARED)
        if hint is not None:
            return Jurisdiction(hint, CountrySource.HINT)
        if source is not None:
            return Jurisdiction(country, CountrySource(source))
        return Jurisdiction(domain_country, CountrySource.INFERRED if domain_country else None)

    def _signature(
        self, row: tuple[Any, ...], hint: str | None, domain_country: str | None
    ) -> tuple[Any, ...]:
        """Everything `decide` reads of this row, for the cache of decisions."""
        _, country, source, erased, purchase, inquiry, p_status, p_at, a_status, a_at, blocks = row
        # Same order of precedence as _jurisdiction, without building objects.
        if source == CountrySource.DECLARED or (hint is None and source is not None):
            where = country
        elif hint is not None:
            where = hint
        else:
            where = domain_country
        newer = None
        if p_at is not None and a_at is not None:
            p_time, a_time = self.reader.to_time(p_at), self.reader.to_time(a_at)
            newer = (p_time > a_time) - (p_time < a_time)
        implied = None
        if where in self.settings.soft_opt_in_countries:
            to_time = self.reader.to_time
            recent = SubjectState(
                last_purchase_at=to_time(purchase), last_inquiry_at=to_time(inquiry)
            )
            implied = has_implied_consent(recent, self.settings, self.now)
        return (erased is not None, blocks, p_status, a_status, newer, source, where, implied)

    def _stored_decision(
        self, row: tuple[Any, ...], hint: str | None, domain_country: str | None
    ) -> Decision:
        (
            _,
            country,
            source,
            erased_at,
            purchase,
            inquiry,
            p_status,
            p_at,
            a_status,
            a_at,
            blocks,
        ) = row
        jurisdiction = self._jurisdiction(country, source, hint, domain_country)
        to_time = self.reader.to_time
        purpose_record = (
            ConsentRecord(ConsentStatus(p_status), to_time(p_at)) if p_status is not None else None
        )
        all_record = (
            ConsentRecord(ConsentStatus(a_status), to_time(a_at)) if a_status is not None else None
        )
        state = SubjectState(
            erased=erased_at is not None,
            blocks=frozenset(BlockKind(b) for b in blocks.split(",")) if blocks else frozenset(),
            consent=effective_consent(purpose_record, all_record),
            last_purchase_at=to_time(purchase),
            last_inquiry_at=to_time(inquiry),
        )
        return decide(state, jurisdiction, self.settings, self.now)
