"""Folding the one-click intake (services/consents/intake.py) from the edges that commit.

Nobody has to start anything for it. Each web process starts a daemon thread with
the first one-click it accepts (several processes share the work: PostgreSQL
hands each batch's rows to one folder, SQLite's write lock takes turns), unless
ONE_CLICK_FOLD=worker leaves the folding to the worker; every pass of
`suppression sync` folds the backlog first, so the Procfile worker folds too (and
picks up what a killed web process left); and a reader that needs one person's
folded data (the preference page, a lookup, an export, an erasure, an opt-in)
folds that person's rows first (app/folding.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from suppression.config.settings import LinkSettings, Settings
from suppression.domain.policy import EventAction
from suppression.domain.vault import AddressVault
from suppression.observability import metrics
from suppression.services.consents.alarms import AlarmRule
from suppression.services.consents.intake import BATCH, FoldOutcome, fold_intake

logger = logging.getLogger(__name__)

EXTENSION = "suppression.worker.one_click_folding"
# After a wake-up the thread waits this long, so that a burst is folded in a few
# batches instead of one transaction per click; checks count the rows meanwhile.
GATHER_SECONDS = 0.5
# Without a wake-up it still looks this often (rows a killed process left).
IDLE_SECONDS = 5.0
RETRY_SECONDS = 2.0


def alarm_rule(links: LinkSettings) -> AlarmRule:
    return AlarmRule(links.alarm_threshold, timedelta(minutes=links.alarm_window_minutes))


def count(outcome: FoldOutcome) -> None:
    for source, recorded in outcome.recorded.items():
        metrics.CONSENT_CHANGES.labels(EventAction.OPTED_OUT, source).inc(recorded)
    if outcome.alarms:
        metrics.UNSUBSCRIBE_ALARMS.inc(len(outcome.alarms))


def fold_backlog(
    sessions: sessionmaker[Session], vault: AddressVault, settings: Settings
) -> FoldOutcome:
    """Fold every intake row there is, one committed batch at a time."""
    total = FoldOutcome()
    rule = alarm_rule(settings.links)
    while True:
        with sessions() as session:
            outcome = fold_intake(session, vault, settings.policy, rule)
            session.commit()
        count(outcome)
        total.folded += outcome.folded
        total.recorded.update(outcome.recorded)
        total.alarms += outcome.alarms
        if outcome.folded < BATCH:
            return total


class BackgroundFolder:
    """One folding thread per process, started by the first one-click it accepts
    (after a fork, in the child again: threads do not survive fork)."""

    def __init__(self, sessions: sessionmaker[Session], vault: AddressVault, settings: Settings):
        self.sessions = sessions
        self.vault = vault
        self.settings = settings
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def accepted(self) -> None:
        """A one-click was committed to the intake."""
        mode = self.settings.links.one_click_fold
        if mode == "worker":  # `suppression sync` folds it within a poll interval
            return
        if mode == "inline":
            fold_backlog(self.sessions, self.vault, self.settings)
            return
        if self._pid != os.getpid():
            with self._start:
                if self._pid != os.getpid():
                    self.wake = threading.Event()
                    thread = threading.Thread(target=self._run, name="intake-folder", daemon=True)
                    thread.start()
                    self._thread = thread
                    self._pid = os.getpid()
        self.wake.set()

    def stop(self, wait: float = 30.0) -> None:
        """End the thread after its current batch and wait for it (an app torn
        down in a test: no fold may run on after its tables are emptied)."""
        self.stopped.set()
        self.wake.set()
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(wait)

    def _run(self) -> None:
        wake = self.wake
        while not self.stopped.is_set():
            if wake.wait(IDLE_SECONDS):
                time.sleep(GATHER_SECONDS)  # let a burst gather
                wake.clear()
            if self.stopped.is_set():
                return
            try:
                fold_backlog(self.sessions, self.vault, self.settings)
            except Exception:
                # The rows stay in the intake and count; the next pass folds them.
                logger.exception("folding one-click unsubscribes failed; retrying")
                wake.wait(RETRY_SECONDS)
