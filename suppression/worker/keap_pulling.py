"""The edge of the Keap pull: builds it for the worker, and commits its units of
work one by one (services.destinations.keap_pull decides what each records)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from suppression.connectors.base import Connector
from suppression.connectors.keap_pull import KeapStatusReader
from suppression.connectors.settings import DestinationSettings
from suppression.domain.vault import AddressVault
from suppression.services.destinations.keap_pull import KeapPull, KeapPullReport
from suppression.worker.sealed_tokens import SealedTokenStore

logger = logging.getLogger(__name__)


def build_keap_pull(
    destinations: DestinationSettings,
    connectors: Mapping[str, Connector],
    sessions: sessionmaker[Session],
    vault: AddressVault,
    reader: KeapStatusReader | None,
) -> KeapPull | None:
    """Keap's own opt-outs, spam reports and bounces, read back while Keap is
    an enabled destination (KEAP_PULL_MINUTES=0 turns the pull off)."""
    config = destinations.keap
    if destinations.keap_pull_minutes <= 0:
        return None
    if reader is None:
        if config is None or not destinations.is_enabled("keap"):
            return None
        reader = KeapStatusReader(
            config,
            destinations.sync.http_timeout_seconds,
            # One OAuth token for pushing and reading: Keap rotates refresh tokens.
            bearer=getattr(connectors.get("keap"), "bearer", None),
            token_store=SealedTokenStore(sessions, vault, "keap"),
        )
    return KeapPull(vault, reader, timedelta(minutes=destinations.keap_pull_minutes))


def run_keap_pull(
    sessions: sessionmaker[Session], pull: KeapPull, clock: Callable[[], datetime]
) -> KeapPullReport | None:
    """One pull if due (None when not): each page is read with no transaction
    open and its events committed before the next page is read; the high-water
    mark is committed last, after every event it covers."""
    with sessions() as session:
        run = pull.start(session, clock())
        session.commit()
    if run is None:
        return None
    for statuses in run.pages():
        with sessions() as session:
            run.record(session, statuses, clock())
            session.commit()
    with sessions() as session:
        report = run.finish(session, clock())
        session.commit()
    if report.recorded:
        logger.info("Keap pull: %d new events from Keap", report.recorded)
    return report
