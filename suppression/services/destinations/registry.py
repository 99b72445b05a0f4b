"""The destination registry and its status: which destinations are enabled
(what `enqueue_subject_change` writes rows for), their health, and their rotated
OAuth refresh tokens, sealed like addresses."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from suppression.connectors.settings import DESTINATION_NAMES, KINDS, DestinationSettings
from suppression.domain.vault import AddressVault
from suppression.store.dialects import execute_dml, insert
from suppression.store.models.destinations import Destination, OutboxRow


def targets_fingerprint(targets: Sequence[str]) -> str:
    """Stands for what a destination writes to; a change means push everyone again."""
    return hashlib.sha256("\n".join(sorted(targets)).encode()).hexdigest()[:32]


def register_destinations(
    session: Session,
    settings: DestinationSettings,
    targets: Mapping[str, str],
    now: datetime,
) -> list[str]:
    """Bring the registry in line with the settings; returns the destinations that
    were just enabled or now write somewhere new (they get a full reconcile)."""
    needs_full = []
    for name in DESTINATION_NAMES:
        session.execute(
            insert(session, Destination)
            .values(name=name, kind=KINDS[name], enabled=False, targets="", registered_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        row = session.execute(
            select(Destination).where(Destination.name == name).with_for_update()
        ).scalar_one()
        enabled = settings.is_enabled(name)
        fingerprint = targets.get(name, row.targets)
        if enabled and (not row.enabled or row.targets != fingerprint):
            row.full_requested_at = now
            needs_full.append(name)
        row.enabled = enabled
        row.kind = KINDS[name]
        if enabled:
            row.targets = fingerprint
    session.flush()
    return needs_full


def take_full_request(session: Session, name: str) -> bool:
    """Claim a requested full reconcile (only one worker runs it)."""
    result = execute_dml(
        session,
        update(Destination)
        .where(Destination.name == name, Destination.full_requested_at.is_not(None))
        .values(full_requested_at=None),
    )
    return bool(result.rowcount)


@dataclass(frozen=True)
class DestinationStatus:
    name: str
    kind: str
    enabled: bool
    pending: int  # waiting or in flight
    failed: int  # parked: an operator must retry them
    overdue: int  # waiting longer than the deadline
    oldest_pending_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    paused_until: datetime | None
    full_requested_at: datetime | None
    warning: str | None = None  # a setting the operator must change soon


def destination_statuses(
    session: Session, settings: DestinationSettings, now: datetime
) -> list[DestinationStatus]:
    deadline = now - timedelta(hours=settings.sync.deadline_hours)
    counts = {
        row.destination: row
        for row in session.execute(
            select(
                OutboxRow.destination,
                func.sum(case((OutboxRow.failed_at.is_(None), 1), else_=0)).label("pending"),
                func.sum(case((OutboxRow.failed_at.is_not(None), 1), else_=0)).label("failed"),
                func.sum(case((OutboxRow.created_at < deadline, 1), else_=0)).label("overdue"),
                func.min(OutboxRow.created_at).label("oldest"),
            ).group_by(OutboxRow.destination)
        )
    }
    registry = {row.name: row for row in session.scalars(select(Destination))}
    statuses = []
    for name in DESTINATION_NAMES:
        row = registry.get(name)
        count = counts.get(name)
        statuses.append(
            DestinationStatus(
                name=name,
                kind=KINDS[name],
                enabled=settings.is_enabled(name),
                pending=int(count.pending or 0) if count else 0,
                failed=int(count.failed or 0) if count else 0,
                overdue=int(count.overdue or 0) if count else 0,
                oldest_pending_at=count.oldest if count else None,
                last_success_at=row.last_success_at if row else None,
                last_error=row.last_error if row else None,
                last_error_at=row.last_error_at if row else None,
                paused_until=row.paused_until if row else None,
                full_requested_at=row.full_requested_at if row else None,
                warning=settings.warnings.get(name),
            )
        )
    return statuses


def load_sealed_token(session: Session, vault: AddressVault, name: str, seed: str) -> str | None:
    """The destination's rotated OAuth refresh token, if one was saved for this
    seed (the configured token it replaced)."""
    row = session.get(Destination, name)
    if row is None or row.credential_seed != seed or row.credential_sealed is None:
        return None
    return vault.open(row.credential_sealed)


def save_sealed_token(
    session: Session, vault: AddressVault, name: str, seed: str, refresh_token: str
) -> None:
    """Keep a rotated refresh token, sealed like addresses, one per destination."""
    session.execute(
        update(Destination)
        .where(Destination.name == name)
        .values(credential_sealed=vault.seal(refresh_token), credential_seed=seed)
    )
