"""The dashboard: counts by purpose and state, blocks, the EEA share, opt-outs per
day over the last 30 days (an SVG chart drawn on the server), opt-outs and
feedback by channel over the same days, and the mass-unsubscribe alarms."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import render_template

from suppression.app import current
from suppression.domain.policy import ALL_PURPOSES
from suppression.services.consents.alarms import list_alarms
from suppression.services.staff import dashboard as numbers
from suppression.web.staff.blueprint import bp
from suppression.web.staff.charts import NARROW_CHART_WIDTH, bar_chart

CHART_DAYS = 30
ALARMS_SHOWN = 50


def _start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@bp.get("/dashboard")
def dashboard() -> Any:
    db = current.read_session()
    today = current.now().date()
    daily = numbers.opt_outs_per_day(db, today, CHART_DAYS)
    points = [(f"{d.day:%d %b}", f"{d.day:%Y-%m-%d}", d.count) for d in daily]
    chart = bar_chart(points)
    # For a phone: half as wide, so its labels show at about their own size; fewer of them.
    narrow_chart = bar_chart(points, width=NARROW_CHART_WIDTH, label_every=10)
    counts = numbers.consent_counts(db)
    purposes = [*current.settings().purposes, ALL_PURPOSES]
    purposes += sorted(p for p in counts if p not in purposes)  # purposes since removed
    return render_template(
        "staff/dashboard.html",
        totals=numbers.subject_totals(db),
        counts=counts,
        purposes=purposes,
        blocks=numbers.block_counts(db),
        eea=numbers.eea_share(db),
        eea_policy=current.settings().policy.eea_policy.value,
        chart=chart,
        narrow_chart=narrow_chart,
        daily=daily,
        days=CHART_DAYS,
        alarms=list_alarms(db, limit=ALARMS_SHOWN),
        channels=numbers.changes_by_channel(db, _start_of(daily[0].day)),
    )
