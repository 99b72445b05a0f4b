"""The staff dashboard's numbers, each one a few set-based queries.

The EEA share counts the countries stored with subjects (declared by the person
or staff, or a hint sent with a consent change). A country that is only inferred
from the address's domain is decided at check time and never stored, and the
address is sealed, so those subjects are counted as "no stored country".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suppression.domain.jurisdictions import is_eea
from suppression.domain.policy import EventAction
from suppression.domain.sources import CHANNELS, channel_label, channel_of
from suppression.store.dialects import utc_day
from suppression.store.models import Block, ConsentEvent, ConsentState, Subject


@dataclass(frozen=True)
class SubjectTotals:
    subjects: int
    erased: int


@dataclass(frozen=True)
class EeaShare:
    with_country: int  # live subjects with a stored country
    eea: int
    without_country: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.eea / self.with_country if self.with_country else None


@dataclass(frozen=True)
class DailyCount:
    day: date
    count: int


@dataclass
class ChannelCount:
    channel: str
    label: str
    opted_out: int = 0
    hard_bounce: int = 0
    complaint: int = 0


CHANNEL_ACTIONS = (EventAction.OPTED_OUT, EventAction.HARD_BOUNCE, EventAction.COMPLAINT)


def subject_totals(session: Session) -> SubjectTotals:
    total, erased = session.execute(
        select(func.count(), func.count(Subject.erased_at)).select_from(Subject)
    ).one()
    return SubjectTotals(total, erased)


def consent_counts(session: Session) -> dict[str, dict[str, int]]:
    """{purpose: {status: subjects}} from the current state (`all` included)."""
    counts: dict[str, dict[str, int]] = {}
    for purpose, status, count in session.execute(
        select(ConsentState.purpose, ConsentState.status, func.count()).group_by(
            ConsentState.purpose, ConsentState.status
        )
    ):
        counts.setdefault(purpose, {})[status] = count
    return counts


def block_counts(session: Session) -> dict[str, int]:
    """{kind: subjects} for the blocks in force."""
    rows = session.execute(
        select(Block.kind, func.count())
        .where(Block.is_active.is_(True))
        .group_by(Block.kind)
        .order_by(Block.kind)
    )
    return dict(rows.all())


def eea_share(session: Session) -> EeaShare:
    """Counted per stored country (at most a few hundred groups), never per subject."""
    with_country = eea = without_country = 0
    for country, count in session.execute(
        select(Subject.country, func.count())
        .where(Subject.erased_at.is_(None))
        .group_by(Subject.country)
    ):
        if country is None:
            without_country += count
            continue
        with_country += count
        if is_eea(country):
            eea += count
    return EeaShare(with_country, eea, without_country)


def opt_outs_per_day(session: Session, today: date, days: int = 30) -> list[DailyCount]:
    """People who opted out of anything, per UTC day, for the last `days` days
    (today included), zero-filled. One person opting out twice a day counts once."""
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    day = utc_day(session, ConsentEvent.occurred_at)
    found: dict[date, int] = {}
    for value, count in session.execute(
        select(day, func.count(ConsentEvent.subject_id.distinct()))
        .where(
            ConsentEvent.action == EventAction.OPTED_OUT,
            ConsentEvent.occurred_at >= since,
        )
        .group_by(day)
    ):
        key = value if isinstance(value, date) else date.fromisoformat(str(value))
        found[key] = count
    series = (first + timedelta(days=n) for n in range(days))
    return [DailyCount(d, found.get(d, 0)) for d in series]


def changes_by_channel(session: Session, since: datetime) -> list[ChannelCount]:
    """Opt-out, hard-bounce and complaint events since `since`, per channel
    (domain/sources.py: a caller's own source counts as `other`), most opt-outs
    first. Events, not people: one person opting out of two purposes counts twice."""
    counts: dict[str, ChannelCount] = {}
    for source, action, count in session.execute(
        select(ConsentEvent.source, ConsentEvent.action, func.count())
        .where(ConsentEvent.action.in_(CHANNEL_ACTIONS), ConsentEvent.occurred_at >= since)
        .group_by(ConsentEvent.source, ConsentEvent.action)
    ):
        channel = channel_of(source)
        row = counts.setdefault(channel, ChannelCount(channel, channel_label(source)))
        setattr(row, action, getattr(row, action) + count)
    order = list(CHANNELS)
    return sorted(
        counts.values(),
        key=lambda row: (
            -row.opted_out,
            order.index(row.channel) if row.channel in order else len(order),
        ),
    )
