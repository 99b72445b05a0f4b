"""What a link lets its holder do: opt out, and read or change their preferences.
The caller has verified the link's token; these never commit.

Repeats are harmless: an opt-out that is already in force records nothing, and an
erased subject (only its keyed index is left) is suppressed already, so nothing
about the request is stored for it. Opting back in is never recorded here: the
page only asks for it (services/links/opt_in_requests.py: the mailbox confirms first),
and never over an erasure, a complaint, a restriction or an objection: those are
refused, and the page says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from suppression.domain.addresses import domain_of
from suppression.domain.policy import (
    ALL_PURPOSES,
    BlockKind,
    ConsentRecord,
    ConsentStatus,
    Decision,
    PolicySettings,
    effective_consent,
)
from suppression.domain.sources import (  # noqa: F401  (the link pages import them here)
    SOURCE_MAILTO,
    SOURCE_ONE_CLICK,
    SOURCE_PREFERENCE_PAGE,
    SOURCE_UNSUBSCRIBE_PAGE,
)
from suppression.domain.vault import AddressVault
from suppression.services.consents.alarms import AlarmRule, note_unsubscribe
from suppression.services.consents.recording import EventContext, record_consent
from suppression.services.consents.resubscribe import OptInAuthority, opt_in_conflict
from suppression.services.consents.subjects import SubjectView, find_subject, view_subject
from suppression.store.models import UnsubscribeAlarm

ACTOR = "recipient"  # the person the link was minted for (whoever holds it)

# Blocks that only staff may lift: while one holds, nobody opts back in from a link.
LOCKING_BLOCKS = (BlockKind.COMPLAINT, BlockKind.OBJECTION, BlockKind.RESTRICTION)


@dataclass(frozen=True)
class UnsubscribeOutcome:
    recorded: bool  # False: already opted out, or erased; nothing was written
    alarm: UnsubscribeAlarm | None = None  # a mass-unsubscribe alarm this one raised


@dataclass(frozen=True)
class PurposeChoice:
    purpose: str
    receiving: bool  # the switch: on when opted in, or nothing recorded and it may be sent
    decision: Decision  # what a check answers now


@dataclass(frozen=True)
class Preferences:
    choices: tuple[PurposeChoice, ...]
    erased: bool
    locked_by: BlockKind | None  # a block that stops opting back in here

    @property
    def can_opt_in(self) -> bool:
        return not self.erased and self.locked_by is None


@dataclass(frozen=True)
class PreferenceChanges:
    opted_out: tuple[str, ...] = ()
    # Opt-ins asked for and allowed: nothing is recorded until the mailbox confirms.
    to_confirm: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()  # opt-ins asked for but not allowed (see Preferences)
    alarm: UnsubscribeAlarm | None = None


def link_purpose(purpose: str, policy: PolicySettings) -> str:
    """A link's purpose; one no longer configured means every purpose (the safe side)."""
    return purpose if purpose in policy.purposes or purpose == ALL_PURPOSES else ALL_PURPOSES


def _effective(view: SubjectView, purpose: str) -> ConsentRecord | None:
    def record(name: str) -> ConsentRecord | None:
        state = view.consents.get(name)
        return ConsentRecord(ConsentStatus(state.status), state.changed_at) if state else None

    return effective_consent(record(purpose), record(ALL_PURPOSES))


def _opted_out(view: SubjectView, purpose: str) -> bool:
    consent = _effective(view, purpose)
    return consent is not None and consent.status == ConsentStatus.OPTED_OUT


def _locked_by(view: SubjectView) -> BlockKind | None:
    active = {block.kind for block in view.blocks}
    return next((kind for kind in LOCKING_BLOCKS if kind.value in active), None)


def unsubscribe(
    session: Session,
    vault: AddressVault,
    policy: PolicySettings,
    address: str,
    purpose: str,
    ctx: EventContext,
    rule: AlarmRule,
) -> UnsubscribeOutcome:
    """Opt the address out of `purpose` (or `all`); a never-seen address becomes a subject."""
    purpose = link_purpose(purpose, policy)
    subject = find_subject(session, vault, address)
    if subject is not None:
        if subject.erased_at is not None:
            return UnsubscribeOutcome(recorded=False)
        view = view_subject(session, address, subject, policy, ctx.recorded_at)
        targets = policy.purposes if purpose == ALL_PURPOSES else (purpose,)
        if all(_opted_out(view, target) for target in targets):
            return UnsubscribeOutcome(recorded=False)
    record_consent(session, vault, address, purpose, ConsentStatus.OPTED_OUT, ctx)
    alarm = note_unsubscribe(session, domain_of(address), ctx.campaign, ctx.recorded_at, rule)
    return UnsubscribeOutcome(recorded=True, alarm=alarm)


def read_preferences(
    session: Session, vault: AddressVault, policy: PolicySettings, address: str, now: datetime
) -> Preferences:
    """The switches as the preference page shows them. Writes nothing."""
    subject = find_subject(session, vault, address)
    view = view_subject(session, address, subject, policy, now)
    erased = view.erased_at is not None
    locked_by = _locked_by(view)
    choices = []
    for purpose in policy.purposes:
        consent = _effective(view, purpose)
        decision = view.decisions[purpose]
        if erased:
            receiving = False
        elif consent is None:
            receiving = decision.sendable
        else:
            receiving = consent.status == ConsentStatus.OPTED_IN and locked_by is None
        choices.append(PurposeChoice(purpose, receiving, decision))
    return Preferences(tuple(choices), erased, locked_by)


def opt_in_refused(
    session: Session, vault: AddressVault, address: str, purpose: str, at: datetime
) -> bool:
    """The re-subscribe guard, for the person's own opt-in (never over an erasure or
    a complaint)."""
    subject = find_subject(session, vault, address)
    conflict = opt_in_conflict(
        session, subject, address, purpose, at, OptInAuthority.SUBJECT, False
    )
    return conflict is not None


def save_preferences(
    session: Session,
    vault: AddressVault,
    policy: PolicySettings,
    address: str,
    shown: set[str],
    wanted: set[str],
    ctx: EventContext,
    rule: AlarmRule,
) -> PreferenceChanges:
    """Record the opt-outs between the switches shown and the switches sent back, and
    say which opt-ins are allowed (to be confirmed by the mailbox) or refused.

    Only purposes that were on the page count (`shown`): a purpose configured after
    the page was loaded is not opted out because its switch was never seen.
    """
    current = read_preferences(session, vault, policy, address, ctx.recorded_at)
    if current.erased:
        return PreferenceChanges(refused=tuple(sorted(wanted & shown)))
    opted_out: list[str] = []
    to_confirm: list[str] = []
    refused: list[str] = []
    for choice in current.choices:
        if choice.purpose not in shown:
            continue
        want = choice.purpose in wanted
        if want and not choice.receiving:
            if not current.can_opt_in or opt_in_refused(
                session, vault, address, choice.purpose, ctx.occurred_at
            ):
                refused.append(choice.purpose)
            else:
                to_confirm.append(choice.purpose)
        elif not want and choice.receiving:
            record_consent(session, vault, address, choice.purpose, ConsentStatus.OPTED_OUT, ctx)
            opted_out.append(choice.purpose)
    alarm = None
    if opted_out:
        alarm = note_unsubscribe(session, domain_of(address), ctx.campaign, ctx.recorded_at, rule)
    return PreferenceChanges(tuple(opted_out), tuple(to_confirm), tuple(refused), alarm)
