"""Each connector against its fake platform: request shapes, auth, hashing,
batch limits, and how the platform's answers map to failures."""

import hashlib
import json
import xmlrpc.client

import pytest

from suppression.connectors.base import (
    AuthError,
    FailureKind,
    Member,
    Operation,
    PermanentError,
    RateLimited,
    RequestState,
    TransientError,
    redact,
)
from suppression.connectors.fakes import Fault, call_rate_exceeded, resource_exhausted
from suppression.connectors.google import GoogleConfig, GoogleConnector
from suppression.connectors.keap import KeapConfig, KeapConnector, RateLimiter
from suppression.connectors.linkedin import LinkedInConfig, LinkedInConnector
from suppression.connectors.meta import MetaConfig, MetaConnector
from suppression.connectors.microsoft import MicrosoftConfig, MicrosoftConnector
from suppression.connectors.oauth import BearerAuth, MemoryTokenStore, OAuthClient
from suppression.connectors.settings import (
    DestinationConfigError,
    build_connector,
    destinations_from_env,
)

JANE = Member(1, "jane.doe+news@gmail.com", "opted_out")
BOB = Member(2, "bob@example.com", "eea")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def connect(fakes):
    made = []

    def build(name: str, **env: str):
        settings = destinations_from_env({**fakes.environment(), **env})
        connector = build_connector(settings, name)
        made.append(connector)
        return connector

    yield build
    for connector in made:
        connector.close()


# Keap ------------------------------------------------------------------------


def test_keap_rest_patches_the_email_status_with_the_key_header(connect, fakes):
    result = connect("keap").push(Operation.SUPPRESS, [JANE, BOB])
    assert result.confirmed == {1, 2}
    calls = sorted(fakes.keap.requests, key=lambda r: r.path)
    assert [c.method for c in calls] == ["PATCH", "PATCH"]
    assert calls[1].path == "/crm/rest/v2/emailAddresses/jane.doe+news@gmail.com/status"
    assert calls[1].headers["X-Keap-Api-Key"] == fakes.keap.api_key
    assert calls[1].body == {"opted_in": False, "reason": "Suppression service: opted_out"}


def test_keap_says_not_found_for_an_address_it_does_not_hold(connect, fakes):
    fakes.keap.known_only = True
    fakes.keap.contacts.add("bob@example.com")
    result = connect("keap").push(Operation.SUPPRESS, [JANE, BOB])
    assert result.not_found == {1}
    assert result.confirmed == {2}


def test_keap_xmlrpc_sends_opt_out_with_the_address_in_the_body(connect, fakes):
    result = connect("keap", KEAP_METHOD="xmlrpc").push(Operation.SUPPRESS, [BOB])
    assert result.confirmed == {2}
    (call,) = fakes.keap.requests
    assert call.path == "/crm/xmlrpc/v1"
    assert "bob" not in call.path
    params, method = xmlrpc.client.loads(call.body.encode())
    assert method == "APIEmailService.optOut"
    assert params[1:] == ("bob@example.com", "Suppression service: eea")


def test_keap_stops_a_batch_at_the_first_429_and_keeps_the_rest_for_later(connect, fakes):
    fakes.keap.fail_next(1, status=429, headers={"Retry-After": "7"})
    result = connect("keap", KEAP_CONCURRENCY="1").push(Operation.SUPPRESS, [JANE, BOB])
    assert result.confirmed == set()
    assert {f.kind for f in result.failures.values()} == {FailureKind.RATE_LIMITED}
    assert result.failures[1].retry_after == 7
    assert fakes.keap.request_count == 1


def test_keap_refused_key_is_an_auth_failure(connect, fakes):
    result = connect("keap", KEAP_API_KEY="wrong").push(Operation.SUPPRESS, [BOB])
    assert result.failures[2].kind == FailureKind.AUTH


def test_keap_oauth_refresh_tokens_rotate_and_the_new_one_is_kept(fakes):
    store = MemoryTokenStore()
    oauth = OAuthClient(
        fakes.keap.token_url, "keap-client", "keap-secret", "keap-refresh-0", basic_auth=True
    )
    config = KeapConfig(
        bearer=BearerAuth(oauth=oauth), base_url=fakes.keap.base_url, max_requests_per_second=0
    )
    connector = KeapConnector(config, token_store=store)
    try:
        assert connector.push(Operation.SUPPRESS, [BOB]).confirmed == {2}
        first = store.load(oauth.seed)
        assert first is not None
        assert first != "keap-refresh-0"
        fakes.keap.expire_access_tokens()  # a 401: refresh with the rotated token
        assert connector.push(Operation.SUPPRESS, [JANE]).confirmed == {1}
        assert store.load(oauth.seed) not in (None, first)
        assert fakes.keap.refreshes == 2
    finally:
        connector.close()


def test_keap_client_side_rate_limit_spaces_calls():
    now = [0.0]
    slept = []
    limiter = RateLimiter(4, monotonic=lambda: now[0], sleep=slept.append)
    for _ in range(3):
        limiter.wait()
    assert slept == [0.25, 0.5]


# Meta ------------------------------------------------------------------------


def test_meta_deletes_sha256_rows_from_each_audience_with_the_token_in_a_header(connect, fakes):
    fakes.meta.add_audience("23850000000000002")
    connector = connect("meta", META_AUDIENCE_IDS="23850000000000001,23850000000000002")
    result = connector.push(Operation.SUPPRESS, [JANE, BOB])
    assert result.confirmed == {1, 2}
    assert [c.path for c in fakes.meta.requests] == [
        "/v25.0/23850000000000001/users",
        "/v25.0/23850000000000002/users",
    ]
    call = fakes.meta.requests[0]
    assert call.method == "DELETE"
    assert call.headers["Authorization"] == f"Bearer {fakes.meta.access_token}"
    assert "access_token" not in call.path
    assert json.loads(call.body["payload"])["schema"] == "EMAIL_SHA256"
    assert sorted(json.loads(call.body["payload"])["data"]) == sorted(
        [sha("jane.doe+news@gmail.com"), sha("bob@example.com")]
    )
    session = json.loads(call.body["session"])
    assert session["batch_seq"] == 1
    assert session["last_batch_flag"] is True
    assert session["estimated_num_total"] == 2


def test_meta_can_also_remove_from_every_audience_of_the_ad_account(connect, fakes):
    connect("meta", META_AD_ACCOUNT_ID="act_1234567890").push(Operation.SUPPRESS, [BOB])
    assert fakes.meta.requests[-1].path == "/v25.0/act_1234567890/usersofanyaudience"
    assert fakes.meta.account_removed == {sha("bob@example.com")}


def test_meta_bad_token_is_an_auth_error_not_a_retry(connect):
    with pytest.raises(AuthError, match="190"):
        connect("meta", META_ACCESS_TOKEN="expired").push(Operation.SUPPRESS, [BOB])


def test_meta_throttling_is_a_rate_limit_with_the_regain_time(connect, fakes):
    fakes.meta.throttle_next(regain_minutes=3)
    with pytest.raises(RateLimited) as caught:
        connect("meta").push(Operation.SUPPRESS, [BOB])
    assert caught.value.retry_after == 180


def test_meta_blocked_audience_is_permanent_and_5xx_is_transient(connect, fakes):
    blocked = {
        "error": {"code": 100, "error_subcode": 1713230, "message": "Audience Upload Blocked"}
    }
    fakes.meta.fail_next(1, status=400, body=blocked)
    connector = connect("meta")
    with pytest.raises(PermanentError):
        connector.push(Operation.SUPPRESS, [BOB])
    fakes.meta.fail_next(1, status=500, body="oops")
    with pytest.raises(TransientError):
        connector.push(Operation.SUPPRESS, [BOB])


def test_meta_refuses_more_than_10000_rows_a_call(fakes):
    with pytest.raises(DestinationConfigError, match="META_BATCH_SIZE"):
        destinations_from_env({**fakes.environment(), "META_BATCH_SIZE": "10001"})
    connector = MetaConnector(MetaConfig("t", ("1",), batch_size=50_000))
    assert connector.batch_size == 10_000
    connector.close()


# Google ----------------------------------------------------------------------


def test_google_data_manager_removes_hex_hashes_with_its_own_normalisation(connect, fakes):
    result = connect("google", GOOGLE_LOGIN_ACCOUNT_ID="987-654-3210").push(
        Operation.SUPPRESS, [JANE, BOB]
    )
    (call,) = fakes.google.requests
    (request_id,) = fakes.google.accepted
    assert result.accepted == {1: f"datamanager:{request_id}", 2: f"datamanager:{request_id}"}
    assert result.confirmed == set()  # accepted is not done: Google processes it later
    assert call.path == "/v1/audienceMembers:remove"
    assert call.headers["Authorization"] == f"Bearer {fakes.google.access_token}"
    assert call.body["encoding"] == "HEX"
    (destination,) = call.body["destinations"]
    assert destination["operatingAccount"] == {
        "accountType": "GOOGLE_ADS",
        "accountId": "1234567890",
    }
    assert destination["loginAccount"]["accountId"] == "9876543210"
    assert destination["productDestinationId"] == "5550001"
    sent = {
        m["userData"]["userIdentifiers"][0]["emailAddress"] for m in call.body["audienceMembers"]
    }
    assert sent == {sha("janedoe@gmail.com"), sha("bob@example.com")}


def test_google_sends_at_most_ten_destinations_a_request(connect, fakes):
    lists = [str(5550001 + n) for n in range(12)]
    fakes.google.user_lists.update(lists)
    fakes.google.removed.update({u: set() for u in lists})
    connector = connect("google", GOOGLE_USER_LIST_IDS=",".join(lists))
    result = connector.push(Operation.SUPPRESS, [BOB])
    assert [len(c.body["destinations"]) for c in fakes.google.requests] == [10, 2]
    assert result.accepted[2] == "datamanager:" + ",".join(fakes.google.accepted)
    assert connector.request_status(result.accepted[2]).state == RequestState.PROCESSING
    assert connector.request_status(result.accepted[2]).state == RequestState.SUCCEEDED
    assert all(fakes.google.removed[u] == {sha("bob@example.com")} for u in lists)


def test_google_resource_exhausted_is_a_rate_limit_with_its_retry_delay(connect, fakes):
    fakes.google.fail_next(1, resource_exhausted(42))
    with pytest.raises(RateLimited) as caught:
        connect("google").push(Operation.SUPPRESS, [BOB])
    assert caught.value.retry_after == 42


def test_google_ads_api_fallback_runs_a_remove_job_per_user_list(connect, fakes):
    fakes.google.reject_hashes.add(sha("bob@example.com"))
    connector = connect("google", GOOGLE_API="ads_api", GOOGLE_LOGIN_ACCOUNT_ID="999")
    result = connector.push(Operation.SUPPRESS, [JANE, BOB])
    connector.end_pass()
    paths = [c.path for c in fakes.google.requests]
    assert paths == [
        "/v26/customers/1234567890/offlineUserDataJobs:create",
        "/v26/customers/1234567890/offlineUserDataJobs/1:addOperations",
        "/v26/customers/1234567890/offlineUserDataJobs/1:run",
    ]
    add = fakes.google.requests[1]
    assert add.headers["Developer-Token"] == fakes.google.developer_token
    assert add.headers["Login-Customer-Id"] == "999"
    assert add.body["enablePartialFailure"] is True
    assert result.accepted == {1: "ads:1"}  # the Ads API path does not apply the gmail rule
    assert result.failures[2].kind == FailureKind.PERMANENT
    assert fakes.google.removed["5550001"] == set()  # the job runs, then finishes
    assert connector.request_status("ads:1").state == RequestState.PROCESSING
    assert connector.request_status("ads:1").state == RequestState.SUCCEEDED
    assert fakes.google.removed["5550001"] == {sha("jane.doe+news@gmail.com")}


# LinkedIn --------------------------------------------------------------------


def test_linkedin_batch_creates_remove_elements_with_the_versioned_headers(connect, fakes):
    result = connect("linkedin").push(Operation.SUPPRESS, [JANE, BOB])
    assert result.confirmed == {1, 2}
    (call,) = fakes.linkedin.requests
    assert call.path == "/rest/dmpSegments/880001/users"
    assert call.headers["Linkedin-Version"] == "202603"
    assert call.headers["X-Restli-Protocol-Version"] == "2.0.0"
    assert call.headers["X-Restli-Method"] == "BATCH_CREATE"
    assert call.body["elements"][0] == {
        "action": "REMOVE",
        "userIds": [{"idType": "SHA256_EMAIL", "idValue": sha("jane.doe+news@gmail.com")}],
    }


def test_linkedin_judges_each_element_on_its_own(connect, fakes):
    fakes.linkedin.reject_hashes.add(sha("bob@example.com"))
    result = connect("linkedin").push(Operation.SUPPRESS, [JANE, BOB])
    assert result.confirmed == {1}
    assert result.failures[2].kind == FailureKind.PERMANENT


def test_linkedin_exclusion_segment_gets_an_add(connect, fakes):
    fakes.linkedin.add_segment("880002")
    connector = connect("linkedin", LINKEDIN_EXCLUSION_SEGMENT_ID="880002")
    connector.push(Operation.SUPPRESS, [BOB])
    assert fakes.linkedin.added["880002"] == {sha("bob@example.com")}
    connector.push(Operation.RESTORE, [BOB])
    assert fakes.linkedin.removed["880002"] == {sha("bob@example.com")}
    assert connector.restores is True


# Microsoft -------------------------------------------------------------------


def test_microsoft_applies_a_remove_with_its_headers_and_lowercase_hashes(connect, fakes):
    result = connect("microsoft").push(Operation.SUPPRESS, [JANE, BOB])
    assert result.confirmed == {1, 2}
    (call,) = fakes.microsoft.requests
    assert call.path == "/CampaignManagement/v13/CustomerListUserData/Apply"
    headers = call.headers
    assert headers["Authorization"] == f"Bearer {fakes.microsoft.access_token}"
    assert headers["Developertoken"] == fakes.microsoft.developer_token
    assert headers["Customerid"] == "111"
    assert headers["Customeraccountid"] == "222"
    data = call.body["CustomerListUserData"]
    assert data["AudienceId"] == "9000001"
    assert data["ActionType"] == "Remove"
    assert data["CustomerListItemSubType"] == "Email"
    assert data["CustomerListItems"] == [sha("jane.doe+news@gmail.com"), sha("bob@example.com")]


def test_microsoft_partial_errors_fail_only_their_items(connect, fakes):
    fakes.microsoft.reject_hashes.add(sha("jane.doe+news@gmail.com"))
    result = connect("microsoft").push(Operation.SUPPRESS, [JANE, BOB])
    assert result.confirmed == {2}
    assert result.failures[1].kind == FailureKind.PERMANENT
    assert "8005" in result.failures[1].message


def test_microsoft_call_rate_exceeded_waits_sixty_seconds(connect, fakes):
    fakes.microsoft.fail_next(1, call_rate_exceeded())
    with pytest.raises(RateLimited) as caught:
        connect("microsoft").push(Operation.SUPPRESS, [BOB])
    assert caught.value.retry_after == 60


def test_microsoft_terms_not_accepted_is_permanent_unless_accepted_in_settings(connect, fakes):
    fakes.microsoft.terms_accepted = False
    with pytest.raises(PermanentError, match="8003"):
        connect("microsoft").push(Operation.SUPPRESS, [BOB])
    accepted = connect("microsoft", MICROSOFT_ACCEPT_CUSTOMER_MATCH_TERMS="true")
    assert accepted.push(Operation.SUPPRESS, [BOB]).confirmed == {2}


def test_microsoft_allows_at_most_1000_items_a_call(fakes):
    with pytest.raises(DestinationConfigError, match="MICROSOFT_BATCH_SIZE"):
        destinations_from_env({**fakes.environment(), "MICROSOFT_BATCH_SIZE": "1001"})


# Settings and safety ---------------------------------------------------------


def test_an_incomplete_destination_is_a_configuration_error_naming_what_is_missing():
    with pytest.raises(DestinationConfigError, match="GOOGLE_OPERATING_ACCOUNT_ID"):
        destinations_from_env({"GOOGLE_ACCESS_TOKEN": "t", "GOOGLE_USER_LIST_IDS": "1"})
    with pytest.raises(DestinationConfigError, match="META_AUDIENCE_IDS"):
        destinations_from_env({"META_ACCESS_TOKEN": "t"})
    with pytest.raises(DestinationConfigError, match="KEAP_BASE_URL"):
        destinations_from_env({"KEAP_API_KEY": "k", "KEAP_BASE_URL": "ftp://x"})


def test_nothing_is_enabled_without_credentials_and_defaults_are_the_real_platforms():
    settings = destinations_from_env({})
    assert settings.enabled == ()
    keap = destinations_from_env({"KEAP_API_KEY": "k"}).keap
    assert keap.base_url == "https://api.infusionsoft.com/crm"
    meta = destinations_from_env({"META_ACCESS_TOKEN": "t", "META_AUDIENCE_IDS": "1"}).meta
    assert meta.base_url == "https://graph.facebook.com/v25.0"


def test_credentials_never_appear_in_a_settings_repr():
    settings = destinations_from_env(
        {
            "KEAP_API_KEY": "KeapAK-secret-1",
            "META_ACCESS_TOKEN": "meta-secret-2",
            "META_AUDIENCE_IDS": "1",
            "LINKEDIN_CLIENT_ID": "id",
            "LINKEDIN_CLIENT_SECRET": "linkedin-secret-3",
            "LINKEDIN_REFRESH_TOKEN": "linkedin-secret-4",
            "LINKEDIN_SEGMENT_IDS": "5",
        }
    )
    text = repr(settings)
    for secret in ("secret-1", "secret-2", "secret-3", "secret-4"):
        assert secret not in text


def test_messages_are_redacted_of_addresses_and_tokens():
    text = redact("Invalid email jane@example.com at /x/jane%40example.com; Bearer abc.def")
    assert "jane" not in text
    assert "abc.def" not in text
    assert text.count("[address]") == 2


def test_a_connection_refused_is_transient_and_names_no_url(fakes):
    config = GoogleConfig("1", ("2",), BearerAuth(access_token="t"), base_url="http://127.0.0.1:9")
    connector = GoogleConnector(config, timeout=2)
    try:
        with pytest.raises(TransientError) as caught:
            connector.push(Operation.SUPPRESS, [BOB])
    finally:
        connector.close()
    assert caught.value.message == "Google: could not connect"


def test_restore_is_a_no_op_where_there_is_no_exclusion_list(connect, fakes):
    for name in ("keap", "google", "microsoft", "linkedin", "meta"):
        assert connect(name).push(Operation.RESTORE, [BOB]).confirmed == {2}
    assert all(fake.request_count == 0 for fake in fakes.all())


def test_microsoft_and_linkedin_configs_build_their_connectors(fakes):
    ms = MicrosoftConnector(
        MicrosoftConfig(
            "d", "1", "2", ("3",), BearerAuth(access_token="t"), exclusion_audience_id="4"
        )
    )
    li = LinkedInConnector(LinkedInConfig(("5",), BearerAuth(access_token="t")))
    try:
        assert ms.targets == ("customer_list:3", "exclusion:4")
        assert li.targets == ("segment:5",)
    finally:
        ms.close()
        li.close()


def test_a_slow_answer_is_a_timeout(connect, fakes):
    fakes.linkedin.fail_next(1, Fault(201, {"elements": [{"status": 201}]}, delay=1.0))
    with pytest.raises(TransientError, match="no answer"):
        connect("linkedin", SYNC_HTTP_TIMEOUT_SECONDS="0.2").push(Operation.SUPPRESS, [BOB])
