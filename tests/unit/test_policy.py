"""The decision: sendable or not, and the reason, in API.md's order of precedence."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from suppression.domain.jurisdictions import (
    DEFAULT_REGIMES,
    UNKNOWN,
    CountrySource,
    Jurisdiction,
    Regime,
    RegimeTable,
)
from suppression.domain.policy import (
    ALL_PURPOSES,
    DEFAULT_PURPOSES,
    NEVER_SEEN,
    SENDABLE,
    BlockKind,
    ConsentRecord,
    ConsentStatus,
    Decision,
    EeaPolicy,
    EventAction,
    PolicySettings,
    Reason,
    SubjectState,
    decide,
    denied,
    effective_consent,
    has_implied_consent,
)

NOW = datetime(2026, 11, 29, 14, 10, 42, tzinfo=UTC)
DAY = timedelta(days=1)

DEFAULTS = PolicySettings()
EEA_OPT_IN = PolicySettings(eea_policy=EeaPolicy.OPT_IN)
UNKNOWN_DENY = PolicySettings(regimes=RegimeTable(DEFAULT_REGIMES, unknown=Regime.DENY))
UNKNOWN_OPT_IN = PolicySettings(regimes=RegimeTable(DEFAULT_REGIMES, unknown=Regime.OPT_IN))
SOFT_CA_GB = PolicySettings(soft_opt_in_countries=frozenset({"CA", "GB"}))

OPTED_IN = ConsentRecord(ConsentStatus.OPTED_IN, NOW - 30 * DAY)
OPTED_OUT = ConsentRecord(ConsentStatus.OPTED_OUT, NOW - 30 * DAY)

SEEN_OPTED_IN = SubjectState(consent=OPTED_IN)
SEEN_OPTED_OUT = SubjectState(consent=OPTED_OUT)
ERASED = SubjectState(erased=True)


def where(country: str | None) -> Jurisdiction:
    return Jurisdiction(country, CountrySource.DECLARED if country else None)


def blocked(*kinds: BlockKind, **fields) -> SubjectState:
    return SubjectState(blocks=frozenset(kinds), **fields)


def reason_of(state, country, settings=DEFAULTS) -> Reason | None:
    decision = decide(state, where(country), settings, NOW)
    assert decision.sendable is (decision.reason is None)
    return decision.reason


# --- reason codes --------------------------------------------------------------


def test_reason_codes_are_api_md_codes_in_precedence_order():
    assert [reason.value for reason in Reason] == [
        "invalid",
        "erased",
        "complained",
        "bounced",
        "opted_out",
        "restricted",
        "eea",
        "opt_in_required",
        "unknown_jurisdiction",
    ]


def test_sendable_decision_has_no_reason_code():
    assert Decision(True, None) == SENDABLE
    assert SENDABLE.reason_code is None


@pytest.mark.parametrize("reason", list(Reason))
def test_denied_decision_is_not_sendable_and_carries_the_reason_code(reason):
    decision = denied(reason)
    assert decision == Decision(False, reason)
    assert decision.reason_code == reason.value


def test_default_policy_excludes_eea_and_has_no_soft_opt_in():
    assert DEFAULTS.purposes == DEFAULT_PURPOSES == ("email_marketing", "ad_audiences")
    assert DEFAULTS.eea_policy is EeaPolicy.EXCLUDE
    assert not DEFAULTS.soft_opt_in_countries
    assert DEFAULTS.soft_opt_in_purchase == timedelta(days=730)
    assert DEFAULTS.soft_opt_in_inquiry == timedelta(days=183)
    assert ALL_PURPOSES == "all"


# --- the decision table --------------------------------------------------------

C = ConsentStatus
DECISIONS = [
    # (state, country, policy settings, expected reason or None for sendable)
    # opt-out jurisdictions and unknown: sendable until something says otherwise
    pytest.param(NEVER_SEEN, "US", DEFAULTS, None, id="us-never-seen-sendable"),
    pytest.param(SEEN_OPTED_IN, "US", DEFAULTS, None, id="us-opted-in-sendable"),
    pytest.param(SEEN_OPTED_OUT, "US", DEFAULTS, Reason.OPTED_OUT, id="us-opted-out"),
    pytest.param(NEVER_SEEN, "JP", DEFAULTS, None, id="unlisted-country-sendable"),
    pytest.param(NEVER_SEEN, None, DEFAULTS, None, id="unknown-never-seen-sendable"),
    pytest.param(SEEN_OPTED_IN, None, DEFAULTS, None, id="unknown-opted-in-sendable"),
    pytest.param(SEEN_OPTED_OUT, None, DEFAULTS, Reason.OPTED_OUT, id="unknown-opted-out"),
    # opt-in jurisdictions need a recorded opt-in
    pytest.param(NEVER_SEEN, "GB", DEFAULTS, Reason.OPT_IN_REQUIRED, id="gb-never-seen"),
    pytest.param(SEEN_OPTED_IN, "GB", DEFAULTS, None, id="gb-opted-in-sendable"),
    pytest.param(SEEN_OPTED_OUT, "GB", DEFAULTS, Reason.OPTED_OUT, id="gb-opted-out"),
    pytest.param(NEVER_SEEN, "CA", DEFAULTS, Reason.OPT_IN_REQUIRED, id="ca-never-seen"),
    pytest.param(SEEN_OPTED_IN, "CA", DEFAULTS, None, id="ca-opted-in-sendable"),
    pytest.param(NEVER_SEEN, "AU", DEFAULTS, Reason.OPT_IN_REQUIRED, id="au-never-seen"),
    pytest.param(SEEN_OPTED_IN, "AU", DEFAULTS, None, id="au-opted-in-sendable"),
    pytest.param(NEVER_SEEN, "CH", DEFAULTS, Reason.OPT_IN_REQUIRED, id="ch-never-seen"),
    pytest.param(SEEN_OPTED_IN, "CH", DEFAULTS, None, id="ch-opted-in-sendable"),
    # EEA: excluded by default, even with an opt-in
    pytest.param(NEVER_SEEN, "DE", DEFAULTS, Reason.EEA, id="de-excluded"),
    pytest.param(SEEN_OPTED_IN, "DE", DEFAULTS, Reason.EEA, id="de-opted-in-still-excluded"),
    pytest.param(SEEN_OPTED_IN, "NO", DEFAULTS, Reason.EEA, id="no-opted-in-still-excluded"),
    pytest.param(NEVER_SEEN, "EU", DEFAULTS, Reason.EEA, id="unspecified-eea-excluded"),
    pytest.param(SEEN_OPTED_OUT, "DE", DEFAULTS, Reason.OPTED_OUT, id="de-opted-out"),
    # EEA admitted with a recorded opt-in
    pytest.param(SEEN_OPTED_IN, "DE", EEA_OPT_IN, None, id="eea-policy-opt-in-de-opted-in"),
    pytest.param(
        NEVER_SEEN, "DE", EEA_OPT_IN, Reason.OPT_IN_REQUIRED, id="eea-policy-opt-in-de-no-opt-in"
    ),
    pytest.param(SEEN_OPTED_IN, "EU", EEA_OPT_IN, None, id="eea-policy-opt-in-eu-opted-in"),
    pytest.param(
        NEVER_SEEN, "EU", EEA_OPT_IN, Reason.OPT_IN_REQUIRED, id="eea-policy-opt-in-eu-no-opt-in"
    ),
    pytest.param(
        SEEN_OPTED_OUT, "DE", EEA_OPT_IN, Reason.OPTED_OUT, id="eea-policy-opt-in-de-opted-out"
    ),
    pytest.param(NEVER_SEEN, "US", EEA_OPT_IN, None, id="eea-policy-opt-in-us-unchanged"),
    pytest.param(NEVER_SEEN, "CH", EEA_OPT_IN, Reason.OPT_IN_REQUIRED, id="ch-is-not-eea"),
    pytest.param(NEVER_SEEN, "GB", EEA_OPT_IN, Reason.OPT_IN_REQUIRED, id="gb-is-not-eea"),
    # unknown jurisdiction by policy
    pytest.param(NEVER_SEEN, None, UNKNOWN_DENY, Reason.UNKNOWN_JURISDICTION, id="unknown-deny"),
    pytest.param(
        SEEN_OPTED_IN,
        None,
        UNKNOWN_DENY,
        Reason.UNKNOWN_JURISDICTION,
        id="unknown-deny-even-opted-in",
    ),
    pytest.param(NEVER_SEEN, "US", UNKNOWN_DENY, None, id="unknown-deny-leaves-us-sendable"),
    pytest.param(
        NEVER_SEEN, None, UNKNOWN_OPT_IN, Reason.OPT_IN_REQUIRED, id="unknown-opt-in-no-opt-in"
    ),
    pytest.param(SEEN_OPTED_IN, None, UNKNOWN_OPT_IN, None, id="unknown-opt-in-opted-in"),
    # subject state blocks, in any jurisdiction
    pytest.param(ERASED, "US", DEFAULTS, Reason.ERASED, id="erased"),
    pytest.param(ERASED, None, DEFAULTS, Reason.ERASED, id="erased-unknown"),
    pytest.param(blocked(BlockKind.COMPLAINT), "US", DEFAULTS, Reason.COMPLAINED, id="complained"),
    pytest.param(blocked(BlockKind.HARD_BOUNCE), "US", DEFAULTS, Reason.BOUNCED, id="bounced"),
    pytest.param(
        blocked(BlockKind.RESTRICTION), "US", DEFAULTS, Reason.RESTRICTED, id="restriction"
    ),
    pytest.param(blocked(BlockKind.OBJECTION), "US", DEFAULTS, Reason.RESTRICTED, id="objection"),
    pytest.param(
        blocked(BlockKind.RESTRICTION, consent=OPTED_IN),
        "GB",
        DEFAULTS,
        Reason.RESTRICTED,
        id="restriction-beats-opt-in",
    ),
    pytest.param(
        blocked(BlockKind.OBJECTION, consent=OPTED_IN),
        "GB",
        DEFAULTS,
        Reason.RESTRICTED,
        id="objection-beats-opt-in",
    ),
    pytest.param(
        blocked(BlockKind.COMPLAINT, consent=OPTED_IN),
        "US",
        DEFAULTS,
        Reason.COMPLAINED,
        id="complaint-beats-opt-in",
    ),
    pytest.param(
        blocked(BlockKind.HARD_BOUNCE, consent=OPTED_IN),
        "US",
        DEFAULTS,
        Reason.BOUNCED,
        id="bounce-beats-opt-in",
    ),
]


@pytest.mark.parametrize(("state", "country", "policy", "expected"), DECISIONS)
def test_decide_gives_the_tabled_decision_for_jurisdiction_state_and_policy(
    state, country, policy, expected
):
    decision = decide(state, where(country), policy, NOW)
    assert decision.reason is expected
    assert decision.sendable is (expected is None)


def test_decide_answers_the_shared_sendable_and_denied_decisions():
    assert decide(NEVER_SEEN, where("US"), DEFAULTS, NOW) == SENDABLE
    assert decide(ERASED, where("US"), DEFAULTS, NOW) == denied(Reason.ERASED)


def test_unknown_jurisdiction_is_denied_when_policy_denies_unknown():
    assert decide(NEVER_SEEN, UNKNOWN, UNKNOWN_DENY, NOW) == denied(Reason.UNKNOWN_JURISDICTION)


@pytest.mark.parametrize("source", [*CountrySource, None])
def test_decide_does_not_depend_on_where_the_country_came_from(source):
    jurisdiction = Jurisdiction("DE", source)
    assert decide(SEEN_OPTED_IN, jurisdiction, DEFAULTS, NOW).reason is Reason.EEA


def test_decide_never_answers_invalid():
    reasons = {
        decide(state, where(country), settings, NOW).reason
        for state, country, settings, _ in (p.values for p in DECISIONS)
    }
    assert Reason.INVALID not in reasons


def test_decision_table_covers_every_reason_decide_can_give():
    expected = {p.values[3] for p in DECISIONS}
    assert expected == (set(Reason) - {Reason.INVALID}) | {None}


# --- precedence: when several reasons hold, the first in API.md's list wins ------

# Each subject-state reason, and how to make it hold.
_STATE_REASONS = {
    Reason.ERASED: {"erased": True},
    Reason.COMPLAINED: {"blocks": {BlockKind.COMPLAINT}},
    Reason.BOUNCED: {"blocks": {BlockKind.HARD_BOUNCE}},
    Reason.OPTED_OUT: {"consent": OPTED_OUT},
    Reason.RESTRICTED: {"blocks": {BlockKind.RESTRICTION, BlockKind.OBJECTION}},
}
# Each jurisdiction context, the reasons that hold in it with no opt-in recorded.
_CONTEXTS = {
    "us": ("US", DEFAULTS, []),
    "de-excluded": ("DE", DEFAULTS, [Reason.EEA, Reason.OPT_IN_REQUIRED]),
    "de-opt-in-policy": ("DE", EEA_OPT_IN, [Reason.OPT_IN_REQUIRED]),
    "gb": ("GB", DEFAULTS, [Reason.OPT_IN_REQUIRED]),
    "unknown-deny": (None, UNKNOWN_DENY, [Reason.UNKNOWN_JURISDICTION]),
    "unknown-opt-in": (None, UNKNOWN_OPT_IN, [Reason.OPT_IN_REQUIRED]),
}


def _state_with(reasons) -> SubjectState:
    fields = {"erased": False, "blocks": set(), "consent": None}
    for reason in reasons:
        for name, value in _STATE_REASONS[reason].items():
            fields[name] = fields["blocks"] | value if name == "blocks" else value
    return SubjectState(
        erased=fields["erased"], blocks=frozenset(fields["blocks"]), consent=fields["consent"]
    )


_COMBINATIONS = [
    pytest.param(
        combo,
        context,
        id="+".join(r.value for r in combo) + f"-in-{context}" if combo else f"none-in-{context}",
    )
    for size in range(len(_STATE_REASONS) + 1)
    for combo in itertools.combinations(_STATE_REASONS, size)
    for context in _CONTEXTS
]


@pytest.mark.parametrize(("state_reasons", "context"), _COMBINATIONS)
def test_first_reason_in_api_order_wins(state_reasons, context):
    country, settings, context_reasons = _CONTEXTS[context]
    holding = [*state_reasons, *context_reasons]
    expected = min(holding, key=list(Reason).index) if holding else None
    assert reason_of(_state_with(state_reasons), country, settings) is expected


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        ((), Reason.ERASED),
        (("erased",), Reason.COMPLAINED),
        (("erased", "complaint"), Reason.BOUNCED),
        (("erased", "complaint", "bounce"), Reason.OPTED_OUT),
        (("erased", "complaint", "bounce", "opt_out"), Reason.RESTRICTED),
        (("erased", "complaint", "bounce", "opt_out", "restriction"), Reason.EEA),
    ],
)
def test_precedence_ladder_peels_one_reason_at_a_time(remove, expected):
    state = SubjectState(
        erased="erased" not in remove,
        blocks=frozenset(
            kind
            for name, kind in [
                ("complaint", BlockKind.COMPLAINT),
                ("bounce", BlockKind.HARD_BOUNCE),
                ("restriction", BlockKind.RESTRICTION),
            ]
            if name not in remove
        ),
        consent=None if "opt_out" in remove else OPTED_OUT,
    )
    assert reason_of(state, "DE") is expected


def test_eea_beats_opt_in_required():
    assert reason_of(NEVER_SEEN, "DE") is Reason.EEA


def test_opt_in_required_once_eea_is_admitted():
    assert reason_of(NEVER_SEEN, "DE", EEA_OPT_IN) is Reason.OPT_IN_REQUIRED


# --- soft opt-in (implied consent from a customer relationship) -----------------


def customer(purchase_days_ago=None, inquiry_days_ago=None, consent=None) -> SubjectState:
    return SubjectState(
        consent=consent,
        last_purchase_at=None if purchase_days_ago is None else NOW - purchase_days_ago * DAY,
        last_inquiry_at=None if inquiry_days_ago is None else NOW - inquiry_days_ago * DAY,
    )


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        pytest.param(customer(purchase_days_ago=1), None, id="purchase-yesterday"),
        pytest.param(customer(purchase_days_ago=365), None, id="purchase-a-year-ago"),
        pytest.param(customer(purchase_days_ago=730), None, id="purchase-730-days-ago"),
        pytest.param(
            customer(purchase_days_ago=731), Reason.OPT_IN_REQUIRED, id="purchase-731-days-ago"
        ),
        pytest.param(customer(inquiry_days_ago=1), None, id="inquiry-yesterday"),
        pytest.param(customer(inquiry_days_ago=183), None, id="inquiry-183-days-ago"),
        pytest.param(
            customer(inquiry_days_ago=184), Reason.OPT_IN_REQUIRED, id="inquiry-184-days-ago"
        ),
        pytest.param(
            customer(inquiry_days_ago=365), Reason.OPT_IN_REQUIRED, id="inquiry-a-year-ago"
        ),
        pytest.param(
            customer(purchase_days_ago=800, inquiry_days_ago=10),
            None,
            id="expired-purchase-recent-inquiry",
        ),
        pytest.param(
            customer(purchase_days_ago=100, inquiry_days_ago=400),
            None,
            id="recent-purchase-expired-inquiry",
        ),
        pytest.param(
            customer(purchase_days_ago=800, inquiry_days_ago=400),
            Reason.OPT_IN_REQUIRED,
            id="both-expired",
        ),
        pytest.param(customer(), Reason.OPT_IN_REQUIRED, id="no-relationship"),
        pytest.param(
            customer(purchase_days_ago=1, consent=OPTED_OUT),
            Reason.OPTED_OUT,
            id="opt-out-beats-recent-purchase",
        ),
        pytest.param(
            customer(inquiry_days_ago=1, consent=OPTED_OUT),
            Reason.OPTED_OUT,
            id="opt-out-beats-recent-inquiry",
        ),
    ],
)
@pytest.mark.parametrize("country", ["CA", "GB"])
def test_soft_opt_in_in_listed_countries(state, expected, country):
    assert reason_of(state, country, SOFT_CA_GB) is expected


def test_implied_consent_window_ends_exactly_at_730_days_for_a_purchase():
    at_limit = SubjectState(last_purchase_at=NOW - timedelta(days=730))
    just_past = SubjectState(last_purchase_at=NOW - timedelta(days=730, seconds=1))
    assert reason_of(at_limit, "CA", SOFT_CA_GB) is None
    assert reason_of(just_past, "CA", SOFT_CA_GB) is Reason.OPT_IN_REQUIRED


def test_implied_consent_window_ends_exactly_at_183_days_for_an_inquiry():
    at_limit = SubjectState(last_inquiry_at=NOW - timedelta(days=183))
    just_past = SubjectState(last_inquiry_at=NOW - timedelta(days=183, seconds=1))
    assert reason_of(at_limit, "CA", SOFT_CA_GB) is None
    assert reason_of(just_past, "CA", SOFT_CA_GB) is Reason.OPT_IN_REQUIRED


@pytest.mark.parametrize("country", ["AU", "CH"])
def test_soft_opt_in_does_not_apply_in_unlisted_opt_in_countries(country):
    assert reason_of(customer(purchase_days_ago=1), country, SOFT_CA_GB) is (Reason.OPT_IN_REQUIRED)


@pytest.mark.parametrize("country", ["CA", "GB", "AU", "CH"])
def test_soft_opt_in_never_applies_with_default_settings(country):
    state = customer(purchase_days_ago=1, inquiry_days_ago=1)
    assert reason_of(state, country) is Reason.OPT_IN_REQUIRED


def test_soft_opt_in_does_not_apply_to_an_unknown_jurisdiction():
    settings = replace(UNKNOWN_OPT_IN, soft_opt_in_countries=frozenset({"CA", "GB"}))
    assert reason_of(customer(purchase_days_ago=1), None, settings) is Reason.OPT_IN_REQUIRED


def test_soft_opt_in_does_not_override_eea_exclusion():
    settings = PolicySettings(soft_opt_in_countries=frozenset({"DE"}))
    assert reason_of(customer(purchase_days_ago=1), "DE", settings) is Reason.EEA


def test_soft_opt_in_does_not_override_restriction():
    state = replace(customer(purchase_days_ago=1), blocks=frozenset({BlockKind.OBJECTION}))
    assert reason_of(state, "CA", SOFT_CA_GB) is Reason.RESTRICTED


def test_soft_opt_in_windows_follow_the_settings():
    settings = replace(
        SOFT_CA_GB, soft_opt_in_purchase=timedelta(days=30), soft_opt_in_inquiry=timedelta(0)
    )
    assert reason_of(customer(purchase_days_ago=30), "CA", settings) is None
    assert reason_of(customer(purchase_days_ago=31), "CA", settings) is Reason.OPT_IN_REQUIRED
    assert reason_of(customer(inquiry_days_ago=1), "CA", settings) is Reason.OPT_IN_REQUIRED


@pytest.mark.parametrize(
    ("state", "implied"),
    [
        (customer(), False),
        (customer(purchase_days_ago=730), True),
        (customer(purchase_days_ago=731), False),
        (customer(inquiry_days_ago=183), True),
        (customer(inquiry_days_ago=184), False),
        (customer(purchase_days_ago=731, inquiry_days_ago=183), True),
    ],
)
def test_implied_consent_holds_only_within_the_purchase_or_inquiry_window(state, implied):
    assert has_implied_consent(state, DEFAULTS, NOW) is implied


# --- effective consent: a change to `all` and a change to one purpose -----------

EARLIER = NOW - 10 * DAY
LATER = NOW - 1 * DAY


def test_effective_consent_is_none_without_records():
    assert effective_consent(None, None) is None


def test_effective_consent_uses_the_only_record_there_is():
    purpose = ConsentRecord(C.OPTED_IN, EARLIER)
    everything = ConsentRecord(C.OPTED_OUT, EARLIER)
    assert effective_consent(purpose, None) is purpose
    assert effective_consent(None, everything) is everything


def test_newer_change_to_all_beats_older_purpose_change():
    purpose = ConsentRecord(C.OPTED_IN, EARLIER)
    everything = ConsentRecord(C.OPTED_OUT, LATER)
    assert effective_consent(purpose, everything) is everything


def test_newer_purpose_change_beats_older_change_to_all():
    purpose = ConsentRecord(C.OPTED_IN, LATER)
    everything = ConsentRecord(C.OPTED_OUT, EARLIER)
    assert effective_consent(purpose, everything) is purpose


def test_newer_opt_in_to_all_beats_older_purpose_opt_out():
    purpose = ConsentRecord(C.OPTED_OUT, EARLIER)
    everything = ConsentRecord(C.OPTED_IN, LATER)
    assert effective_consent(purpose, everything) is everything


def test_newer_purpose_opt_out_beats_older_opt_in_to_all():
    purpose = ConsentRecord(C.OPTED_OUT, LATER)
    everything = ConsentRecord(C.OPTED_IN, EARLIER)
    assert effective_consent(purpose, everything) is purpose


@pytest.mark.parametrize(
    ("purpose", "everything", "expected"),
    [
        pytest.param(
            ConsentRecord(C.OPTED_IN, EARLIER),
            ConsentRecord(C.OPTED_OUT, LATER),
            Reason.OPTED_OUT,
            id="later-opt-out-of-all",
        ),
        pytest.param(
            ConsentRecord(C.OPTED_OUT, EARLIER),
            ConsentRecord(C.OPTED_IN, LATER),
            None,
            id="later-opt-in-to-all",
        ),
        pytest.param(
            ConsentRecord(C.OPTED_IN, LATER),
            ConsentRecord(C.OPTED_OUT, EARLIER),
            None,
            id="later-purpose-opt-in",
        ),
        pytest.param(
            ConsentRecord(C.OPTED_OUT, LATER),
            ConsentRecord(C.OPTED_IN, EARLIER),
            Reason.OPTED_OUT,
            id="later-purpose-opt-out",
        ),
    ],
)
def test_decide_with_effective_consent_in_an_opt_in_country(purpose, everything, expected):
    state = SubjectState(consent=effective_consent(purpose, everything))
    assert reason_of(state, "GB") is expected


PURPOSE_RECORDS = {
    ALL_PURPOSES: ConsentRecord(C.OPTED_IN, EARLIER),
    "ad_audiences": ConsentRecord(C.OPTED_OUT, LATER),
}


@pytest.mark.parametrize(
    ("purpose", "country", "expected"),
    [
        ("email_marketing", "GB", None),
        ("ad_audiences", "GB", Reason.OPTED_OUT),
        ("email_marketing", "US", None),
        ("ad_audiences", "US", Reason.OPTED_OUT),
        ("email_marketing", "DE", Reason.EEA),
        ("ad_audiences", "DE", Reason.OPTED_OUT),
    ],
)
def test_opt_out_of_one_purpose_leaves_the_others_to_the_opt_in_to_all(purpose, country, expected):
    consent = effective_consent(PURPOSE_RECORDS.get(purpose), PURPOSE_RECORDS[ALL_PURPOSES])
    assert reason_of(SubjectState(consent=consent), country) is expected


def test_at_the_same_instant_an_opt_out_of_all_beats_a_purpose_opt_in():
    moment = datetime(2026, 5, 1, tzinfo=UTC)
    opted_in = ConsentRecord(ConsentStatus.OPTED_IN, moment)
    opted_out = ConsentRecord(ConsentStatus.OPTED_OUT, moment)
    assert effective_consent(opted_in, opted_out) is opted_out
    assert effective_consent(opted_out, opted_in) is opted_out


def test_deny_is_refused_as_a_regime_for_a_known_country():
    with pytest.raises(ValueError, match="unknown jurisdiction"):
        RegimeTable({"JP": Regime.DENY})
    with pytest.raises(ValueError, match="unknown jurisdiction"):
        RegimeTable({}, unlisted=Regime.DENY)


def test_an_eea_country_stays_opt_in_whatever_the_table_says():
    table = RegimeTable({"DE": Regime.OPT_OUT})
    assert table.regime_for("DE") == Regime.OPT_IN


def test_event_actions_are_the_stored_vocabulary():
    # Stored in consent_events.action and shown in exports: the values never change.
    assert {action.value for action in EventAction} == {
        "opted_in",
        "opted_out",
        "hard_bounce",
        "complaint",
        "restriction",
        "objection",
        "lift_restriction",
        "purchase",
        "inquiry",
        "country_set",
        "erased",
        "restored",
        "complaint_lifted",
    }
    assert {*ConsentStatus, *BlockKind} <= set(EventAction)
