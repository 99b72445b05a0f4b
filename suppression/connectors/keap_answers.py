"""What Keap's answers mean: its REST error body, its email address status, and
its XML-RPC faults. Anything that is not one of Keap's own shapes is taken for a
wrong base URL or route, never for an answer about the address.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

from suppression.connectors.base import (
    AuthError,
    ConfigurationError,
    DestinationError,
    PermanentError,
    RateLimited,
    TransientError,
)

# REST v2 `RestEmailAddressStatus.status` (infusionsoft/keap-sdk sdks/v2/swagger.yml).
# The spec gives the enum without meanings; marketable is read from the names
# (unengaged marketable, single and double opt-in, confirmed), and every other state
# names an opt-out, a bounce, a complaint or a lock. Used only when `opted_in` is
# missing (the spec does not require it).
MARKETABLE = frozenset({"UNENGAGED_MARKETABLE", "SINGLE_OPT_IN", "DOUBLE_OPT_IN", "CONFIRMED"})
NON_MARKETABLE = frozenset(
    {
        "UNENGAGED_NON_MARKETABLE",
        "NON_MARKETABLE",
        "LOCKDOWN",
        "BOUNCE",
        "HARD_BOUNCE",
        "MANUAL",
        "ADMIN",
        "SYSTEM",
        "LIST_UNSUBSCRIBE",
        "FEEDBACK",
        "SPAM",
        "INVALID",
        "DEACTIVATED",
    }
)


def is_keap_error(body: Any) -> bool:
    """Keap's `Error` schema (swagger.yml): `{code: int, message: str, status: str,
    details: [{domain, resource}]}`. An HTML page, an empty body or other JSON is
    not Keap's API answering."""
    if not isinstance(body, dict):
        return False
    code, message, status = body.get("code"), body.get("message"), body.get("status")
    details = body.get("details", [])
    return (
        isinstance(code, int)
        and not isinstance(code, bool)
        and isinstance(message, str)
        and isinstance(status, str)
        and isinstance(details, list)
    )


def is_email_status(body: Any) -> bool:
    """Keap's `RestEmailAddressStatus` (swagger.yml): requires `email` and
    `create_time`; carries `opted_in` (boolean) and `status` (the enum above)."""
    return isinstance(body, dict) and isinstance(body.get("email"), str) and "create_time" in body


def opted_out(body: dict[str, Any]) -> bool | None:
    """Whether the status object shows the address no longer opted in: from
    `opted_in` when present, else from `status`; None when it says neither."""
    opted_in = body.get("opted_in")
    if isinstance(opted_in, bool):
        return not opted_in
    status = body.get("status")
    if status in NON_MARKETABLE:
        return True
    if status in MARKETABLE:
        return False
    return None


# XML-RPC faults ---------------------------------------------------------------
#
# Keap's own SDK (infusionsoft/infusionsoft-php, src/Infusionsoft/Http/
# InfusionsoftSerializer.php) passes faults through untouched, and neither it nor
# Keap's XML-RPC pages list fault codes. The numbering below is the one the
# community Ruby client maps (nateleavitt/infusionsoft, lib/infusionsoft/
# exception_handler.rb): 1 InvalidConfig, 2 InvalidKey, 3 Unexpected, 4 Database,
# 5 RecordNotFound, 6 Loading, 7 NoTableAccess, 8 NoFieldAccess, 9 NoTableFound,
# 10 NoFieldFound, 11 NoFields, 12 InvalidParameter, 13 FailedLoginAttempt,
# 14 NoAccess, 15 FailedLoginAttemptPasswordExpired. Fault strings carry the name
# in brackets ("[InvalidKey]..."), so the text is read too. Keap's gateway answers
# quota violations with HTTP 429 (community.keap.com "Apigee migration update":
# errorcode policies.ratelimit.QuotaViolation); a fault naming a rate limit or
# quota is taken the same way.
_AUTH_CODES = frozenset({2, 7, 8, 13, 14, 15})
_TRANSIENT_CODES = frozenset({3, 4, 6})
_CONFIGURATION_CODES = frozenset({1})
_RATE_WORDS = ("rate limit", "ratelimit", "quota", "throttl", "too many requests")
_AUTH_WORDS = (
    "invalidkey",
    "invalid key",
    "access token",
    "unauthorized",
    "unauthenticated",
    "failedloginattempt",
    "noaccess",
)
_CONFIGURATION_WORDS = ("invalidconfig", "no such handler", "no method matching")
_TRANSIENT_WORDS = ("timeout", "timed out", "temporarily", "try again", "databaseerror")


def fault_error(fault: xmlrpc.client.Fault) -> DestinationError:
    """One XML-RPC fault as a failure kind: throttling, auth, configuration,
    transient, else permanent."""
    code = fault.faultCode if isinstance(fault.faultCode, int) else None
    text = str(fault.faultString)
    lowered = text.lower()
    message = f"Keap: fault {fault.faultCode}: {text}"
    if any(word in lowered for word in _RATE_WORDS):
        return RateLimited(message)
    if code in _AUTH_CODES or any(word in lowered for word in _AUTH_WORDS):
        return AuthError(message)
    if code in _CONFIGURATION_CODES or any(word in lowered for word in _CONFIGURATION_WORDS):
        return ConfigurationError(message + "; check KEAP_BASE_URL and KEAP_METHOD")
    if code in _TRANSIENT_CODES or any(word in lowered for word in _TRANSIENT_WORDS):
        return TransientError(message)
    return PermanentError(message)
