"""The fake Keap's status list, read back by the service (connectors/keap_pull.py).

Source of every rule here: infusionsoft/keap-sdk, sdks/v2/swagger.yml,
`GET /rest/v2/emailAddresses` (listEmailAddressStatuses) and its schemas
ListEmailAddressStatusResponse and RestEmailAddressStatus."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

LIST_PATH = "/crm/rest/v2/emailAddresses"
# swagger.yml RestEmailAddressStatus.status: the enum, and which of them are marketable
# (the marketable ones are the states PATCH opted_in=true reaches or keeps).
MARKETABLE = frozenset({"UNENGAGED_MARKETABLE", "SINGLE_OPT_IN", "DOUBLE_OPT_IN", "CONFIRMED"})
STATUSES = MARKETABLE | {
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
# swagger.yml page_size: maximum 1000, minimum 0.
MAX_PAGE_SIZE = 1000
# swagger.yml order_by: one of these fields, then asc or desc.
ORDER_FIELDS = ("email", "status", "create_time")


def list_page(
    statuses: Mapping[str, tuple[str, datetime]], query: Mapping[str, str]
) -> dict[str, Any]:
    """One page of ListEmailAddressStatusResponse for the listing's query parameters
    (filter, page_size, order_by, page_token); ValueError names a bad one."""
    wanted = _filter(query.get("filter", ""))
    size = _page_size(query.get("page_size"))
    field, descending = _order(query.get("order_by"))
    start = _offset(query.get("page_token"))
    rows = [
        _status_entry(email, status, at)
        for email, (status, at) in statuses.items()
        if wanted(email, status)
    ]
    rows.sort(key=lambda row: (row[field], row["email"]), reverse=descending)
    body: dict[str, Any] = {"email_addresses": rows[start : start + size]}
    if start + size < len(rows):
        body["next_page_token"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return body


def _status_entry(email: str, status: str, at: datetime) -> dict[str, Any]:
    return {
        "email": email,
        "opted_in": status in MARKETABLE,
        "status": status,
        "create_time": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def _filter(text: str) -> Callable[[str, str], bool]:
    """swagger.yml filter: fields `emails` (set), `statuses` (set), `opted_in`
    (boolean), each with `==`; several are joined by `;` (as the other list
    operations' examples show)."""
    emails: set[str] | None = None
    statuses: set[str] | None = None
    opted_in: bool | None = None
    for part in filter(None, text.split(";")):
        name, sep, value = part.partition("==")
        if not sep:
            raise ValueError(f"Invalid filter {part!r}: use field==value")
        values = {v.strip() for v in value.split(",") if v.strip()}
        if name == "emails":
            emails = values
        elif name == "statuses":
            unknown = values - STATUSES
            if unknown:
                raise ValueError(f"Invalid status {sorted(unknown)[0]}")
            statuses = values
        elif name == "opted_in":
            if value not in ("true", "false"):
                raise ValueError("opted_in must be true or false")
            opted_in = value == "true"
        else:
            raise ValueError(f"Invalid filter field {name!r}")

    def wanted(email: str, status: str) -> bool:
        return (
            (emails is None or email in emails)
            and (statuses is None or status in statuses)
            and (opted_in is None or (status in MARKETABLE) == opted_in)
        )

    return wanted


def _page_size(text: str | None) -> int:
    if text is None:
        return MAX_PAGE_SIZE
    if not text.isdigit() or int(text) > MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 0..{MAX_PAGE_SIZE}")
    return int(text) or MAX_PAGE_SIZE


def _order(text: str | None) -> tuple[str, bool]:
    if not text:
        return "email", False
    field, _, direction = text.strip().partition(" ")
    if field not in ORDER_FIELDS or direction.strip() not in ("", "asc", "desc"):
        raise ValueError(f"Invalid order_by {text!r}")
    return field, direction.strip() == "desc"


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except ValueError:
        raise ValueError("Invalid page_token") from None
