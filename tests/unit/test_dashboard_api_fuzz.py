"""The dashboard's JSON API fuzzed from its own OpenAPI description (schemathesis): no
request, however odd, gets a 5xx. The engine is the scripted one of the unit tests (no
container runs: the status shows every service absent); actions that pass validation run
against it, and maintenance really writes its flag in the test's infra."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from plano.dashboard.app import HOSTS, create_app
from plano.ops import access
from tests.cli.test_dry_runs import infra as dry_infra  # noqa: F401 (a fixture)
from tests.unit.test_dashboard import engine

EXAMPLES = 30  # per operation


def test_no_request_to_the_api_gets_a_server_error(dry_infra):  # noqa: F811
    app = create_app(dry_infra, runner=engine, hosts=(*HOSTS, "testserver"))
    headers = {"Authorization": f"Bearer {access.make_token(dry_infra, 'fuzz', 'operator')}"}
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, headers=headers)
    seen = []
    for found in schema.get_all_operations():
        operation = found.ok()
        seen.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case):
            case.call_and_validate(headers=headers, checks=[not_a_server_error])
            app.state.board.jobs.wait(30)

        fuzz()
    assert sorted(seen) == ["GET /api/apps/{app_name}/releases", "GET /api/jobs/{job_id}", "GET /api/status",
                            "GET /api/traffic", "GET /api/usage",
                            "POST /api/apps/{app_name}/backup", "POST /api/apps/{app_name}/backups/{backup_id}/verify",
                            "POST /api/apps/{app_name}/deploy", "POST /api/apps/{app_name}/maintenance",
                            "POST /api/apps/{app_name}/rollback"]
