"""Microsoft, Meta and LinkedIn read as their references say: request types,
every fault shape, throttling and auth codes, app secret proofs, API versions."""

import hashlib
import hmac
from datetime import date

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
from suppression.connectors.settings import (
    DestinationConfigError,
    build_connector,
    destinations_from_env,
)

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


# Meta ------------------------------------------------------------------------


def _graph_error(code: int, kind: str = "OAuthException", subcode: int | None = None) -> dict:
    error = {"message": f"(#{code}) refused", "type": kind, "code": code, "fbtrace_id": "A"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def test_meta_sends_the_appsecret_proof_the_app_requires(connect, fakes):
    fakes.meta.app_secret = "meta-app-secret"
    connector = connect("meta")
    assert connector.push(Operation.SUPPRESS, [BOB]).confirmed == {2}
    (call,) = fakes.meta.requests
    expected = hmac.new(b"meta-app-secret", b"meta-test-token", hashlib.sha256).hexdigest()
    assert call.body["appsecret_proof"] == expected


def test_meta_without_the_app_secret_is_refused_where_the_app_requires_it(connect, fakes):
    fakes.meta.app_secret = "meta-app-secret"
    with pytest.raises(PermanentError, match="appsecret_proof"):
        connect("meta", drop=("META_APP_SECRET",)).push(Operation.SUPPRESS, [BOB])
    with pytest.raises(PermanentError, match="Invalid appsecret_proof"):
        connect("meta", {"META_APP_SECRET": "not-the-secret"}).push(Operation.SUPPRESS, [BOB])
    assert fakes.meta.removed == {"23850000000000001": set()}


def test_meta_sends_no_proof_without_an_app_secret(connect, fakes):
    assert connect("meta").push(Operation.SUPPRESS, [BOB]).confirmed == {2}
    (call,) = fakes.meta.requests
    assert "appsecret_proof" not in call.body


def test_meta_app_secret_is_never_part_of_a_settings_repr(fakes):
    fakes.meta.app_secret = "meta-app-secret-1"
    settings = destinations_from_env(fakes.environment())
    assert settings.meta.app_secret == "meta-app-secret-1"
    assert "meta-app-secret-1" not in repr(settings)
    assert hash(settings) == hash(destinations_from_env(fakes.environment()))


@pytest.mark.parametrize("code", [4, 17, 32, 341, 613, 80000, 80003, 80004, 80014])
def test_meta_throttling_codes_are_rate_limits_even_as_oauth_exceptions(connect, fakes, code):
    fakes.meta.fail_next(1, Fault(400, _graph_error(code)))
    with pytest.raises(RateLimited, match=str(code)):
        connect("meta").push(Operation.SUPPRESS, [BOB])


@pytest.mark.parametrize(
    ("code", "subcode", "expected"),
    [
        (190, 463, AuthError),
        (102, None, AuthError),
        (10, None, AuthError),
        (200, None, AuthError),
        (1, None, TransientError),
        (2, None, TransientError),
        (100, None, PermanentError),
        (368, None, PermanentError),
    ],
)
def test_meta_oauth_exceptions_are_judged_by_their_code(connect, fakes, code, subcode, expected):
    fakes.meta.fail_next(1, Fault(400, _graph_error(code, subcode=subcode)))
    with pytest.raises(expected):
        connect("meta").push(Operation.SUPPRESS, [BOB])


# LinkedIn --------------------------------------------------------------------

TODAY = date(2026, 12, 4)


def linkedin_settings(fakes, version: str, today: date = TODAY):
    return destinations_from_env({**fakes.environment(), "LINKEDIN_VERSION": version}, today)


@pytest.mark.parametrize(
    ("version", "months"), [("202512", 12), ("202511", 13), ("202206", 54), ("202411.01", 25)]
)
def test_linkedin_version_older_than_a_year_is_a_warning(fakes, version, months):
    warning = linkedin_settings(fakes, version).warnings["linkedin"]
    assert f"LINKEDIN_VERSION {version} is {months} months old" in warning


@pytest.mark.parametrize("version", ["202601", "202603", "202612"])
def test_linkedin_version_within_its_year_is_no_warning(fakes, version):
    assert linkedin_settings(fakes, version).warnings == {}


def test_linkedin_version_warning_follows_the_clock(fakes):
    assert linkedin_settings(fakes, "202603", date(2027, 2, 28)).warnings == {}
    assert "linkedin" in linkedin_settings(fakes, "202603", date(2027, 3, 1)).warnings


def test_linkedin_version_warning_only_for_an_enabled_linkedin(fakes):
    env = {**fakes.environment(), "LINKEDIN_VERSION": "202206", "LINKEDIN_ENABLED": "false"}
    assert destinations_from_env(env, TODAY).warnings == {}


@pytest.mark.parametrize("version", ["2026-03", "20260301", "202613", "v202603", "latest"])
def test_linkedin_version_must_be_yyyymm(fakes, version):
    with pytest.raises(DestinationConfigError, match="LINKEDIN_VERSION must be"):
        linkedin_settings(fakes, version)


def test_linkedin_defaults_are_the_documented_version_and_our_batch(fakes):
    env = {k: v for k, v in fakes.environment().items() if k != "LINKEDIN_VERSION"}
    config = destinations_from_env(env, TODAY).linkedin
    assert (config.version, config.batch_size) == ("202603", 5_000)


@pytest.fixture
def sunset_linkedin_version(destination_env):
    """A version years past LinkedIn's window, set before the app is built."""
    destination_env["LINKEDIN_VERSION"] = "202206"


def test_an_old_linkedin_version_is_logged_at_start(sunset_linkedin_version, caplog, app):
    records = caplog.get_records("setup")  # the app is built while the test is set up
    warnings = [r for r in records if r.name == "suppression.destinations"]
    assert [r.levelname for r in warnings] == ["WARNING"]
    assert "destination linkedin: LINKEDIN_VERSION 202206 is" in warnings[0].getMessage()


def test_an_old_linkedin_version_shows_in_the_destination_status(
    sunset_linkedin_version, client, admin
):
    listing = {item["name"]: item for item in client.get("/v1/destinations", headers=admin).json}
    assert "LINKEDIN_VERSION 202206 is" in listing["linkedin"]["warning"]
    assert listing["meta"]["warning"] is None
