"""Microsoft, Meta and LinkedIn read as their references say: request types,
every fault shape, throttling and auth codes, app secret proofs, API versions."""

import pytest

from suppression.connectors.base import (
    AuthError,
    Member,
    Operation,
    PermanentError,
    RateLimited,
    TransientError,
)
from suppression.connectors.fakes import Fault, call_rate_exceeded
from suppression.connectors.fakes.microsoft import (
    ad_api_error,
    operation_error,
    wrapped,
)
from suppression.connectors.settings import build_connector, destinations_from_env

BOB = Member(2, "bob@example.com", "eea")


@pytest.fixture
def connect(fakes):
    made = []

    def build(name: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = ()):
        settings_env = {**fakes.environment(), **(env or {})}
        for key in drop:
            settings_env.pop(key, None)
        connector = build_connector(destinations_from_env(settings_env), name)
        made.append(connector)
        return connector

    yield build
    for connector in made:
        connector.close()


# Microsoft -------------------------------------------------------------------


def test_microsoft_sends_the_audience_id_as_a_string(connect, fakes):
    assert connect("microsoft").push(Operation.SUPPRESS, [BOB]).confirmed == {2}
    assert fakes.microsoft.audience_id_types == ["str"]
    (call,) = fakes.microsoft.requests
    assert call.body["CustomerListUserData"]["AudienceId"] == "9000001"


def test_microsoft_wrapped_call_rate_exceeded_pauses_for_sixty_seconds(connect, fakes):
    fakes.microsoft.fail_next(1, call_rate_exceeded())
    with pytest.raises(RateLimited) as caught:
        connect("microsoft").push(Operation.SUPPRESS, [BOB])
    assert caught.value.retry_after == 60


@pytest.mark.parametrize(
    "body",
    [
        wrapped(ad_api_error(117, "CallRateExceeded", "Too many calls.")),
        wrapped(operation_error(117, "CallRateExceeded", "Too many calls.")),
        ad_api_error(117, "CallRateExceeded", "Too many calls."),
        operation_error(117, "CallRateExceeded", "Too many calls."),
    ],
    ids=["ApplicationFault/Errors", "ApplicationFault/OperationErrors", "Errors", "Operation"],
)
def test_microsoft_reads_call_rate_exceeded_in_every_fault_shape(connect, fakes, body):
    fakes.microsoft.fail_next(1, Fault(400, body))
    with pytest.raises(RateLimited, match="117"):
        connect("microsoft").push(Operation.SUPPRESS, [BOB])


@pytest.mark.parametrize("code", [105, 106, 108, 109])
@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.parametrize("shape", ["errors", "operation_errors"])
def test_microsoft_auth_codes_are_auth_errors_whatever_the_status(
    connect, fakes, code, status, shape
):
    fault = (ad_api_error if shape == "errors" else operation_error)(code, "Auth", "Refused.")
    fakes.microsoft.fail_next(1, Fault(status, wrapped(fault)))
    with pytest.raises(AuthError, match=str(code)):
        connect("microsoft").push(Operation.SUPPRESS, [BOB])


def test_microsoft_wrapped_errors_of_other_codes_follow_the_status(connect, fakes):
    fakes.microsoft.fail_next(1, Fault(500, wrapped(operation_error(0, "InternalError", "x"))))
    with pytest.raises(TransientError):
        connect("microsoft").push(Operation.SUPPRESS, [BOB])
    fakes.microsoft.terms_accepted = False
    with pytest.raises(PermanentError, match="8003"):
        connect("microsoft").push(Operation.SUPPRESS, [BOB])


def test_microsoft_public_client_refreshes_without_a_client_secret(connect, fakes):
    connector = connect(
        "microsoft",
        {"MICROSOFT_CLIENT_ID": "ms-client-id", "MICROSOFT_REFRESH_TOKEN": "ms-refresh-0"},
        drop=("MICROSOFT_ACCESS_TOKEN",),
    )
    assert connector.push(Operation.SUPPRESS, [BOB]).confirmed == {2}
    (grant,) = fakes.microsoft.token_requests
    assert grant["grant_type"] == "refresh_token"
    assert grant["client_id"] == "ms-client-id"
    assert "client_secret" not in grant


def test_microsoft_web_app_client_sends_its_secret(connect, fakes):
    fakes.microsoft.client_secret = "ms-web-secret"
    connector = connect(
        "microsoft",
        {
            "MICROSOFT_CLIENT_ID": "ms-client-id",
            "MICROSOFT_CLIENT_SECRET": "ms-web-secret",
            "MICROSOFT_REFRESH_TOKEN": "ms-refresh-0",
        },
        drop=("MICROSOFT_ACCESS_TOKEN",),
    )
    assert connector.push(Operation.SUPPRESS, [BOB]).confirmed == {2}
    (grant,) = fakes.microsoft.token_requests
    assert grant["client_secret"] == "ms-web-secret"
