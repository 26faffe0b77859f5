"""First paint of every page with 10,000 executions in the store (seeded directly, see seeded.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import ARTIFACTS, Api
from .seeded import FIRST_PAINT_MS, first_paint, seeded_url  # noqa: F401

FLOW = """id: seeded_0
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "{{ flow.id }}"
"""

PAGES = [
    ("/ui/dashboard", "svg.chart rect"),
    ("/ui/flows", "table tbody tr"),
    ("/ui/executions", "table tbody tr"),
    ("/ui/flows/edit/company.team/seeded_0", ".cm-content .cm-line"),
    ("/ui/flows/edit/company.team/seeded_0/executions", "table tbody tr"),
    ("/ui/executions/company.team/seeded_3/seed000003x", ".page-head .badge"),
    ("/ui/admin/triggers", "table tbody tr, .empty"),
    ("/ui/namespaces", ".ns-tree li"),
    ("/ui/logs", ".glog-row"),
    ("/ui/logs?q=execution%2042&minLevel=ERROR", ".glog-row, .empty"),
    ("/ui/namespaces/edit/company.team", "section[aria-label='Recent executions'] tbody tr"),
    ("/ui/namespaces/edit/company.team/kv", "table tbody tr, .empty"),
    ("/ui/namespaces/edit/company.team/files", ".nsf-tree li"),
]


@pytest.mark.parametrize(("path", "ready"), PAGES)
def test_first_paint_with_10000_executions(page: Any, seeded_url: str, path: str, ready: str) -> None:  # noqa: F811
    Api(seeded_url).put_flow(FLOW)
    fcp, ready_ms = first_paint(page, seeded_url + path, ready)
    record = ARTIFACTS / "first-paint.json"
    data = json.loads(record.read_text()) if record.exists() else {}
    data[path] = {"fcp_ms": fcp, "ready_ms": ready_ms}
    record.write_text(json.dumps(data, indent=1))
    assert fcp <= FIRST_PAINT_MS, (path, fcp, ready_ms)
