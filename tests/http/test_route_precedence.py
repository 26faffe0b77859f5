"""Static path segments win over parameters: every Kestra path reaches its own handler, under both
``/api/v1`` and ``/api/v1/main`` (e.g. ``POST /flows/import`` is the import, never "replace the flows of
namespace ``import``")."""
from __future__ import annotations

# (method, path under /api/v1, endpoint)
ROUTES = [
    ("GET", "/executions/E/graph", "executions_views.execution_graph"),
    ("POST", "/executions/E/eval/T", "executions_views.evaluate"),
    ("POST", "/executions/E/actions/eval", "executions_views.evaluate"),
    ("GET", "/executions/flows/ns/f", "executions_views.execution_flow"),
    ("GET", "/executions/namespaces", "executions_views.executable_namespaces"),
    ("GET", "/executions/namespaces/ns/flows", "executions_views.executable_flows"),
    ("POST", "/executions/latest", "executions_views.latest_executions"),
    ("GET", "/executions/export/by-query/csv", "executions_views.export_csv"),
    ("POST", "/executions/E/resume/validate", "executions_views.validate_resume"),
    ("GET", "/executions/E/follow-dependencies", "executions_views.follow_dependencies"),
    ("POST", "/executions/E/replay-with-inputs", "executions_views.replay_with_inputs"),
    ("POST", "/executions/E/actions/replay-with-inputs", "executions_views.replay_with_inputs"),
    ("POST", "/executions/E/resume-from-breakpoint", "executions_views.resume_from_breakpoint"),
    ("GET", "/executions/search", "executions.search_executions"),
    ("DELETE", "/executions/by-query", "executions.bulk_delete_by_query"),
    ("DELETE", "/executions/by-ids", "executions.bulk_delete"),
    ("DELETE", "/executions/kill/by-query", "executions.bulk_kill_by_query"),
    ("POST", "/executions/restart/by-query", "executions.bulk_restart_by_query"),
    *[("POST", f"/executions/{action}/{by}", f"executions_bulk.{view}")
      for action, view in [("pause", "pause"), ("resume", "resume"), ("replay", "replay"),
                           ("change-status", "change_status"), ("unqueue", "unqueue"), ("force-run", "force_run")]
      for by in ("by-ids", "by-query")],
    ("POST", "/executions/labels/by-ids", "executions_bulk.labels_by_ids"),
    ("POST", "/executions/labels/by-query", "executions_bulk.labels_by_query"),
    ("GET", "/flows/ns/f/graph", "flows_more.graph"),
    ("POST", "/flows/graph", "flows_more.graph_of_source"),
    ("GET", "/flows/ns/f/dependencies", "flows_more.dependencies"),
    ("PATCH", "/flows/ns/f/t", "flows_more.update_task"),
    ("POST", "/flows/validate/task", "flows_more.validate_task"),
    ("POST", "/flows/validate/trigger", "flows_more.validate_trigger"),
    ("POST", "/flows/validate", "flows.validate"),
    ("POST", "/flows/import", "flows_more.import_flows"),
    ("POST", "/flows/export/by-ids", "flows_more.export_by_ids"),
    ("GET", "/flows/export/by-query", "flows_more.export_by_query"),
    ("DELETE", "/flows/delete/by-query", "flows_more.delete_by_query"),
    ("DELETE", "/flows/delete/by-ids", "flows.delete_by_ids"),
    ("POST", "/flows/enable/by-ids", "flows_more.enable_by_ids"),
    ("POST", "/flows/enable/by-query", "flows_more.enable_by_query"),
    ("POST", "/flows/disable/by-ids", "flows_more.disable_by_ids"),
    ("POST", "/flows/disable/by-query", "flows_more.disable_by_query"),
    ("POST", "/flows/bulk", "flows.bulk_update"),
    ("GET", "/flows/search", "flows.search_flows"),
    ("GET", "/flows/source", "flows.search_sources"),
    ("GET", "/flows/distinct-namespaces", "flows.distinct_namespaces"),
    ("POST", "/triggers/ns/f/t/unlock", "triggers_bulk.unlock"),
    ("POST", "/triggers/unlock/by-triggers", "triggers_bulk.unlock_by_triggers"),
    ("POST", "/triggers/unlock/by-query", "triggers_bulk.unlock_by_query"),
    ("POST", "/triggers/ns/f/t/restart", "triggers_bulk.restart"),
    ("DELETE", "/triggers/ns/f/t", "triggers_bulk.delete"),
    ("DELETE", "/triggers/delete/by-triggers", "triggers_bulk.delete_by_triggers"),
    ("DELETE", "/triggers/delete/by-query", "triggers_bulk.delete_by_query"),
    *[("POST", f"/triggers/backfill/{action}/by-triggers", "triggers_bulk.backfill_by_triggers")
      for action in ("pause", "unpause", "delete")],
    *[("POST", f"/triggers/backfill/{action}/by-query", "triggers_bulk.backfill_by_query")
      for action in ("pause", "unpause", "delete")],
    ("POST", "/triggers/set-disabled/by-query", "triggers_bulk.set_disabled_by_query"),
    ("POST", "/triggers/set-disabled/by-triggers", "triggers.set_disabled_by_triggers"),
    ("GET", "/triggers/export/by-query/csv", "triggers_bulk.export_csv"),
    ("GET", "/triggers/search", "triggers.search_triggers"),
    ("GET", "/kv", "kv.list_all_keys"),
    ("GET", "/namespaces/ns/kv/inheritance", "kv.list_keys_with_inheritance"),
    ("GET", "/namespaces/ns/kv", "kv.list_keys"),
    ("GET", "/logs/search", "logs.search_logs"),
    ("POST", "/dashboards/charts/preview", "dashboards.preview_chart"),
    ("POST", "/dashboards/validate", "dashboards.validate_dashboard"),
    ("POST", "/dashboards/validate/chart", "dashboards.validate_chart"),
    ("POST", "/dashboards/D/charts/C", "dashboards.chart_data"),
    ("POST", "/dashboards/D/charts/C/export/to-csv", "dashboards.export_chart_csv"),
    ("POST", "/dashboards/charts/export/to-csv", "dashboards.export_preview_csv"),
    ("GET", "/dashboards", "dashboards.search_dashboards"),
]


async def test_each_kestra_path_reaches_its_own_handler(app):
    adapter = app.url_map.bind("localhost")
    wrong = []
    for method, path, endpoint in ROUTES:
        for prefix, name in (("/api/v1", endpoint), ("/api/v1/main", f"main_{endpoint}")):
            got = adapter.match(prefix + path, method=method)[0]
            if got != name:
                wrong.append((method, prefix + path, got, name))
    assert wrong == []


async def test_import_is_not_a_namespace_update(api, form):
    data, headers = form(files=[("fileUpload", "f.yaml", b"id: a\nnamespace: n\ntasks:\n  - id: t\n"
                                                         b"    type: io.kestra.plugin.core.log.Log\n    message: m\n")])
    status, body = await api.call("POST", "/api/v1/flows/import", data=data, headers=headers)
    assert status == 200 and body == []
    assert await api.engine.get_flow("n", "a") is not None
