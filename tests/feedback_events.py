"""What the feedback webhook tests read back: the events recorded (with their
evidence opened), and the webhook metric's count for a platform and outcome."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import select

from suppression.services.consents.evidence import open_evidence
from suppression.store.models import ConsentEvent, Subject


def recorded(session, vault) -> list[dict[str, Any]]:
    """Each event recorded, oldest first: action, purpose, source, actor, address,
    occurred_at and the opened evidence."""
    session.expire_all()
    rows = session.execute(
        select(ConsentEvent, Subject).join(Subject).order_by(ConsentEvent.id)
    ).all()
    found = [
        {
            "action": event.action,
            "purpose": event.purpose,
            "source": event.source,
            "actor": event.actor,
            "address": vault.open(subject.email_sealed),
            "occurred_at": event.occurred_at,
            "evidence": open_evidence(vault, event.evidence_sealed).value,
        }
        for event, subject in rows
    ]
    session.rollback()
    return found


def webhook_count(platform: str, outcome: str) -> float:
    sample = REGISTRY.get_sample_value(
        "suppression_webhook_events_total", {"platform": platform, "outcome": outcome}
    )
    return sample or 0.0
