"""What a page's POST did, carried to the page it redirects to (post/redirect/get):
reloading or going back then repeats nothing, and the answer is a page of its own.

The public pages set no cookie, so the answer travels in the query string: the
kind of answer (`done`), purposes and a mail status, never an address. A GET only
shows it (anyone holding the link could write the same query, and see only that);
what is unknown is dropped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import redirect, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

# The answers each page shows after its redirect.
UNSUBSCRIBED = "unsubscribed"
SAVED = "saved"
ALL_OUT = "all_out"
CONFIRMED = "confirmed"
BLOCKED = "blocked"
ERASED = "erased"
MAIL_STATUSES = ("sent", "queued", "recent", "unavailable")
ANCHOR = "message"


def see(endpoint: str, token: str, done: str, **args: Any) -> Response:
    """303 to the page that shows the answer, at its message."""
    query = {key: value for key, value in args.items() if value not in (None, (), [])}
    location = url_for(endpoint, token=token, done=done, _anchor=ANCHOR, **query)
    return redirect(location, 303)


def answer(args: MultiDict[str, str], kinds: tuple[str, ...]) -> str | None:
    done = args.get("done")
    return done if done is not None and done in kinds else None


def purposes(args: MultiDict[str, str], name: str, known: Iterable[str]) -> tuple[str, ...]:
    allowed = set(known)
    return tuple(dict.fromkeys(p for p in args.getlist(name) if p in allowed))


def mail_status(args: Mapping[str, str]) -> str | None:
    status = args.get("mail")
    return status if status in MAIL_STATUSES else None
