"""Typed SQLAlchemy 2.0 mappings, one module per resource. No plaintext address
is stored in any table. Importing this package registers every table."""

from suppression.models import destinations  # noqa: F401  (registers its tables)
from suppression.models.alarms import UnsubscribeAlarm, UnsubscribeTally
from suppression.models.core import (
    ApiKey,
    Block,
    ChainHead,
    ConsentEvent,
    ConsentState,
    DecisionInputs,
    Subject,
)
from suppression.models.intake import OneClickIntake
from suppression.models.keap_pull import KeapPullCursor
from suppression.models.opt_in_requests import OptInRequest
from suppression.models.rights import HashedSuppression, ImportRun, PurgeRun
from suppression.models.staff import AccessLogEntry, SignInAttempt, StaffUser

__all__ = [
    "AccessLogEntry",
    "ApiKey",
    "Block",
    "ChainHead",
    "ConsentEvent",
    "ConsentState",
    "DecisionInputs",
    "HashedSuppression",
    "ImportRun",
    "KeapPullCursor",
    "OneClickIntake",
    "OptInRequest",
    "PurgeRun",
    "SignInAttempt",
    "StaffUser",
    "Subject",
    "UnsubscribeAlarm",
    "UnsubscribeTally",
]
