"""The sync's decisions without a database: what a batch pushes, what the
answers settle, how long failures wait, and what a status read means."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from suppression.connectors.base import (
    Failure,
    FailureKind,
    Member,
    Operation,
    PermanentError,
    PushResult,
    RateLimited,
    RequestStatus,
    TransientError,
)
from suppression.connectors.settings import SyncSettings
from suppression.domain.destinations import Channel, PushOutcome
from suppression.domain.jurisdictions import CountrySource, Jurisdiction
from suppression.domain.policy import ConsentRecord, ConsentStatus, PolicySettings, SubjectState
from suppression.services.destinations.planning import (
    CallFailure,
    PassReport,
    PushPlan,
    ReadAgain,
    RequestFailed,
    RequestSucceeded,
    attempt_limit,
    backoff_seconds,
    keeps_draining,
    plan_batch,
    plan_in_place_retry,
    plan_status_reads,
    rate_limited_until,
    renewed_lease,
    retry_groups,
    settle_answers,
    with_retried,
)
from suppression.services.destinations.push_decisions import Held, SubjectFacts
from suppression.services.destinations.rows import AwaitingRow, ClaimedRow, Done

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
US = Jurisdiction("US", CountrySource.DECLARED)
OPTED_OUT = SubjectState(consent=ConsentRecord(ConsentStatus.OPTED_OUT, NOW))
OPTED_IN = SubjectState(consent=ConsentRecord(ConsentStatus.OPTED_IN, NOW))
SYNC = SyncSettings(max_attempts=5, permanent_attempts=2, backoff_seconds=10)


def facts(vault, subject_id, state, held=None, address="a@example.com"):
    sealed = vault.seal(address) if address else None
    return SubjectFacts(subject_id, sealed, state, US, held)


def plan(vault, rows, by_subject, restores=True, targets="t1"):
    return plan_batch(
        rows, by_subject, vault, PolicySettings(), Channel.ADS, targets, restores, NOW
    )


def test_a_batch_pushes_suppressions_and_restores_and_settles_the_rest(vault):
    rows = [ClaimedRow(i, i, 0) for i in range(1, 7)] + [ClaimedRow(7, 1, 0)]
    by_subject = {
        1: facts(vault, 1, OPTED_OUT),  # to suppress (two rows)
        2: facts(vault, 2, OPTED_OUT, Held(True, "t1")),  # already confirmed there
        3: facts(vault, 3, OPTED_OUT, address=None),  # erased before the push
        4: facts(vault, 4, OPTED_IN, Held(True, "t1")),  # sendable again: restore
        5: facts(vault, 5, OPTED_IN),  # sendable, nothing held
        # 6: the subject is gone
    }
    decided = plan(vault, rows, by_subject)

    assert [(m.key, m.reason) for m in decided.suppress] == [(1, "opted_out")]
    assert decided.suppress[0].email == "a@example.com"
    assert [(m.key, m.reason) for m in decided.restore] == [(4, "sendable")]
    assert [r.id for r in decided.rows[1]] == [1, 7]
    assert decided.done == [
        Done(2, (2,)),
        Done(3, (3,), None, "opted_out", Operation.SUPPRESS, PushOutcome.NO_ADDRESS),
        Done(5, (5,)),
        Done(6, (6,)),
    ]


def test_a_confirmation_to_other_targets_is_pushed_again_and_no_exclusion_list_no_restore(vault):
    rows = [ClaimedRow(1, 1, 0), ClaimedRow(2, 2, 0)]
    by_subject = {
        1: facts(vault, 1, OPTED_OUT, Held(True, "old-targets")),
        2: facts(vault, 2, OPTED_IN, Held(True, "t1")),
    }
    decided = plan(vault, rows, by_subject, restores=False)

    assert [m.key for m in decided.suppress] == [1]
    assert decided.restore == []
    # Sendable and held suppressed: forgotten, so the next suppression is pushed.
    assert decided.done == [Done(2, (2,), suppressed=False)]


def test_calls_are_suppressions_first_in_batches():
    members = [Member(i, f"{i}@example.com", "opted_out") for i in range(5)]
    decided = PushPlan(suppress=members, restore=[Member(9, "9@example.com", "sendable")])

    calls = [(op, [m.key for m in chunk]) for op, chunk in decided.calls(2)]

    assert calls == [
        (Operation.SUPPRESS, [0, 1]),
        (Operation.SUPPRESS, [2, 3]),
        (Operation.SUPPRESS, [4]),
        (Operation.RESTORE, [9]),
    ]


def test_answers_settle_confirmed_not_found_accepted_and_failed_rows():
    decided = PushPlan(
        rows={k: [ClaimedRow(10 * k, k, 1)] for k in (1, 2, 3, 4, 5)},
        done=[Done(6, (60,))],
    )
    suppress = [Member(k, f"{k}@example.com", "bounced") for k in (1, 2, 3, 4)]
    restore = [Member(5, "5@example.com", "sendable")]
    failure = Failure(FailureKind.TRANSIENT, "timeout")
    answered = PushResult(confirmed={1}, not_found={2}, accepted={3: "req-1"})
    answered.fail(4, failure)

    settled = settle_answers(
        decided,
        [
            (Operation.SUPPRESS, suppress, answered),
            (Operation.RESTORE, restore, PushResult.all_confirmed(restore)),
        ],
    )

    assert settled.done == [
        Done(6, (60,)),
        Done(1, (10,), True, "bounced", Operation.SUPPRESS, PushOutcome.CONFIRMED),
        Done(2, (20,), True, "bounced", Operation.SUPPRESS, PushOutcome.NOT_FOUND),
        Done(5, (50,), False, None, Operation.RESTORE, PushOutcome.CONFIRMED),
    ]
    assert [(a.row_ids, a.request_id, a.reason) for a in settled.accepted] == [
        ((30,), "req-1", "bounced")
    ]
    assert settled.failed == {failure: [ClaimedRow(40, 4, 1)]}

    report = PassReport("meta")
    report.count_done(settled.done)
    assert (report.suppressed, report.not_found, report.restored, report.unchanged) == (1, 1, 1, 1)


def test_a_full_batch_without_a_call_failure_keeps_draining():
    member_failure = CallFailure(Failure(FailureKind.PERMANENT, "bad address"))
    outage = CallFailure(Failure(FailureKind.TRANSIENT, "503"))
    assert keeps_draining(100, 100, [member_failure])
    assert not keeps_draining(99, 100, [])
    assert not keeps_draining(100, 100, [outage])
    assert not keeps_draining(100, 100, [CallFailure(member_failure.failure, whole=True)])


def test_backoff_doubles_with_jitter_up_to_its_cap():
    sync = SyncSettings(backoff_seconds=30, backoff_max_seconds=600)
    rng = random.Random(7)
    for attempts in range(1, 10):
        ceiling = min(600, 30 * 2 ** (attempts - 1))
        assert ceiling / 2 <= backoff_seconds(attempts, sync, rng) <= ceiling


def test_attempt_limits_by_kind_of_failure():
    assert attempt_limit(FailureKind.TRANSIENT, SYNC) == 5
    assert attempt_limit(FailureKind.PERMANENT, SYNC) == 2
    assert attempt_limit(FailureKind.CONFIGURATION, SYNC) == 1
    assert attempt_limit(FailureKind.PERMANENT, SyncSettings(max_attempts=1)) == 1


def test_a_429_waits_as_long_as_asked_or_the_default():
    asked = Failure(FailureKind.RATE_LIMITED, "slow down", retry_after=42)
    silent = Failure(FailureKind.RATE_LIMITED, "slow down")
    assert rate_limited_until(asked, SYNC, NOW) == NOW + timedelta(seconds=42)
    assert rate_limited_until(silent, SYNC, NOW) == NOW + timedelta(seconds=60)


def test_failed_rows_retry_with_backoff_until_their_last_attempt_parks_them():
    rows = [ClaimedRow(1, 1, 0), ClaimedRow(2, 2, 3), ClaimedRow(3, 3, 4), ClaimedRow(4, 4, 0)]
    failure = Failure(FailureKind.TRANSIENT, "timeout")

    groups = retry_groups(rows, failure, SYNC, random.Random(1), NOW)

    assert [(g.attempts, g.row_ids) for g in groups] == [(1, (1, 4)), (4, (2,)), (5, (3,))]
    first, fourth, parked = groups
    assert first.available_at is not None
    assert NOW + timedelta(seconds=5) <= first.available_at <= NOW + timedelta(seconds=10)
    assert fourth.available_at is not None
    assert NOW + timedelta(seconds=40) <= fourth.available_at <= NOW + timedelta(seconds=80)
    assert parked.available_at is None


def test_a_failure_that_says_when_to_come_back_is_not_jittered():
    failure = Failure(FailureKind.TRANSIENT, "busy", retry_after=7)
    (group,) = retry_groups([ClaimedRow(1, 1, 0)], failure, SYNC, random.Random(), NOW)
    assert group.available_at == NOW + timedelta(seconds=7)


def awaiting(row_id, subject_id, request_id, operation=Operation.SUPPRESS, at=NOW):
    reason = "opted_out" if operation == Operation.SUPPRESS else None
    return AwaitingRow(row_id, subject_id, 2, request_id, operation, reason, at)


def test_status_reads_settle_each_request_in_order():
    earlier = NOW - timedelta(minutes=5)
    by_request = {
        "done": [
            awaiting(1, 1, "done"),
            awaiting(2, 2, "done", Operation.RESTORE),
            awaiting(3, 3, "done", at=earlier),
        ],
        "busy": [awaiting(4, 4, "busy")],
        "failed": [awaiting(5, 5, "failed")],
        "unknown": [awaiting(6, 6, "unknown")],
    }
    statuses = {
        "done": RequestStatus.succeeded(),
        "busy": RequestStatus.processing(),
        "failed": RequestStatus.failed(Failure(FailureKind.TRANSIENT, "job failed")),
        "unknown": PermanentError("no such job"),
    }

    plan = plan_status_reads(by_request, statuses, SYNC, NOW)

    assert plan.steps == [
        RequestSucceeded(
            NOW,
            (
                Done(1, (1,), True, "opted_out", Operation.SUPPRESS, PushOutcome.CONFIRMED),
                Done(2, (2,), False, None, Operation.RESTORE, PushOutcome.CONFIRMED),
            ),
        ),
        RequestSucceeded(
            earlier,
            (Done(3, (3,), True, "opted_out", Operation.SUPPRESS, PushOutcome.CONFIRMED),),
        ),
        ReadAgain((4,), NOW + timedelta(seconds=SYNC.status_seconds)),
        RequestFailed((ClaimedRow(5, 5, 2),), Failure(FailureKind.TRANSIENT, "job failed")),
        RequestFailed((ClaimedRow(6, 6, 2),), Failure(FailureKind.PERMANENT, "no such job")),
    ]
    assert (plan.suppressed, plan.restored, plan.processing) == (2, 1, 1)
    assert plan.error == "no such job"
    assert not plan.stop
    assert plan.paused_until is None


@pytest.mark.parametrize(
    ("error", "paused"),
    [(RateLimited("slow down", retry_after=90), True), (TransientError("502"), False)],
)
def test_an_unreadable_status_stops_the_reads_and_a_429_pauses(error, paused):
    plan = plan_status_reads({"r": [awaiting(1, 1, "r")]}, {"r": error}, SYNC, NOW)

    at = NOW + timedelta(seconds=90 if paused else SYNC.status_seconds)
    assert plan.steps == [ReadAgain((1,), at, pause=paused)]
    assert plan.stop
    assert plan.error == error.message
    assert plan.paused_until == (at if paused else None)


def test_only_members_that_failed_for_a_passing_reason_are_retried_in_place():
    result = PushResult(confirmed={1})
    result.fail(2, Failure(FailureKind.RATE_LIMITED, "429", retry_after=7))
    result.fail(3, Failure(FailureKind.TRANSIENT, "503"))
    result.fail(4, Failure(FailureKind.PERMANENT, "400"))
    result.fail(5, Failure(FailureKind.AUTH, "401"))
    retry = plan_in_place_retry(result, 1, SyncSettings(backoff_seconds=2), random.Random(1))
    assert retry is not None
    assert retry.keys == {2, 3}
    assert retry.rate_limited
    assert retry.seconds == 7  # the longer of Retry-After and the first backoff (1-2 s)


def test_no_in_place_retry_past_the_setting_or_the_backoff_cap_or_for_a_refusal():
    limited = PushResult()
    limited.fail(1, Failure(FailureKind.RATE_LIMITED, "429", retry_after=30))
    refused = PushResult()
    refused.fail(1, Failure(FailureKind.PERMANENT, "400"))
    sync = SyncSettings(in_place_retries=2, backoff_max_seconds=60)
    rng = random.Random(1)
    assert plan_in_place_retry(limited, 2, sync, rng) is not None
    assert plan_in_place_retry(limited, 3, sync, rng) is None
    assert plan_in_place_retry(limited, 1, SyncSettings(backoff_max_seconds=20), rng) is None
    assert plan_in_place_retry(refused, 1, sync, rng) is None
    assert plan_in_place_retry(limited, 1, SyncSettings(in_place_retries=0), rng) is None


def test_a_retried_member_s_answer_replaces_its_failure():
    first = PushResult(confirmed={1})
    first.fail(2, Failure(FailureKind.TRANSIENT, "503"))
    first.fail(3, Failure(FailureKind.PERMANENT, "400"))
    again = PushResult(confirmed={2})
    merged = with_retried(first, frozenset({2}), again)
    assert merged.confirmed == {1, 2}
    assert set(merged.failures) == {3}


def test_a_lease_is_renewed_only_when_it_would_not_outlast_the_pause():
    sync = SyncSettings(lease_seconds=300, http_timeout_seconds=30)
    until = NOW + timedelta(seconds=300)
    assert renewed_lease(NOW, until, 60, sync) is None
    assert renewed_lease(NOW, until, 200, sync) == NOW + timedelta(seconds=200 + 30 + 300)
