"""The public pages behind links: `/u/<token>`, `/preferences/<token>` and
`/confirm/<token>`, on one blueprint (`public`).

GET and HEAD only ever show a page: mail scanners and link previewers fetch every
link, so they write nothing (the unsubscribe page does not even read the store;
the preference and confirmation pages read it). POST acts: the RFC
8058 one-click body (`List-Unsubscribe=One-Click`, form-encoded or multipart)
answers 200 with a short text body and never redirects; the pages' own forms answer
303 to the page that shows what was done (results.py: post/redirect/get). None sets
a cookie or needs a login or a CSRF token, because the token in the URL is the
credential. A bad, changed or expired
token answers 400 with a page that says how else to opt out, and records nothing.

Each token opens what its kind allows (domain/tokens.py): the unsubscribe token of
the `List-Unsubscribe` header only opts out; the preference token of the mail's
body opens the preference page, where switching a purpose back on only sends a
confirmation mail to the address; the confirmation link in that mail records the
opt-in, with the evidence of both steps.

- blueprint.py: the blueprint, its error pages, and what every page reads from its link;
- unsubscribe_pages.py: `/u/<token>`, the page and the RFC 8058 one-click;
- preference_pages.py: `/preferences/<token>` and the double opt-in's `/confirm/<token>`;
- results.py: what a form did, carried in the query of its redirect.
"""

from __future__ import annotations

from flask import Flask

from suppression.app import current
from suppression.domain.purposes import purpose_label
from suppression.web import ratelimit
from suppression.web.public import preference_pages, unsubscribe_pages
from suppression.web.public.blueprint import blp

__all__ = ["install", "preference_pages", "unsubscribe_pages"]


def install(app: Flask) -> None:
    """Register the pages and their rate limits (a Limiter of this app's own)."""
    app.register_blueprint(blp)
    state = current.of(app)
    app.jinja_env.globals.setdefault("purpose_label", purpose_label)
    one_click = f"{blp.name}.{unsubscribe_pages.unsubscribe_post.__name__}"
    ratelimit.install(app, blp, state.settings, one_click_endpoint=one_click)
