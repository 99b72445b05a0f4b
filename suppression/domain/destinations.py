"""What a destination must be told about a subject: one rule over the same
decision the checks use (domain.policy.decide).

A CRM that mails (Keap) opts an address out for good: Keap's API cannot undo
most opt-outs, so it hears only the lasting reasons. Ad platforms remove the
person from audiences: removal is cheap to repeat and safe, so they hear every
reason a check for `ad_audiences` would suppress for, except the ones that say
nothing about the person (no opt-in recorded yet, jurisdiction unknown).
"""

from __future__ import annotations

from enum import StrEnum

from suppression.domain.policy import BlockKind, Decision, Reason, SubjectState


class Channel(StrEnum):
    CRM = "crm"  # a mailing CRM: the address is opted out there
    ADS = "ads"  # ad audiences: the person is removed from them


class PushOutcome(StrEnum):
    """What a destination answered to a push (stored as destination_pushes.outcome)."""

    CONFIRMED = "confirmed"  # the platform confirmed the change
    NOT_FOUND = "not_found"  # the platform holds no such address: nothing to change there
    NO_ADDRESS = "no_address"  # the address was erased before it could be pushed


CRM_OPT_OUT_REASONS = frozenset(
    {Reason.ERASED, Reason.COMPLAINED, Reason.BOUNCED, Reason.OPTED_OUT}
)
AD_REMOVAL_REASONS = frozenset(
    {
        Reason.ERASED,
        Reason.COMPLAINED,
        Reason.BOUNCED,
        Reason.OPTED_OUT,
        Reason.RESTRICTED,
        Reason.EEA,
    }
)


def suppression_reason(channel: Channel, decision: Decision, state: SubjectState) -> Reason | None:
    """The reason to push a suppression to a destination of this channel, or None.

    `decision` is decide() for the destination's purpose; `state` is what it was
    decided from (an objection, unlike a restriction, is a lasting CRM opt-out).
    """
    reason = decision.reason
    if decision.sendable or reason is None:
        return None
    if channel == Channel.CRM:
        if reason in CRM_OPT_OUT_REASONS:
            return reason
        if reason == Reason.RESTRICTED and BlockKind.OBJECTION in state.blocks:
            return reason
        return None
    return reason if reason in AD_REMOVAL_REASONS else None
