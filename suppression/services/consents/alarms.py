"""Mass-unsubscribe alarm: many unsubscribes from one domain and campaign within a
few minutes is what a mail scanner does once it has learned to POST.

Each recorded unsubscribe adds one to a per-minute tally of its (domain, campaign);
when the tallies of the last window add up to more than the threshold, an alarm
is raised (logged, and kept for the staff pages). While the burst goes on, the
open alarm's count and last time move on instead of raising another. Tallies
older than the window are deleted as new ones arrive: only counts per domain are
kept, never an address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from suppression.store.dialects import insert
from suppression.store.models import UnsubscribeAlarm, UnsubscribeTally

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlarmRule:
    """More than `threshold` unsubscribes within `window` raises an alarm."""

    threshold: int = 50
    window: timedelta = timedelta(minutes=10)


def note_unsubscribe(
    session: Session,
    domain: str,
    campaign: str | None,
    at: datetime,
    rule: AlarmRule,
    count: int = 1,
) -> UnsubscribeAlarm | None:
    """Count `count` unsubscribes made up to `at` (the folder counts a batch's at
    once); the alarm when they raised it, else None."""
    minute = at.replace(second=0, microsecond=0)
    campaign_key = campaign or ""
    statement = insert(session, UnsubscribeTally).values(
        domain=domain, campaign=campaign_key, minute_at=minute, count=count, first_at=at, last_at=at
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["domain", "campaign", "minute_at"],
            set_={
                "count": UnsubscribeTally.count + statement.excluded.count,
                "last_at": statement.excluded.last_at,
            },
        )
    )
    since = minute - rule.window + timedelta(minutes=1)
    session.execute(
        delete(UnsubscribeTally)
        .where(UnsubscribeTally.minute_at < since)
        .execution_options(synchronize_session=False)
    )
    total, first_at = session.execute(
        select(func.sum(UnsubscribeTally.count), func.min(UnsubscribeTally.first_at)).where(
            UnsubscribeTally.domain == domain,
            UnsubscribeTally.campaign == campaign_key,
            UnsubscribeTally.minute_at >= since,
        )
    ).one()
    if not total or total <= rule.threshold:
        return None
    same_campaign = (
        UnsubscribeAlarm.campaign.is_(None)
        if campaign is None
        else UnsubscribeAlarm.campaign == campaign
    )
    open_alarm = session.scalar(
        select(UnsubscribeAlarm.id)
        .where(
            UnsubscribeAlarm.domain == domain,
            same_campaign,
            UnsubscribeAlarm.last_at >= at - rule.window,
        )
        .order_by(UnsubscribeAlarm.last_at.desc())
        .limit(1)
    )
    if open_alarm is not None:
        session.execute(
            update(UnsubscribeAlarm)
            .where(UnsubscribeAlarm.id == open_alarm)
            .values(count=UnsubscribeAlarm.count + count, last_at=at)
            .execution_options(synchronize_session=False)
        )
        return None
    alarm = UnsubscribeAlarm(
        domain=domain,
        campaign=campaign,
        count=int(total),
        first_at=first_at or at,
        last_at=at,
        raised_at=at,
    )
    session.add(alarm)
    session.flush()
    logger.warning(
        "mass unsubscribe: %d unsubscribes from domain %s for campaign %s within %d minutes "
        "(alarm %d); a mail scanner may be posting to unsubscribe links",
        alarm.count,
        domain,
        campaign or "(none)",
        int(rule.window.total_seconds() // 60),
        alarm.id,
    )
    return alarm


def list_alarms(session: Session, limit: int = 50) -> list[UnsubscribeAlarm]:
    """The newest alarms first."""
    return list(
        session.scalars(
            select(UnsubscribeAlarm)
            .order_by(UnsubscribeAlarm.raised_at.desc(), UnsubscribeAlarm.id.desc())
            .limit(limit)
        )
    )
