"""Recording verified feedback events (services/feedback): each platform event id
acts once, unsubscribes go the way a link's do, and receipts are forgotten after
a week."""

import json
from datetime import timedelta

from sqlalchemy import func, select

from suppression.domain.feedback import (
    SENDGRID,
    SES,
    FeedbackAction,
    FeedbackEvent,
    FeedbackOutcome,
)
from suppression.services.consents.alarms import AlarmRule
from suppression.services.consents.subjects import find_subject, view_subject
from suppression.services.feedback.intake import receive_feedback
from suppression.services.feedback.receipts import claim_nonce, forget_old_receipts
from suppression.store.models import ConsentEvent, FeedbackReceipt


def _event(event_id, action, address="Jane@Example.com", platform=SES, **details):
    return FeedbackEvent(
        platform=platform,
        event_id=event_id,
        event_type="Bounce" if action else "Delivery",
        action=action,
        address=address,
        occurred_at=None,
        details=details,
    )


def _receive(session, vault, settings, clock, *events):
    return receive_feedback(
        session, vault, settings.policy, events, clock(), AlarmRule(threshold=1000)
    ).outcomes


def _events(session):
    return session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()


def test_a_hard_bounce_is_a_block_with_the_platform_and_its_event_id(
    session, vault, settings, clock
):
    outcomes = _receive(
        session,
        vault,
        settings,
        clock,
        _event("m-1", FeedbackAction.HARD_BOUNCE, bounce_type="Permanent"),
    )
    assert outcomes == [FeedbackOutcome.RECORDED]
    [event] = _events(session)
    assert (event.action, event.source, event.actor) == ("hard_bounce", SES, SES)
    evidence = json.loads(vault.open_evidence(event.evidence_sealed))
    assert evidence["platform_event_id"] == "m-1"
    assert evidence["platform_event_type"] == "Bounce"
    assert evidence["bounce_type"] == "Permanent"
    subject = find_subject(session, vault, "jane@example.com")
    view = view_subject(session, "jane@example.com", subject, settings.policy, clock())
    assert not any(decision.sendable for decision in view.decisions.values())


def test_the_same_event_id_acts_once_but_another_platform_s_is_its_own(
    session, vault, settings, clock
):
    first = _event("id-7", FeedbackAction.COMPLAINT)
    again = _receive(session, vault, settings, clock, first, first)
    other = _receive(
        session, vault, settings, clock, _event("id-7", FeedbackAction.COMPLAINT, platform=SENDGRID)
    )
    assert again == [FeedbackOutcome.RECORDED, FeedbackOutcome.DUPLICATE]
    assert other == [FeedbackOutcome.RECORDED]
    assert len(_events(session)) == 2


def test_an_unsubscribe_of_an_opted_out_address_records_nothing(session, vault, settings, clock):
    outcomes = _receive(
        session,
        vault,
        settings,
        clock,
        _event("u-1", FeedbackAction.OPT_OUT),
        _event("u-2", FeedbackAction.OPT_OUT),
    )
    assert outcomes == [FeedbackOutcome.RECORDED, FeedbackOutcome.UNCHANGED]
    [event] = _events(session)
    assert (event.action, event.purpose, event.source) == ("opted_out", "all", SES)


def test_events_without_an_action_or_a_valid_address_are_ignored_and_not_claimed(
    session, vault, settings, clock
):
    outcomes = _receive(
        session,
        vault,
        settings,
        clock,
        _event("d-1", None),
        _event("b-1", FeedbackAction.HARD_BOUNCE, address="not an address"),
        _event("b-2", FeedbackAction.HARD_BOUNCE, address=None),
    )
    assert outcomes == [FeedbackOutcome.IGNORED] * 3
    assert _events(session) == []
    assert session.scalar(select(func.count()).select_from(FeedbackReceipt)) == 0


def test_a_nonce_is_claimed_once_and_receipts_are_forgotten_after_a_week(session, clock):
    assert claim_nonce(session, "mailgun", "token-1", clock())
    assert not claim_nonce(session, "mailgun", "token-1", clock())
    assert forget_old_receipts(session, clock() + timedelta(days=6)) == 0
    assert forget_old_receipts(session, clock() + timedelta(days=7, seconds=1)) == 1
    assert claim_nonce(session, "mailgun", "token-1", clock() + timedelta(days=8))


def test_the_sync_worker_s_chore_forgets_receipts_older_than_a_week(app, session, clock):
    from suppression.worker.feedback_receipts import receipt_forgetter

    claim_nonce(session, "mailgun", "old", clock() - timedelta(days=8))
    claim_nonce(session, "mailgun", "new", clock())
    session.commit()
    forget = receipt_forgetter(app.extensions["suppression"].sessions, clock)
    assert forget() == 1
    assert session.scalar(select(func.count()).select_from(FeedbackReceipt)) == 1


def test_a_spree_of_platform_unsubscribes_raises_the_mass_unsubscribe_alarm(
    session, vault, settings, clock
):
    """A leaked or misused platform secret could opt out a whole list: the webhook's
    opt-outs count towards the same alarm as the links' do, and say when it is raised."""
    events = [
        _event(
            f"u-{n}", FeedbackAction.OPT_OUT, address=f"person{n}@example.com", platform=SENDGRID
        )
        for n in range(4)
    ]
    received = receive_feedback(
        session, vault, settings.policy, events, clock(), AlarmRule(threshold=2)
    )
    assert received.outcomes == [FeedbackOutcome.RECORDED] * 4
    assert received.alarms == 1  # raised once, by the opt-out that crossed the threshold
