"""The dashboard's numbers: set-based counts on both databases."""

from datetime import timedelta

from sqlalchemy import update

from suppression.domain.jurisdictions import CountrySource
from suppression.domain.policy import ConsentStatus
from suppression.services.consents.recording import (
    EventContext,
    record_block,
    record_consent,
    set_country,
)
from suppression.services.staff import dashboard
from suppression.store.models import Subject


def ctx(clock, at=None):
    when = at or clock()
    return EventContext("test", "test", when, clock())


def opt_out(session, vault, clock, email, purpose="all", at=None):
    return record_consent(session, vault, email, purpose, ConsentStatus.OPTED_OUT, ctx(clock, at))


def test_counts_by_purpose_and_state(session, vault, clock):
    opt_out(session, vault, clock, "a@example.com")
    opt_out(session, vault, clock, "b@example.com", "email_marketing")
    record_consent(
        session, vault, "c@example.com", "email_marketing", ConsentStatus.OPTED_IN, ctx(clock)
    )
    record_block(session, vault, "d@example.com", "complaint", ctx(clock))
    session.commit()
    assert dashboard.consent_counts(session) == {
        "all": {"opted_out": 1},
        "email_marketing": {"opted_out": 1, "opted_in": 1},
    }
    assert dashboard.block_counts(session) == {"complaint": 1}
    assert dashboard.subject_totals(session) == dashboard.SubjectTotals(4, 0)


def test_eea_share_counts_stored_countries_only(session, vault, clock):
    for email, country in [("a@x.com", "DE"), ("b@x.com", "FR"), ("c@x.com", "US")]:
        set_country(session, vault, email, country, CountrySource.DECLARED, ctx(clock))
    opt_out(session, vault, clock, "d@firma.de")  # inferred only: not stored
    erased_id = opt_out(session, vault, clock, "e@x.com").id
    set_country(session, vault, "e@x.com", "IT", CountrySource.DECLARED, ctx(clock))
    session.execute(
        update(Subject)
        .where(Subject.id == erased_id)
        .values(erased_at=clock())
        .execution_options(synchronize_session=False)
    )
    session.commit()
    share = dashboard.eea_share(session)
    assert (share.with_country, share.eea, share.without_country) == (3, 2, 1)
    assert round(share.percent, 1) == 66.7


def test_opt_outs_per_day_are_distinct_people_zero_filled_over_the_window(session, vault, clock):
    today = clock().date()
    opt_out(session, vault, clock, "a@example.com", "email_marketing")
    opt_out(session, vault, clock, "a@example.com", "ad_audiences")  # same person, same day
    opt_out(session, vault, clock, "b@example.com", at=clock() - timedelta(days=2))
    opt_out(session, vault, clock, "c@example.com", at=clock() - timedelta(days=2, hours=11))
    opt_out(session, vault, clock, "old@example.com", at=clock() - timedelta(days=30))
    record_consent(session, vault, "in@example.com", "all", ConsentStatus.OPTED_IN, ctx(clock))
    session.commit()
    days = dashboard.opt_outs_per_day(session, today, 30)
    assert len(days) == 30
    assert days[0].day == today - timedelta(days=29)
    assert days[-1] == dashboard.DailyCount(today, 1)
    assert days[-3] == dashboard.DailyCount(today - timedelta(days=2), 2)
    assert sum(d.count for d in days) == 3


def test_the_day_is_the_utc_day(session, vault, clock):
    today = clock().date()
    late = clock().replace(hour=23, minute=59) - timedelta(days=1)
    opt_out(session, vault, clock, "a@example.com", at=late)
    session.commit()
    days = dashboard.opt_outs_per_day(session, today, 2)
    assert [d.count for d in days] == [1, 0]
