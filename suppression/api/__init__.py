"""The machine API: flask-smorest blueprints per resource."""

from typing import Any

from flask_smorest import Api

from suppression import web
from suppression.api import (
    access_log,
    blocks,
    checks,
    consents,
    destinations,
    health,
    imports,
    inbound_mail,
    inbound_mailgun,
    inbound_postmark,
    inbound_sendgrid,
    inbound_ses,
    relationships,
    rights,
    subjects,
    unsubscribe_links,
)
from suppression.api.openapi import ServicePlugin, describe_configured_fields


def register(api: Api, purposes: tuple[str, ...]) -> None:
    describe_configured_fields(api.ma_plugin, purposes)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API key"}
    )
    api.spec.components.security_scheme(
        "metricsToken",
        {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN, for /metrics"},
    )
    api.spec.components.security_scheme(
        "postmarkBasic",
        {
            "type": "http",
            "scheme": "basic",
            "description": "POSTMARK_WEBHOOK_USERNAME and POSTMARK_WEBHOOK_PASSWORD",
        },
    )
    for module in (
        health,
        consents,
        blocks,
        relationships,
        checks,
        subjects,
        access_log,
        rights,
        imports,
        unsubscribe_links,
        destinations,
        inbound_mail,
        inbound_ses,
        inbound_sendgrid,
        inbound_mailgun,
        inbound_postmark,
    ):
        api.register_blueprint(module.blp)


class ServiceApi(Api):
    """flask-smorest's error shape, with a message on every error (API.md); pages
    get the same errors as HTML. The document states the validation's every rule
    (api/openapi.py)."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, spec_kwargs={"marshmallow_plugin": ServicePlugin()})

    def handle_http_exception(self, error: Any) -> Any:
        if web.is_page_request():
            return web.html_error(error)
        data = getattr(error, "data", None)
        if isinstance(data, dict) and "message" not in data and "messages" in data:
            fields = sorted(_field_names(data["messages"]))
            data["message"] = (
                "Invalid input: " + ", ".join(fields) + "." if fields else "Invalid input."
            )
        elif not isinstance(data, dict) and error.description:
            # werkzeug's own errors (413, 404, 405...) carry their text only here.
            error.data = data = {"message": error.description}
        headers = web.error_headers(error)
        if headers and isinstance(data, dict):
            # A 405's Allow (RFC 9110 requires it) and the like survive the JSON shape.
            data["headers"] = {**headers, **data.get("headers", {})}
        return super().handle_http_exception(error)


def _field_names(messages: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(messages, dict):
        for location, errors in messages.items():
            if isinstance(errors, dict):
                names.update(str(name) for name in errors)
            else:
                names.add(str(location))
    return names
