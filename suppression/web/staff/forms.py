"""Reading the staff forms: each answers the cleaned values or the errors per
field, in words a person can act on. Nothing is stored before a form is clean."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from suppression.domain.addresses import InvalidAddress, canonicalise_strict
from suppression.domain.jurisdictions import UnknownCountry, normalise_country
from suppression.domain.policy import ALL_PURPOSES
from suppression.domain.sources import STAFF_CHANNELS
from suppression.domain.text import is_storable

MAX_TEXT = 500
UNSTORABLE = (
    "This holds a character that cannot be stored (a NUL byte or a broken character): "
    "type it again, or paste it as plain text."
)
MAX_CLOCK_SKEW = timedelta(minutes=5)
# How the person reached us: stored as the event's source.
CHANNELS = STAFF_CHANNELS


@dataclass
class FormResult:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(form: Mapping[str, str], name: str) -> str:
    return (form.get(name) or "").strip()


def _storable_text(form: Mapping[str, str], name: str, result: FormResult) -> str | None:
    """The field's text, or None with the field's error when it cannot be stored."""
    text = _text(form, name)
    if not is_storable(text):
        result.errors[name] = UNSTORABLE
        return None
    return text


def read_email(form: Mapping[str, str], result: FormResult) -> None:
    raw = _storable_text(form, "email", result)
    if raw is None:
        return
    if not raw:
        result.errors["email"] = "Enter the email address to look up."
        return
    try:
        result.values["email"] = canonicalise_strict(raw)
    except InvalidAddress as exc:
        result.errors["email"] = str(exc)


def read_reason(
    form: Mapping[str, str], result: FormResult, name: str = "reason", required: bool = True
) -> None:
    text = _storable_text(form, name, result)
    if text is None:
        return
    if required and not text:
        result.errors[name] = "Say why: it is kept with the change as its evidence."
    elif len(text) > MAX_TEXT:
        result.errors[name] = f"At most {MAX_TEXT} characters."
    else:
        result.values[name] = text


def read_purpose(form: Mapping[str, str], result: FormResult, purposes: tuple[str, ...]) -> None:
    purpose = _text(form, "purpose")
    if purpose not in (*purposes, ALL_PURPOSES):
        result.errors["purpose"] = "Choose one of the purposes, or all marketing."
    else:
        result.values["purpose"] = purpose


def read_channel(form: Mapping[str, str], result: FormResult) -> None:
    channel = _text(form, "channel")
    if channel not in CHANNELS:
        result.errors["channel"] = "Choose how the person told us."
    else:
        result.values["channel"] = channel


def read_search(form: Mapping[str, str]) -> FormResult:
    result = FormResult()
    read_email(form, result)
    read_reason(form, result, required=False)
    return result


def read_opt_out(form: Mapping[str, str], purposes: tuple[str, ...]) -> FormResult:
    result = FormResult()
    read_purpose(form, result, purposes)
    read_channel(form, result)
    read_reason(form, result)
    return result


def read_opt_in(form: Mapping[str, str], purposes: tuple[str, ...], now: datetime) -> FormResult:
    result = FormResult()
    read_purpose(form, result, purposes)
    read_channel(form, result)
    read_reason(form, result, name="evidence")
    if result.errors.get("evidence") not in (None, UNSTORABLE):
        result.errors["evidence"] = (
            "Describe the evidence: what the person agreed to, when, and how we know."
        )
    given = _text(form, "occurred_at")
    if given:
        try:
            when = datetime.fromisoformat(given)
        except ValueError:
            result.errors["occurred_at"] = "Use the date picker, or YYYY-MM-DDTHH:MM (UTC)."
        else:
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
            if when > now + MAX_CLOCK_SKEW:
                result.errors["occurred_at"] = "Consent cannot have been given in the future."
            else:
                # Not ahead of now: a later opt-out must still be newer (api/presenters.py).
                result.values["occurred_at"] = min(when, now).isoformat()
    # Read after the date, as the page shows them: the first error takes the focus.
    notice = _storable_text(form, "notice_version", result)
    if notice is not None and len(notice) > 100:
        result.errors["notice_version"] = "At most 100 characters."
    elif notice is not None:
        result.values["notice_version"] = notice
    return result


def read_jurisdiction(form: Mapping[str, str]) -> FormResult:
    result = FormResult()
    country = _text(form, "country")
    try:
        result.values["country"] = normalise_country(country)
    except UnknownCountry:
        result.errors["country"] = "Enter a two-letter country code such as US, DE or GB."
    read_reason(form, result)
    return result


# The rights requests staff record on a subject page (GDPR Art. 18 and 21).
RIGHTS_BLOCKS = {
    "restriction": "Restrict processing (Art. 18): no marketing until lifted",
    "objection": "Objection to direct marketing (Art. 21): no marketing, for good",
    "lift_restriction": "Lift the restriction",
}


def read_rights_block(form: Mapping[str, str]) -> FormResult:
    result = FormResult()
    kind = _text(form, "kind")
    if kind not in RIGHTS_BLOCKS:
        result.errors["kind"] = "Choose what the person asked for."
    else:
        result.values["kind"] = kind
    read_reason(form, result)
    return result
