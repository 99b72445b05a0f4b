"""Opening an event's sealed free evidence to show it (lookup, export, staff page).

Evidence is stored sealed (services/consents/events.py): it routinely holds the address
itself. It is opened in memory only, for the person reading it; one sealed with a
key no longer held, or changed behind the service's back, is shown as such
rather than failing the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from suppression.domain.sealing import SealError
from suppression.domain.vault import AddressVault


@dataclass(frozen=True, slots=True)
class OpenedEvidence:
    value: Any = None  # the evidence as recorded (a JSON object); None when there is none
    unreadable: bool = False  # sealed, but no held key opens it


NO_EVIDENCE = OpenedEvidence()
UNREADABLE = OpenedEvidence(unreadable=True)


def open_evidence(vault: AddressVault, sealed: bytes | None) -> OpenedEvidence:
    if sealed is None:
        return NO_EVIDENCE
    try:
        return OpenedEvidence(json.loads(vault.open_evidence(sealed)))
    except SealError:
        return UNREADABLE
