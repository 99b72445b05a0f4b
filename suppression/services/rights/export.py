"""Access and portability (GDPR Art. 15 and 20): every stored fact about one
subject as one structured, machine-readable document."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suppression.domain.jurisdictions import CountrySource
from suppression.domain.policy import PolicySettings
from suppression.domain.vault import AddressVault
from suppression.services.consents.evidence import open_evidence
from suppression.services.consents.resubscribe import hashed_suppression
from suppression.services.consents.subjects import view_subject
from suppression.services.destinations.queue_status import pushes_for, subject_destination_status
from suppression.services.links.opt_in_requests import request_evidence, requests_for
from suppression.services.staff.access_log import access_entries_for
from suppression.store.models import Block, ConsentEvent, ConsentState, Subject

FORMAT = "suppression-export/1"


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def export_subject(
    session: Session,
    vault: AddressVault,
    canonical: str,
    subject: Subject | None,
    settings: PolicySettings,
    now: datetime,
) -> dict[str, Any]:
    """The document; for an address never stored it says so (and what a check says).
    Sealed evidence is opened; one no held key opens says so (`evidence_unreadable`)."""
    view = view_subject(session, canonical, subject, settings, now)
    document: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": _time(now),
        "email": canonical,
        "stored": subject is not None,
        "decisions": {
            purpose: {"sendable": d.sendable, "reason": d.reason_code}
            for purpose, d in view.decisions.items()
        },
    }
    hashed = hashed_suppression(session, canonical)
    document["imported_hashed_suppression"] = (
        None
        if hashed is None
        else {
            "reason": hashed.reason,
            "changed_at": _time(hashed.changed_at),
            "source": hashed.source,
        }
    )
    # Double opt-in requests waiting for (or used by) the mailbox's confirmation.
    document["opt_in_requests"] = [
        {
            "purposes": request.purposes.split(","),
            "requested_at": _time(request.requested_at),
            "confirmed_at": _time(request.confirmed_at),
            "mail_sent_at": _time(request.mail_sent_at),
            "mail_failed_at": _time(request.mail_failed_at),
            "evidence": request_evidence(vault, request),
        }
        for request in requests_for(session, vault.index(canonical))
    ]
    if subject is None:
        return document
    document["subject"] = {
        "country": subject.country,
        "country_source": (
            CountrySource(subject.country_source).label if subject.country_source else None
        ),
        "country_changed_at": _time(subject.country_changed_at),
        "created_at": _time(subject.created_at),
        "last_communication_at": _time(subject.last_communication_at),
        "last_purchase_at": _time(subject.last_purchase_at),
        "last_inquiry_at": _time(subject.last_inquiry_at),
        "erased_at": _time(subject.erased_at),
        "erase_reason": subject.erase_reason,
        "erasure_status": subject.erasure_status,
        "address_held": subject.email_sealed is not None,
    }
    document["consents"] = {
        state.purpose: {
            "status": state.status,
            "changed_at": _time(state.changed_at),
            "source": state.source,
            "event_id": state.event_id,
        }
        for state in session.scalars(
            select(ConsentState)
            .where(ConsentState.subject_id == subject.id)
            .order_by(ConsentState.purpose)
        )
    }
    document["blocks"] = [
        {
            "kind": block.kind,
            "active": block.is_active,
            "changed_at": _time(block.changed_at),
            "source": block.source,
            "event_id": block.event_id,
        }
        for block in session.scalars(
            select(Block).where(Block.subject_id == subject.id).order_by(Block.kind)
        )
    ]
    document["events"] = [
        event_document(vault, e)
        for e in session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.subject_id == subject.id)
            .order_by(ConsentEvent.chain_seq)
        )
    ]
    document["access_log"] = [
        {
            "occurred_at": _time(entry.occurred_at),
            "actor": entry.actor,
            "channel": entry.channel,
            "action": entry.action,
            "reason": entry.reason,
        }
        for entry in access_entries_for(session, subject.id)
    ]
    document["destination_pushes"] = [
        {
            "destination": push.destination,
            "operation": push.operation,
            "reason": push.reason,
            "outcome": push.outcome,
            "pushed_at": _time(push.pushed_at),
        }
        for push in pushes_for(session, subject.id)
    ]
    document["destinations"] = [
        {**asdict(status), "confirmed_at": _time(status.confirmed_at)}
        for status in subject_destination_status(session, subject.id)
    ]
    return document


def event_document(vault: AddressVault, e: ConsentEvent) -> dict[str, Any]:
    """One event as the export and the lookup show it: evidence opened (flagged when
    no held key opens it)."""
    evidence = open_evidence(vault, e.evidence_sealed)
    document = {
        "id": e.id,
        "action": e.action,
        "purpose": e.purpose,
        "source": e.source,
        "actor": e.actor,
        "occurred_at": _time(e.occurred_at),
        "recorded_at": _time(e.recorded_at),
        "ip": e.ip,
        "user_agent": e.user_agent,
        "campaign": e.campaign,
        "notice_version": e.notice_version,
        "country": e.country,
        "evidence": evidence.value,
        "chain_seq": e.chain_seq,
    }
    if evidence.unreadable:
        document["evidence_unreadable"] = True
    return document
