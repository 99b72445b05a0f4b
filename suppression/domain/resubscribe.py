"""The re-subscribe rule: when an opt-in may not be recorded.

An erased, complained or opted-out address is never turned back to sendable by
an import, a batch call or a sender key. Only the person's own opt-in (the
preference page) or a staff opt-in with recorded evidence can; and the person's
own opt-in never overrides an erasure or a complaint. The facts are read by the
caller (one subject at a time, or a whole import chunk at once), each only when
the rule reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from suppression.domain.policy import ALL_PURPOSES


class OptInAuthority(StrEnum):
    SUBJECT = "subject"  # the person, on the preference page
    STAFF = "staff"  # staff (a staff or admin key, or the staff pages)
    SENDER = "sender"  # a platform, an import, a batch


class OptInConflict(StrEnum):
    """Why an opt-in may not be recorded; each caller words it for its reader."""

    ERASED = "erased"
    COMPLAINED = "complained"
    OPTED_OUT = "opted_out"
    HASHED_SUPPRESSION = "hashed_suppression"


class OptInFacts(Protocol):
    """What the rule reads of the address, asked in the rule's order."""

    def erased(self) -> bool: ...
    def complained(self) -> bool: ...  # an active complaint block
    def opted_out_before(self) -> bool: ...  # see `overrides_opt_out`
    def hashed_suppression(self) -> bool: ...  # on an imported hashed list


def opt_in_conflict(
    facts: OptInFacts, authority: OptInAuthority, has_evidence: bool
) -> OptInConflict | None:
    """Why this opt-in may not be recorded, or None when it may."""
    staff_ok = authority == OptInAuthority.STAFF and has_evidence
    if staff_ok:
        return None
    if facts.erased():
        return OptInConflict.ERASED
    if facts.complained():
        return OptInConflict.COMPLAINED
    if authority == OptInAuthority.SUBJECT:
        return None
    if facts.opted_out_before():
        return OptInConflict.OPTED_OUT
    if facts.hashed_suppression():
        return OptInConflict.HASHED_SUPPRESSION
    return None


def overrides_opt_out(purpose: str, at: datetime, opt_outs: Mapping[str, datetime]) -> bool:
    """Whether an opt-in of `purpose` at `at` would override one of the subject's
    opt-outs ({purpose: changed_at}): one of the same purpose or of all, or, for
    an opt-in of all, any. An older-dated opt-in changes nothing."""
    if purpose == ALL_PURPOSES:
        times = list(opt_outs.values())
    else:
        times = [opt_outs[p] for p in (purpose, ALL_PURPOSES) if p in opt_outs]
    return any(changed_at <= at for changed_at in times)
