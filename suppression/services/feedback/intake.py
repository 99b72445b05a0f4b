"""Recording verified feedback events: a hard bounce or a complaint becomes a
block, an unsubscribe an opt-out (the way an unsubscribe link's does), each with
the platform as its source and the platform's event id as evidence. Each event
id acts once. Flushes, never commits: the webhook's view commits, then answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from suppression.domain.addresses import canonicalise
from suppression.domain.feedback import FeedbackAction, FeedbackEvent, FeedbackOutcome
from suppression.domain.policy import ALL_PURPOSES, PolicySettings
from suppression.domain.vault import AddressVault
from suppression.services.consents.alarms import AlarmRule
from suppression.services.consents.recording import EventContext, record_block
from suppression.services.feedback.receipts import claim_event
from suppression.services.links.unsubscribes import unsubscribe


@dataclass
class ReceivedFeedback:
    outcomes: list[FeedbackOutcome] = field(default_factory=list)  # each event's, in order
    alarms: int = 0  # mass-unsubscribe alarms the opt-outs raised (recorded already)


def receive_feedback(
    session: Session,
    vault: AddressVault,
    policy: PolicySettings,
    events: Iterable[FeedbackEvent],
    now: datetime,
    rule: AlarmRule,
) -> ReceivedFeedback:
    """Each event's outcome, in order, and the alarms raised. An event that names no
    valid address, or that the service does not act on, is ignored and not claimed."""
    received = ReceivedFeedback()
    for event in events:
        address = canonicalise(event.address) if event.address else None
        if event.action is None or address is None:
            received.outcomes.append(FeedbackOutcome.IGNORED)
        elif not claim_event(session, event.platform, event.event_id, now):
            received.outcomes.append(FeedbackOutcome.DUPLICATE)
        else:
            outcome, alarmed = _record(session, vault, policy, event, address, now, rule)
            received.outcomes.append(outcome)
            received.alarms += alarmed
    return received


def _record(
    session: Session,
    vault: AddressVault,
    policy: PolicySettings,
    event: FeedbackEvent,
    address: str,
    now: datetime,
    rule: AlarmRule,
) -> tuple[FeedbackOutcome, bool]:
    """The event's outcome, and whether its opt-out raised a mass-unsubscribe alarm."""
    occurred_at = min(event.occurred_at or now, now)  # a platform clock ahead of ours
    ctx = EventContext(
        actor=event.platform,
        source=event.platform,
        occurred_at=occurred_at,
        recorded_at=now,
        evidence={
            "platform_event_id": event.event_id,
            "platform_event_type": event.event_type,
            **{name: value for name, value in event.details.items() if value},
        },
    )
    if event.action is FeedbackAction.OPT_OUT:
        purpose = event.purpose or ALL_PURPOSES
        outcome = unsubscribe(session, vault, policy, address, purpose, ctx, rule)
        recorded = FeedbackOutcome.RECORDED if outcome.recorded else FeedbackOutcome.UNCHANGED
        return recorded, outcome.alarm is not None
    assert event.action is not None  # receive_feedback ignores events without one
    record_block(session, vault, address, event.action.value, ctx)
    return FeedbackOutcome.RECORDED, False
