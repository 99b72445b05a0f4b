"""Double opt-in: the preference page asks, the mailbox confirms, then the opt-in
is recorded with the evidence of both steps (GDPR Art. 7(1): consent that can be
demonstrated; and a link that leaked from a mail cannot re-subscribe anyone).

- `request_opt_in` writes an `OptInRequest` in the page's transaction: it is both
  the evidence of the request step (sealed) and the confirmation mail to send. A
  second request for the same purposes within RESEND_AFTER sends no second mail.
- `confirm_opt_in` is the POST of the mail's link: the request is claimed once
  (a conditional UPDATE, so two racing POSTs record one opt-in), the guard is asked
  again (a complaint or an erasure since the request still wins), and `opted_in` is
  recorded for each purpose.

These flush and never commit; the edges commit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from suppression.domain.chain import canonical_json
from suppression.domain.policy import ConsentStatus, PolicySettings
from suppression.domain.sealing import SealError
from suppression.domain.tokens import ConfirmationClaims
from suppression.domain.vault import AddressVault
from suppression.services.consents.recording import EventContext, record_consent
from suppression.services.consents.resubscribe import materialise_hashed_suppression
from suppression.services.links.unsubscribes import opt_in_refused, read_preferences
from suppression.store.dialects import execute_dml
from suppression.store.models import OptInRequest

# At most one confirmation mail per address and purpose set in this time.
RESEND_AFTER = timedelta(minutes=10)
# Rows are kept this long after their link expired (then they serve nothing).
KEPT_AFTER_EXPIRY = timedelta(days=1)


def purposes_key(purposes: Sequence[str]) -> str:
    return ",".join(sorted(set(purposes)))


@dataclass(frozen=True)
class RequestOutcome:
    request: OptInRequest
    new: bool  # False: the same request was made within RESEND_AFTER; no new mail


def request_opt_in(
    session: Session,
    vault: AddressVault,
    address: str,
    purposes: Sequence[str],
    evidence: Mapping[str, Any],
    now: datetime,
) -> RequestOutcome:
    """Ask the mailbox to confirm an opt-in to `purposes`; nothing is recorded yet."""
    index = vault.index(address)
    key = purposes_key(purposes)
    recent = session.scalars(
        select(OptInRequest)
        .where(
            OptInRequest.email_index == index,
            OptInRequest.purposes == key,
            OptInRequest.requested_at > now - RESEND_AFTER,
            OptInRequest.confirmed_at.is_(None),
        )
        .order_by(OptInRequest.id.desc())
        .limit(1)
    ).first()
    if recent is not None:
        return RequestOutcome(recent, new=False)
    request = OptInRequest(
        email_index=index,
        email_sealed=vault.seal(address),
        purposes=key,
        # Whole seconds: the confirmation link carries this time and must match it.
        requested_at=now.replace(microsecond=0),
        # Sealed as evidence (its own associated data): it cannot pass for an address.
        request_sealed=vault.seal_evidence(canonical_json(dict(evidence))),
        mail_attempts=0,
    )
    session.add(request)
    session.flush()
    return RequestOutcome(request, new=True)


class UnknownRequest(LookupError):
    """A genuine confirmation link whose request is no longer held (purged or erased)."""


def find_request(session: Session, vault: AddressVault, claims: ConfirmationClaims) -> OptInRequest:
    """The request the link was minted for; UnknownRequest when it is not held or
    does not match the link's address, purposes and time."""
    request = session.get(OptInRequest, claims.request_id)
    if (
        request is None
        or bytes(request.email_index) != vault.index(claims.address)
        or request.purposes != purposes_key(claims.purposes)
        or request.requested_at != claims.requested_at
    ):
        raise UnknownRequest(claims.request_id)
    return request


def request_evidence(vault: AddressVault, request: OptInRequest) -> dict[str, Any]:
    """The request step's evidence, opened (empty if no held key opens it)."""
    try:
        return dict(json.loads(vault.open_evidence(request.request_sealed)))
    except SealError:
        return {}


@dataclass(frozen=True)
class ConfirmOutcome:
    opted_in: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()  # a complaint, restriction, objection or erasure since
    already_at: datetime | None = None  # confirmed before: nothing changed
    erased: bool = False


def confirm_opt_in(
    session: Session,
    vault: AddressVault,
    policy: PolicySettings,
    claims: ConfirmationClaims,
    ctx: EventContext,
) -> ConfirmOutcome:
    """Record the opt-ins the link names, with both steps' evidence, exactly once."""
    request = find_request(session, vault, claims)
    if request.confirmed_at is not None:
        return ConfirmOutcome(already_at=request.confirmed_at)
    current = read_preferences(session, vault, policy, claims.address, ctx.recorded_at)
    if current.erased:
        return ConfirmOutcome(refused=claims.purposes, erased=True)
    allowed = [p for p in claims.purposes if p in policy.purposes]
    refused = [p for p in claims.purposes if p not in allowed]
    if not current.can_opt_in:
        return ConfirmOutcome(refused=claims.purposes)
    for purpose in list(allowed):
        if opt_in_refused(session, vault, claims.address, purpose, ctx.occurred_at):
            allowed.remove(purpose)
            refused.append(purpose)
    if not allowed:
        return ConfirmOutcome(refused=tuple(refused))
    # Claimed by one statement: of two racing confirmations only one records.
    claimed = execute_dml(
        session,
        update(OptInRequest)
        .where(OptInRequest.id == request.id, OptInRequest.confirmed_at.is_(None))
        .values(confirmed_at=ctx.recorded_at)
        .execution_options(synchronize_session=False),
    ).rowcount
    if claimed != 1:
        session.refresh(request)
        return ConfirmOutcome(already_at=request.confirmed_at)
    requested = request_evidence(vault, request)
    evidence = {
        **requested,
        **dict(ctx.evidence or {}),
        "double_opt_in": "confirmed from the mailbox",
        "confirmation_mail_sent_at": _time(request.mail_sent_at),
        "confirmed_at": _time(ctx.recorded_at),
    }
    confirmed = replace(ctx, evidence=evidence, campaign=ctx.campaign or requested.get("campaign"))
    materialise_hashed_suppression(session, vault, claims.address, confirmed)
    for purpose in allowed:
        record_consent(session, vault, claims.address, purpose, ConsentStatus.OPTED_IN, confirmed)
    return ConfirmOutcome(opted_in=tuple(allowed), refused=tuple(refused))


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def requests_for(session: Session, index: bytes) -> list[OptInRequest]:
    """One address's requests, oldest first (for its export)."""
    return list(
        session.scalars(
            select(OptInRequest).where(OptInRequest.email_index == index).order_by(OptInRequest.id)
        )
    )


def forget_requests(session: Session, index: bytes) -> int:
    """Erasure: the address's requests go (sealed address and request evidence)."""
    return (
        execute_dml(
            session,
            delete(OptInRequest)
            .where(OptInRequest.email_index == index)
            .execution_options(synchronize_session=False),
        ).rowcount
        or 0
    )


def purge_expired_requests(session: Session, now: datetime, link_validity: timedelta) -> int:
    """Requests whose link expired more than a day ago serve nothing: they go."""
    return (
        execute_dml(
            session,
            delete(OptInRequest)
            .where(OptInRequest.requested_at < now - link_validity - KEPT_AFTER_EXPIRY)
            .execution_options(synchronize_session=False),
        ).rowcount
        or 0
    )
