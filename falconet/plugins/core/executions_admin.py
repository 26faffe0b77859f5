"""``execution.Count`` and ``execution.PurgeExecutions``: tasks that look at, or remove, other executions.

Both reach the stored executions through the run context (``ctx.search_executions``,
``ctx.purge_execution``), never through the store. Dates are rendered strings parsed as ISO-8601 instants
(``2025-01-01T00:00:00Z``, an offset, or a naive date-time taken as UTC — what ``now()`` and ``dateAdd``
print); they bound an execution's ``state.startDate``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from falconet.sdk import (
    BOOLEAN, INTEGER, LIST, STRING, Example, FalconetError, is_truthy, Output, parse_instant, Prop, register,
    RunContext, RunnableTask, TaskFailed,
)
from falconet.runtime.kernel.execution import now


def _instant(ctx: RunContext, name: str) -> datetime | None:
    value = ctx.prop(name)
    if value in (None, ""):
        return None
    try:
        return parse_instant(str(value).strip())
    except ValueError as exc:
        raise TaskFailed(f"Invalid {name} '{value}': expected an ISO-8601 date-time") from exc


def _states(ctx: RunContext) -> list[str]:
    raw = ctx.prop("states") or []
    if not isinstance(raw, list):
        raise TaskFailed("states must be a list of execution states")
    return [str(s).upper() for s in raw]


async def _search(ctx: RunContext, **filters: Any) -> list[dict[str, Any]]:
    try:
        return await ctx.search_executions(**filters)
    except FalconetError as exc:  # e.g. an unknown state name
        raise TaskFailed(str(exc)) from exc


#### execution.Count ########################################################################################

@register
class Count(RunnableTask):
    """Count executions per flow since ``startDate`` (until ``endDate``, default now), optionally only in
    ``states``, for the listed ``flows`` ({namespace, flowId}; a listed flow without executions counts 0)
    or the flows of ``namespaces`` (a namespace includes its sub-namespaces), else every flow.

    Each count is kept when ``expression`` (rendered with the variable ``count``) is truthy. Outputs:
    ``results`` — ``[{namespace, flowId, count}]`` of the kept counts — and ``total``, their sum.
    """

    type = "io.kestra.plugin.core.execution.Count"
    aliases = ("io.kestra.core.tasks.executions.Counts", "io.kestra.plugin.core.execution.Counts")
    title = "Count executions per flow and keep the counts matching an expression."
    examples = (
        Example("Count yesterday's executions of a flow and keep the result when there were none.",
                "flows:\n"
                "  - namespace: company.team\n"
                "    flowId: nightly\n"
                "startDate: \"{{ now() | dateAdd(-1, 'DAYS') }}\"\n"
                "expression: \"{{ count == 0 }}\"\n"),
    )
    outputs = {
        "results": Output("list", "The matching flows, each with namespace, flowId and count."),
        "total": Output("integer", "The sum of the counts."),
    }
    props = {
        "flows": Prop(LIST, description="Flows to count: a list of {namespace, flowId}."),
        "namespaces": Prop(LIST, description="Namespaces whose flows are counted (when no flows are given)."),
        "states": Prop(LIST, description="Only executions in one of these states."),
        "startDate": Prop(STRING, required=True, description="Executions started at or after this instant."),
        "endDate": Prop(STRING, description="Executions started at or before this instant (default now)."),
        "expression": Prop(STRING, required=True, dynamic=False,
                           description="Rendered per flow with {{ count }}; the count is kept when truthy."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        start = _instant(ctx, "startDate")
        if start is None:
            raise TaskFailed("startDate is required")
        end = _instant(ctx, "endDate") or now()
        states = _states(ctx)
        counts: dict[tuple[str, str], int] = {}
        flows = ctx.prop("flows")
        if flows:
            if not isinstance(flows, list):
                raise TaskFailed("flows must be a list of {namespace, flowId}")
            for f in flows:
                if not isinstance(f, dict) or not f.get("namespace") or not f.get("flowId"):
                    raise TaskFailed(f"Each flow must have a namespace and a flowId, got {f!r}")
                ns, flow_id = str(f["namespace"]), str(f["flowId"])
                docs = await _search(ctx, namespace=ns, flow_id=flow_id, states=states, start_date=start,
                                     end_date=end)
                counts[(ns, flow_id)] = sum(1 for d in docs if d["namespace"] == ns)
        else:
            namespaces = ctx.prop("namespaces") or [None]
            if not isinstance(namespaces, list):
                raise TaskFailed("namespaces must be a list of namespaces")
            seen: set[str] = set()
            for ns in namespaces:
                for d in await _search(ctx, namespace=None if ns is None else str(ns), states=states,
                                       start_date=start, end_date=end):
                    if d["id"] not in seen:
                        seen.add(d["id"])
                        key = (d["namespace"], d["flowId"])
                        counts[key] = counts.get(key, 0) + 1
        expression = ctx.raw("expression")
        results = []
        for (ns, flow_id), n in sorted(counts.items()):
            if is_truthy(ctx.render(expression, {"count": n})):
                results.append({"namespace": ns, "flowId": flow_id, "count": n})
        return {"results": results, "total": sum(r["count"] for r in results)}


#### execution.PurgeExecutions ##############################################################################

@register
class PurgeExecutions(RunnableTask):
    """Purge terminated executions started before ``endDate`` (and at or after ``startDate``), of a
    ``namespace`` (and its sub-namespaces) or one ``flowId`` of it, optionally only in ``states``.

    For each: the execution document (``purgeExecution``), its logs (``purgeLog``), metrics
    (``purgeMetric``) and internal-storage files (``purgeStorage``) — all true by default. Executions still
    running, this one included, are left alone. Outputs ``executionsCount``, ``logsCount``,
    ``metricsCount``, ``storagesCount`` (files deleted).
    """

    type = "io.kestra.plugin.core.execution.PurgeExecutions"
    aliases = ("io.kestra.core.tasks.storages.Purge", "io.kestra.plugin.core.storage.Purge")
    title = "Purge old executions with their logs, metrics and files."
    examples = (
        Example("Purge the executions (and their logs, metrics and files) older than a month.",
                "endDate: \"{{ now() | dateAdd(-1, 'MONTHS') }}\"\n"
                "states:\n"
                "  - SUCCESS\n"),
    )
    outputs = {
        "executionsCount": Output("integer", "Number of executions purged."),
        "logsCount": Output("integer", "Number of log lines purged."),
        "metricsCount": Output("integer", "Number of metrics purged."),
        "storagesCount": Output("integer", "Number of stored files purged."),
    }
    props = {
        "namespace": Prop(STRING, description="Only executions of this namespace (and its sub-namespaces)."),
        "flowId": Prop(STRING, description="Only executions of this flow (requires namespace)."),
        "startDate": Prop(STRING, description="Executions started at or after this instant."),
        "endDate": Prop(STRING, required=True, description="Executions started at or before this instant."),
        "states": Prop(LIST, description="Only executions in one of these states."),
        "purgeExecution": Prop(BOOLEAN, default=True, description="Delete the execution documents."),
        "purgeLog": Prop(BOOLEAN, default=True, description="Delete the executions' logs."),
        "purgeMetric": Prop(BOOLEAN, default=True, description="Delete the executions' metrics."),
        "purgeStorage": Prop(BOOLEAN, default=True, description="Delete the executions' internal-storage files."),
        "batchSize": Prop(INTEGER, default=100, description="Accepted for compatibility; purging is per execution."),
    }

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        namespace, flow_id = ctx.prop("namespace"), ctx.prop("flowId")
        if flow_id and not namespace:
            raise TaskFailed("You need to set 'namespace' when you set 'flowId'")
        end = _instant(ctx, "endDate")
        if end is None:
            raise TaskFailed("endDate is required")
        docs = await _search(ctx, namespace=namespace or None, flow_id=flow_id or None, states=_states(ctx),
                             start_date=_instant(ctx, "startDate"), end_date=end)
        flags = {"execution": bool(ctx.prop("purgeExecution")), "logs": bool(ctx.prop("purgeLog")),
                 "metrics": bool(ctx.prop("purgeMetric")), "storage": bool(ctx.prop("purgeStorage"))}
        totals = {"executions": 0, "logs": 0, "metrics": 0, "storages": 0}
        skipped = 0
        for doc in docs:
            if doc["id"] == ctx.execution_id:
                continue
            try:
                counts = await ctx.purge_execution(doc["id"], **flags)
            except FalconetError as exc:  # still running: leave it
                skipped += 1
                ctx.logger.debug(str(exc))
                continue
            for k, v in counts.items():
                totals[k] += v
        if skipped:
            ctx.logger.info(f"{skipped} execution(s) not terminated were not purged")
        return {"executionsCount": totals["executions"], "logsCount": totals["logs"],
                "metricsCount": totals["metrics"], "storagesCount": totals["storages"]}
