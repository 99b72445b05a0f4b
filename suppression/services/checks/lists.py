"""Pre-send checks: whole lists against the store, chunk by chunk, in input order.

Each chunk is decided by services/checks/decisions.py (canonicalise and index, one
set query, the pure decision): in the helper processes when the web worker has
them and the chunk is large (suppression/worker/check_helpers.py), else here on the
request's own session. Nothing about the checked addresses is written anywhere.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Generator, Iterable
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suppression.domain.policy import ALL_PURPOSES, Decision, PolicySettings, Reason, denied
from suppression.domain.vault import AddressVault
from suppression.services.checks.decisions import (
    DECISIONS,
    STRONGER_THAN_OPT_OUT,
    SliceChecker,
    StoreReader,
)
from suppression.services.checks.slices import Answer, SliceHelpers, SliceJob
from suppression.services.consents.intake import pending_opt_outs
from suppression.store.batching import chunked
from suppression.store.models import HashedSuppression
from suppression.store.raw_connections import Connect

logger = logging.getLogger(__name__)

CheckItem = tuple[Any, str | None]  # (the email as sent, a normalised country hint)

AHEAD = 1  # chunks handed to the helpers before the oldest one is awaited


class Slice:
    """Part of a chunk, decided here or awaited from a helper."""

    __slots__ = ("answer", "decisions", "digests", "hints", "raws")

    def __init__(self, raws: list[str | None], hints: list[str | None]):
        self.raws = raws
        self.hints = hints
        self.answer: Future[Answer] | None = None
        self.decisions: list[Decision] | None = None
        self.digests: list[bytes | None] | None = None


class ListChecker:
    """One check list: where each chunk is decided, and the imported hashed lists."""

    def __init__(
        self,
        session: Session,
        vault: AddressVault,
        settings: PolicySettings,
        purpose: str,
        now: datetime,
        helpers: SliceHelpers | None,
        parallel_min: int,
    ):
        connection = session.connection()
        reader = StoreReader(
            connection.connection.driver_connection,
            connection.dialect.name,
            relationships=bool(settings.soft_opt_in_countries),
        )
        self.local = SliceChecker(reader, vault.index_key, settings, purpose, now)
        self.helpers = helpers
        self.connect = Connect.from_engine(connection.engine) if helpers is not None else None
        self.parallel_min = parallel_min
        self.index_key = vault.index_key
        self.settings = settings
        self.purpose = purpose
        self.now = now
        # Lists imported already hashed (services/imports/importer.py): held in memory for
        # the check, and only read when there are any.
        self.hashed: set[bytes] = (
            set(session.scalars(select(HashedSuppression.email_sha256)))
            if session.scalar(select(HashedSuppression.email_sha256).limit(1))
            else set()
        )
        # One-click opt-outs accepted but not yet folded into the store count now.
        self.pending = frozenset(
            index
            for index, purposes in pending_opt_outs(session).items()
            if purpose in purposes or ALL_PURPOSES in purposes
        )

    def start(self, items: list[CheckItem]) -> list[Slice]:
        raws = [raw if isinstance(raw, str) else None for raw, _ in items]
        hints = [hint for _, hint in items]
        if self.helpers is None or self.connect is None or len(items) < self.parallel_min:
            whole = Slice(raws, hints)
            whole.decisions, whole.digests = self.local.decide(
                raws, hints, bool(self.hashed), self.pending
            )
            return [whole]
        size = -(-len(items) // self.helpers.processes)
        slices = [
            Slice(raws[start : start + size], hints[start : start + size])
            for start in range(0, len(items), size)
        ]
        for part in slices:
            job = SliceJob(
                self.connect,
                self.index_key,
                self.settings,
                self.purpose,
                self.now,
                part.raws,
                part.hints,
                bool(self.hashed),
                self.pending,
            )
            try:
                part.answer = self.helpers.submit(job)
            except Exception:  # the pool is broken or shut down: decide it here
                logger.warning("the check helpers are unavailable; deciding in process")
                self.helpers.reset()
        return slices

    def finish(self, slices: list[Slice]) -> list[Decision]:
        decisions: list[Decision] = []
        digests: list[bytes | None] = []
        for part in slices:
            if part.decisions is None:
                self._collect(part)
            decisions += part.decisions  # type: ignore[arg-type]
            if part.digests is not None:
                digests += part.digests
        if self.hashed:
            self._apply_hashed(decisions, digests)
        return decisions

    def _collect(self, part: Slice) -> None:
        if part.answer is not None:
            try:
                codes, part.digests = part.answer.result()
                part.decisions = [DECISIONS[code] for code in codes]
                return
            except Exception as exc:  # a helper died or lost its connection
                logger.warning("a check helper failed (%s); its slice is decided in process", exc)
                if self.helpers is not None:
                    self.helpers.reset()
        part.decisions, part.digests = self.local.decide(
            part.raws, part.hints, bool(self.hashed), self.pending
        )

    def _apply_hashed(self, decisions: list[Decision], digests: list[bytes | None]) -> None:
        """An address on an imported hashed list is opted out, unless a stronger
        reason already holds (the person's own later opt-in turns the hashed entry
        into an ordinary opt-out first: resubscribe.materialise_hashed_suppression)."""
        opted_out = denied(Reason.OPTED_OUT)
        hashed = self.hashed
        for position, digest in enumerate(digests):
            if (
                digest is not None
                and digest in hashed
                and decisions[position].reason not in STRONGER_THAN_OPT_OUT
            ):
                decisions[position] = opted_out

    @staticmethod
    def cancel(slices: list[Slice]) -> None:
        for part in slices:
            if part.answer is not None:
                part.answer.cancel()


def check_addresses(
    session: Session,
    vault: AddressVault,
    settings: PolicySettings,
    purpose: str,
    items: Iterable[CheckItem],
    now: datetime,
    chunk_size: int = 25_000,
    helpers: SliceHelpers | None = None,
    parallel_min: int = 10_000,
) -> Generator[tuple[CheckItem, Decision]]:
    """Yield each item with its decision, in input order.

    With helpers, up to AHEAD chunks are being decided by them while this thread
    reads the next chunk of the request and writes out the oldest finished one.
    """
    checker = ListChecker(session, vault, settings, purpose, now, helpers, parallel_min)
    in_flight: deque[tuple[list[CheckItem], list[Slice]]] = deque()
    try:
        for chunk in chunked(items, chunk_size):
            in_flight.append((chunk, checker.start(chunk)))
            if len(in_flight) > AHEAD:
                done, slices = in_flight.popleft()
                yield from zip(done, checker.finish(slices), strict=True)
        while in_flight:
            done, slices = in_flight.popleft()
            yield from zip(done, checker.finish(slices), strict=True)
    finally:
        for _, slices in in_flight:
            checker.cancel(slices)
