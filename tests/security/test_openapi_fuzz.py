"""schemathesis against the service's own OpenAPI document, in process (WSGI).

Every operation gets a bounded, derandomized set of generated requests sent with an
admin key, and every answer must match what /openapi.json says (status code,
content type, body schema) without a 5xx:

- valid requests (positive data): each is accepted, 2xx, or the operation's own
  documented 404 or 409 (no such subject, a conflict with what is stored), never
  a 4xx for data the document calls valid: the document states every constraint
  the validation enforces;
- invalid requests (negative data);
- every method the document does not declare for a path: 405 with an `Allow`
  header (RFC 9110), from schemathesis' coverage phase.

Operations are walked inside one test per kind: schemathesis' own pytest
integration does not run under this pytest version."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import CoverageScenario
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from suppression.api.fields import MAX_EVIDENCE_BYTES
from suppression.domain.chain import canonical_json
from suppression.domain.tokens import MAX_CAMPAIGN_BYTES

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 15
# What a valid request may answer besides 2xx, where the operation documents it.
DOCUMENTED_REFUSALS = ("404", "409")
CLOCK_SKEW = timedelta(minutes=5)

# The CSV endpoints document a text/csv body: send generated text as it is.
schemathesis.serializer.alias("text/csv", "text/plain")
# The inbound mail endpoint documents a message/rfc822 body: generated text too.
schemathesis.serializer.alias("message/rfc822", "text/plain")


def _stated_in_words(body: Any, now: datetime) -> bool:
    """Whether a generated body keeps the rules the document can only state in
    its descriptions (OpenAPI 3.0 has no keyword for them): `occurred_at` not
    later than now, a link's `campaign` of at most 100 bytes of UTF-8, and
    `evidence` of at most 16 KB as JSON with no NUL in its keys."""
    if isinstance(body, list):
        return all(_stated_in_words(entry, now) for entry in body)
    if not isinstance(body, dict):
        return True
    occurred_at = body.get("occurred_at")
    if isinstance(occurred_at, str):
        try:
            when = datetime.fromisoformat(occurred_at)
        except ValueError:
            return True  # not a time: the schema's format decides
        if when.tzinfo is not None and when > now + CLOCK_SKEW:
            return False
    campaign = body.get("campaign")
    if isinstance(campaign, str) and len(campaign.encode("utf-8", "surrogatepass")) > (
        MAX_CAMPAIGN_BYTES
    ):
        return False
    evidence = body.get("evidence")
    if isinstance(evidence, dict) and (
        _holds_nul(evidence) or len(canonical_json(evidence)) > MAX_EVIDENCE_BYTES
    ):
        return False
    return all(
        _stated_in_words(body[name], now) for name in ("events", "recipients") if name in body
    )


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _documented_refusals(operation) -> set[int]:
    responses = operation.definition.raw["responses"]
    return {int(code) for code in responses if code in DOCUMENTED_REFUSALS}


def _fuzz(schema, mode: GenerationMode, headers: dict[str, str], now: datetime) -> list[str]:
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            _fuzz_operation(operation, mode, headers, now)
        except Unsatisfiable:
            # Nothing to make invalid: an operation without parameters or body.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except BaseException as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
            if not isinstance(exc, Exception | BaseExceptionGroup):
                raise
            failures.append(f"{operation.label}: {_described(exc)}")
    return failures


def _fuzz_operation(
    operation, mode: GenerationMode, headers: dict[str, str], now: datetime
) -> None:
    positive = mode is GenerationMode.POSITIVE
    refusals = _documented_refusals(operation)
    checks = [*CHECKS, positive_data_acceptance] if positive else CHECKS

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        if positive:
            assume(_stated_in_words(case.body, now))
        response = case.call_and_validate(headers=headers, checks=checks)
        if positive:
            accepted = response.status_code < 300 or response.status_code in refusals
            assert accepted, (
                f"valid request answered {response.status_code}: "
                f"{case.as_curl_command()}\n{response.text[:500]}"
            )

    run()


def _described(exc: BaseException) -> str:
    parts = [str(exc)]
    parts += [str(inner) for inner in getattr(exc, "exceptions", ())]
    return "\n".join(parts)


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented_without_server_errors(app, admin, clock, mode):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    assert len(list(schema.get_all_operations())) >= 17
    failures = _fuzz(schema, mode, admin, clock())
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_every_undeclared_method_answers_405_with_allow(app, admin):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    sent: set[tuple[str, str]] = set()
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        methods: list[str] = []
        for case in schema.iter_coverage_cases(
            operation,
            generation_modes=[GenerationMode.NEGATIVE],
            generation_config=schema.config.generation_for(operation=operation),
        ):
            if case.meta.phase.data.scenario is not CoverageScenario.UNSPECIFIED_HTTP_METHOD:
                if methods:
                    break  # past the methods: the rest of the phase is other mutations
                continue
            methods.append(case.method)
            sent.add((operation.path, case.method))
            try:
                case.call_and_validate(headers=admin, checks=[unsupported_method])
            except BaseException as exc:
                if not isinstance(exc, Exception | BaseExceptionGroup):
                    raise
                failures.append(f"{case.method} {operation.path}: {_described(exc)}")
    assert ("/v1/consents", "DELETE") in sent
    assert ("/healthz", "POST") in sent
    assert len(sent) > 80
    assert not failures, "\n\n".join(failures)
