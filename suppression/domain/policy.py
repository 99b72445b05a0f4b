"""The decision: may we market this purpose to this subject, and if not, why.

One pure function of (subject state, jurisdiction, purpose, settings, now). The
bulk check, the staff pages and the destination sync all call it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from suppression.domain.jurisdictions import (
    DEFAULT_REGIMES,
    Jurisdiction,
    Regime,
    RegimeTable,
    is_eea,
)

ALL_PURPOSES = "all"
DEFAULT_PURPOSES = ("email_marketing", "ad_audiences")


class Reason(StrEnum):
    """API.md's reason codes, in the order of precedence."""

    INVALID = "invalid"
    ERASED = "erased"
    COMPLAINED = "complained"
    BOUNCED = "bounced"
    OPTED_OUT = "opted_out"
    RESTRICTED = "restricted"
    EEA = "eea"
    OPT_IN_REQUIRED = "opt_in_required"
    UNKNOWN_JURISDICTION = "unknown_jurisdiction"


class ConsentStatus(StrEnum):
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class BlockKind(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    RESTRICTION = "restriction"
    OBJECTION = "objection"


class EventAction(StrEnum):
    """What an event of the evidence log records (`consent_events.action`): a
    consent change, a block or its lifting, a customer relationship, a country,
    and what erasure and a staff restore do."""

    OPTED_IN = ConsentStatus.OPTED_IN.value
    OPTED_OUT = ConsentStatus.OPTED_OUT.value
    HARD_BOUNCE = BlockKind.HARD_BOUNCE.value
    COMPLAINT = BlockKind.COMPLAINT.value
    RESTRICTION = BlockKind.RESTRICTION.value
    OBJECTION = BlockKind.OBJECTION.value
    LIFT_RESTRICTION = "lift_restriction"
    PURCHASE = "purchase"
    INQUIRY = "inquiry"
    COUNTRY_SET = "country_set"
    ERASED = "erased"
    RESTORED = "restored"
    COMPLAINT_LIFTED = "complaint_lifted"


class EeaPolicy(StrEnum):
    EXCLUDE = "exclude"  # never market to EEA addresses (the policy's default)
    OPT_IN = "opt_in"  # admit EEA addresses that have a recorded opt-in


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    status: ConsentStatus
    changed_at: datetime


def effective_consent(
    purpose_record: ConsentRecord | None, all_record: ConsentRecord | None
) -> ConsentRecord | None:
    """A change to `all` and a change to one purpose: the newer one holds; at the
    same instant an opt-out holds (the safe side)."""
    if purpose_record is None:
        return all_record
    if all_record is None:
        return purpose_record
    if all_record.changed_at == purpose_record.changed_at:
        return min(all_record, purpose_record, key=lambda r: r.status != ConsentStatus.OPTED_OUT)
    return all_record if all_record.changed_at > purpose_record.changed_at else purpose_record


@dataclass(frozen=True, slots=True)
class SubjectState:
    """What the store knows about one address, as far as the decision needs it."""

    erased: bool = False
    blocks: frozenset[BlockKind] = frozenset()
    consent: ConsentRecord | None = None  # effective consent for the purpose asked
    last_purchase_at: datetime | None = None
    last_inquiry_at: datetime | None = None


NEVER_SEEN = SubjectState()


@dataclass(frozen=True, slots=True)
class PolicySettings:
    purposes: tuple[str, ...] = DEFAULT_PURPOSES
    regimes: RegimeTable = field(default_factory=lambda: RegimeTable(DEFAULT_REGIMES))
    eea_policy: EeaPolicy = EeaPolicy.EXCLUDE
    # Countries where implied consent from a customer relationship replaces an
    # opt-in (CASL implied consent, PECR soft opt-in). Empty: never.
    soft_opt_in_countries: Collection[str] = frozenset()
    soft_opt_in_purchase: timedelta = timedelta(days=730)  # CASL: 2 years
    soft_opt_in_inquiry: timedelta = timedelta(days=183)  # CASL: 6 months


@dataclass(frozen=True, slots=True)
class Decision:
    sendable: bool
    reason: Reason | None

    @property
    def reason_code(self) -> str | None:
        return self.reason.value if self.reason else None


SENDABLE = Decision(True, None)
_DENIED = {reason: Decision(False, reason) for reason in Reason}


def denied(reason: Reason) -> Decision:
    return _DENIED[reason]


def has_implied_consent(state: SubjectState, settings: PolicySettings, now: datetime) -> bool:
    if state.last_purchase_at and now - state.last_purchase_at <= settings.soft_opt_in_purchase:
        return True
    return bool(
        state.last_inquiry_at and now - state.last_inquiry_at <= settings.soft_opt_in_inquiry
    )


def decide(
    state: SubjectState,
    jurisdiction: Jurisdiction,
    settings: PolicySettings,
    now: datetime,
) -> Decision:
    """The first reason that holds, in API.md's order, or sendable."""
    if state.erased:
        return _DENIED[Reason.ERASED]
    blocks = state.blocks
    if blocks:
        if BlockKind.COMPLAINT in blocks:
            return _DENIED[Reason.COMPLAINED]
        if BlockKind.HARD_BOUNCE in blocks:
            return _DENIED[Reason.BOUNCED]
    consent = state.consent
    if consent is not None and consent.status == ConsentStatus.OPTED_OUT:
        return _DENIED[Reason.OPTED_OUT]
    if blocks and (BlockKind.RESTRICTION in blocks or BlockKind.OBJECTION in blocks):
        return _DENIED[Reason.RESTRICTED]
    country = jurisdiction.country
    if is_eea(country) and settings.eea_policy == EeaPolicy.EXCLUDE:
        return _DENIED[Reason.EEA]
    regime = settings.regimes.regime_for(country)
    if regime == Regime.OPT_OUT:
        return SENDABLE
    if regime == Regime.DENY:
        return _DENIED[Reason.UNKNOWN_JURISDICTION]
    if consent is not None and consent.status == ConsentStatus.OPTED_IN:
        return SENDABLE
    if country in settings.soft_opt_in_countries and has_implied_consent(state, settings, now):
        return SENDABLE
    return _DENIED[Reason.OPT_IN_REQUIRED]
