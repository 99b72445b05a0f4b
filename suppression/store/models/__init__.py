"""Typed SQLAlchemy 2.0 mappings, one module per resource. No plaintext address
is stored in any table. Importing this package registers every table."""

from suppression.store.models import destinations  # noqa: F401  (registers its tables)
from suppression.store.models.alarms import UnsubscribeAlarm, UnsubscribeTally
from suppression.store.models.core import (
    ApiKey,
    Block,
    ChainHead,
    ConsentEvent,
    ConsentState,
    DecisionInputs,
    Subject,
)
from suppression.store.models.feedback import FeedbackReceipt
from suppression.store.models.intake import OneClickIntake
from suppression.store.models.keap_pull import KeapPullCursor
from suppression.store.models.opt_in_requests import OptInRequest
from suppression.store.models.rights import HashedSuppression, ImportRun, PurgeRun
from suppression.store.models.staff import AccessLogEntry, SignInAttempt, StaffUser

__all__ = [
    "AccessLogEntry",
    "ApiKey",
    "Block",
    "ChainHead",
    "ConsentEvent",
    "ConsentState",
    "DecisionInputs",
    "FeedbackReceipt",
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
