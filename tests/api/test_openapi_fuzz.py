"""Schemathesis over /openapi.json on a running server, signed in as admin: no 5xx, responses match their schemas.

Bounded (a few examples per operation) so it fits the suite's time. Sign-out routes are left
out (they would end the session the run uses) and so is starting runs (each start is a process).
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.server import ServerProcess

_SKIP = r"^/api/v1/auth/logout|^(/cryptick/v1)?/runnables/.*/start$|^/runs/.*/stop$|^/cryptick/v1/run/.*/stop$"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_no_server_errors_and_responses_match_the_schema(server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(server.http + "/openapi.json").exclude(path_regex=_SKIP)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.http, headers=server.headers, timeout=30, checks=CHECKS)

        try:
            fuzz()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - schemathesis raises exception groups: collect, report all at the end
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc).splitlines()[0:12]}")
    assert not failures, "\n".join(failures)
