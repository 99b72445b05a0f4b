"""schemathesis against the service's own OpenAPI document, in process (WSGI).

Every operation gets a bounded, derandomized set of generated requests (valid ones
and deliberately invalid ones) sent with an admin key; no answer may be a 5xx, and
every answer must match what /openapi.json says (status code, content type, body
schema). Operations are walked inside one test per generation mode: schemathesis'
own pytest integration does not run under this pytest version."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 15

# The CSV endpoints document a text/csv body: send generated text as it is.
schemathesis.serializer.alias("text/csv", "text/plain")


def _failures(schema, mode: GenerationMode, headers: dict[str, str]) -> list[str]:
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # Nothing to make invalid: an operation without parameters or body.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}: {exc}")
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented_without_server_errors(app, admin, mode):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    assert len(list(schema.get_all_operations())) >= 17
    failures = _failures(schema, mode, admin)
    assert not failures, "\n\n".join(failures)
