"""An undeclared method answers 405 with `Allow` (RFC 9110, section 15.5.6): in the
API's JSON error shape on the API, as the HTML error page on the pages."""

from __future__ import annotations

from collections import defaultdict

from werkzeug.routing import BuildError

from suppression.web import PAGE_PREFIXES

# Not one of these is served on any route.
UNSERVED = ("DELETE", "PUT", "PATCH", "TRACE")


def _routes(app) -> dict[str, set[str]]:
    """Every route's path (its variables filled in) → the methods it serves."""
    adapter = app.url_map.bind("localhost")
    served: dict[str, set[str]] = defaultdict(set)
    for rule in app.url_map.iter_rules():
        method = sorted(rule.methods or ())[0]
        try:
            path = adapter.build(rule.endpoint, dict.fromkeys(rule.arguments, "x"), method=method)
        except (BuildError, ValueError):  # a number in the path
            path = adapter.build(rule.endpoint, dict.fromkeys(rule.arguments, 1), method=method)
        served[path] |= set(rule.methods or ())
    return served


def test_every_route_answers_an_undeclared_method_with_405_and_allow(app, client, admin):
    routes = _routes(app)
    assert len(routes) > 30
    for path, methods in routes.items():
        for method in UNSERVED:
            assert method not in methods, path
            response = client.open(path, method=method, headers=admin)
            assert response.status_code == 405, (path, method)
            allowed = {name.strip() for name in response.headers["Allow"].split(",")}
            assert allowed == methods, (path, method)
            if path.startswith(PAGE_PREFIXES):
                assert response.mimetype == "text/html", path
            else:
                body = response.get_json()
                assert body["code"] == 405, path
                assert body["status"] == "Method Not Allowed"
                assert body["message"]


def test_a_405_on_the_api_names_the_allowed_methods(client, admin):
    response = client.delete("/v1/consents", headers=admin)
    assert response.status_code == 405
    assert sorted(response.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]
    assert response.get_json() == {
        "code": 405,
        "status": "Method Not Allowed",
        "message": "The method is not allowed for the requested URL.",
    }
