"""Flow dependencies (Kestra's ``FlowTopology``): which flow starts which.

Two relations, as in Kestra: ``FLOW_TASK`` — an executable task (``Subflow``, ``ForEachItem``: its class
declares ``executable``) of flow A names flow B (A → B); ``FLOW_TRIGGER`` — a trigger of flow B names flow
A among its ``upstream_flows`` (the ``Flow`` trigger's ``ExecutionFlow`` conditions and
``preconditions.flows``) (A → B). Names given as expressions cannot be resolved statically and make no
edge. Pure functions of parsed :class:`~falconet.runtime.flow.model.Flow` objects.
"""
from __future__ import annotations

from typing import Any, Iterable

from falconet.runtime.flow.model import Flow
from falconet.sdk.plugin import FlowableTask, Trigger

__all__ = ["edges", "namespace_graph", "node"]

TENANT = "main"


def node(namespace: str, flow_id: str) -> dict[str, Any]:
    """Kestra's ``FlowNode``: ``uid`` is tenant, namespace and id joined by ``_``."""
    return {"uid": f"{TENANT}_{namespace}_{flow_id}", "tenantId": TENANT, "namespace": namespace, "id": flow_id}


def _static(value: Any) -> str | None:
    return value if isinstance(value, str) and value and "{{" not in value and "{%" not in value else None


def edges(flows: Iterable[Flow]) -> list[tuple[tuple[str, str], tuple[str, str], str]]:
    """``[((src ns, src id), (dest ns, dest id), relation)]`` over ``flows``, deduplicated, sorted."""
    out: set[tuple[tuple[str, str], tuple[str, str], str]] = set()
    for flow in flows:
        me = (flow.namespace, flow.id)
        for task in flow.all_tasks():
            if issubclass(task.cls, FlowableTask) and task.cls.executable:
                ns, fid = _static(task.raw.get("namespace")), _static(task.raw.get("flowId"))
                if ns and fid:
                    out.add((me, (ns, fid), "FLOW_TASK"))
        for trigger in flow.triggers:
            sources = trigger.cls.upstream_flows(trigger) if issubclass(trigger.cls, Trigger) else []
            for src in sources:
                ns, fid = _static(src.get("namespace")), _static(src.get("flowId"))
                if ns and fid:
                    out.add(((ns, fid), me, "FLOW_TRIGGER"))
    return sorted(out)


def _under(namespace: str, prefix: str) -> bool:
    return namespace == prefix or namespace.startswith(prefix + ".")


def namespace_graph(flows: list[Flow], namespace: str) -> dict[str, Any]:
    """Kestra's ``FlowTopologyGraph`` of a namespace: every flow of it (children included) and every edge
    with an end in it, ``{nodes, edges: [{source, target, relation}]}``."""
    nodes: dict[tuple[str, str], dict[str, Any]] = {}
    for flow in sorted(flows, key=lambda f: (f.namespace, f.id)):
        if _under(flow.namespace, namespace):
            nodes[(flow.namespace, flow.id)] = node(flow.namespace, flow.id)
    graph_edges = []
    for src, dest, relation in edges(flows):
        if not (_under(src[0], namespace) or _under(dest[0], namespace)):
            continue
        for end in (src, dest):
            nodes.setdefault(end, node(*end))
        graph_edges.append({"source": nodes[src]["uid"], "target": nodes[dest]["uid"], "relation": relation})
    return {"nodes": list(nodes.values()), "edges": graph_edges}
