"""schemathesis against the live OpenAPI schema: generated requests never get a 5xx or an undocumented reply.

The operations are driven with Hypothesis directly (schemathesis' pytest plugin does not load
under this pytest), a few examples each, so the run stays bounded.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import GAMMA_KEY, LiveServer

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 6


def test_generated_requests_conform_and_never_fail(live: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    failures: dict[str, str] = {}
    labels = []
    for result, mode in itertools.product(list(schema.get_all_operations()), GenerationMode):
        operation = result.ok()
        labels.append(operation.label)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {GAMMA_KEY}"}, timeout=30)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # nothing can be made invalid in this operation (no parameters or body)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's failure, then report them together
            failures[f"{operation.label} ({mode.value})"] = f"{exc.__class__.__name__}: {str(exc)[:1500]}"
    assert "POST /v1/documents" in labels and "POST /v1/query" in labels and len(labels) >= 10
    assert {
        "POST /v1/chat/completions",
        "GET /v1/models",
        "POST /v1/conversations",
        "GET /v1/conversations/{conversation_id}",
        "DELETE /v1/conversations/{conversation_id}",
        "POST /v1/answers/{answer_id}/feedback",
    } <= set(labels)
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
