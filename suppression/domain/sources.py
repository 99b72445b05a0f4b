"""Where a consent change came from (an event's `source`) when it is one of the
service's own channels. Callers may send any source; these are the ones the staff
pages offer and that metrics count by name."""

from __future__ import annotations

# How a person reached us, as staff record it (and API callers often send it too:
# API.md names `email_request` and `phone`); the label is what the form shows.
STAFF_CHANNELS = {
    "email_request": "Email to us",
    "phone": "Phone call",
    "letter": "Letter",
    "in_person": "In person",
    "web_form": "Web or signup form",
    "other": "Other (say how in the reason)",
}
