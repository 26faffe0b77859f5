"""POST /api/v1/flows/validate and POST /api/v1/flows reject broken templates (property and line)."""
from __future__ import annotations

YAML = {"Content-Type": "application/x-yaml"}

BROKEN = """id: broken
namespace: company.team
tasks:
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.x | }}"
"""


async def test_validate_reports_a_broken_template(api):
    status, results = await api.call("POST", "/api/v1/flows/validate", data=BROKEN, headers=YAML)
    assert status == 200
    assert results[0]["constraints"] == ("tasks[0].message: Unable to parse the expression `{{ inputs.x | }}`: "
                                         "unexpected end of expression, expected a name at line 1 (line 6)")


async def test_create_refuses_a_broken_template(api):
    status, body = await api.call("POST", "/api/v1/flows", data=BROKEN, headers=YAML)
    assert status == 422 and "tasks[0].message" in str(body)
    status, _ = await api.call("GET", "/api/v1/flows/company.team/broken")
    assert status == 404
