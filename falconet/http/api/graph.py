"""Kestra's ``FlowGraph`` of a flow (``GET /flows/{ns}/{id}/graph``, ``POST /flows/graph``) and of an
execution (``GET /executions/{id}/graph``): ``{nodes, edges, clusters}`` in the shape of Kestra's
``io.kestra.core.models.hierarchies`` classes, which Kestra's UI and SDK read.

- a node is ``{uid, type, error}``; a task node (``…hierarchies.GraphTask``) adds ``task`` (the task as
  written) and ``relationType``, and for an execution the ``taskRun`` when the task ran exactly once;
  a trigger node (``…GraphTrigger``) adds ``trigger``; every cluster has a start
  (``…GraphClusterRoot``) and an end (``…GraphClusterEnd``) node;
- an edge is ``{source, target, relation: {relationType}}`` with SEQUENTIAL, CHOICE (If/Switch branches),
  PARALLEL (Parallel, EachParallel, Dag), DYNAMIC (loops) or ERROR (``errors`` branches);
- a cluster is ``{cluster: {uid, type, relationType, taskNode}, nodes, parents, start, end}``, one per task
  that has sub-tasks, plus one ``Triggers`` cluster.

Uids are dotted paths (``root.cluster_loop.each``), deterministic, so a graph of the same revision is the
same. Simplification: one task node per task (Kestra also expands one node per loop value in execution
graphs).
"""
from __future__ import annotations

from typing import Any

H = "io.kestra.core.models.hierarchies."
PARALLEL_TYPES = ("io.kestra.plugin.core.flow.Parallel", "io.kestra.plugin.core.flow.EachParallel",
                  "io.kestra.plugin.core.flow.Dag")
CHOICE_TYPES = ("io.kestra.plugin.core.flow.If", "io.kestra.plugin.core.flow.Switch")
DYNAMIC_TYPES = ("io.kestra.plugin.core.flow.ForEach", "io.kestra.plugin.core.flow.EachSequential",
                 "io.kestra.plugin.core.flow.ForEachItem", "io.kestra.plugin.core.flow.LoopUntil")


class _Builder:
    def __init__(self, runs: dict[str, list[dict[str, Any]]] | None):
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.clusters: list[dict[str, Any]] = []
        self.runs = runs

    def node(self, uid: str, kind: str, **extra: Any) -> str:
        self.nodes.append({"uid": uid, "type": H + kind, "error": False, **extra})
        return uid

    def edge(self, source: str, target: str, relation: str) -> None:
        self.edges.append({"source": source, "target": target, "relation": {"relationType": relation}})

    def task(self, spec: Any, prefix: str, relation: str, parents: list[str], error: bool) -> tuple[str, str]:
        """Add a task (a node, or a cluster for a task with sub-tasks): its (entry uid, exit uid)."""
        extra: dict[str, Any] = {"task": spec.raw, "relationType": relation}
        runs = self.runs.get(spec.id) if self.runs is not None else None
        if runs and len(runs) == 1:
            extra["taskRun"] = runs[0]
        children = list(spec.child_lists())
        if not children:
            uid = self.node(f"{prefix}.{spec.id}", "GraphTask", **extra)
            self.nodes[-1]["error"] = error
            return uid, uid
        cluster = f"{prefix}.cluster_{spec.id}"
        start = self.node(f"{cluster}.root", "GraphClusterRoot")
        end = self.node(f"{cluster}.end", "GraphClusterEnd")
        task_uid = self.node(f"{cluster}.{spec.id}", "GraphTask", **extra)
        self.nodes[-1]["error"] = error
        first = len(self.nodes) - 3
        self.edge(start, task_uid, relation)
        inner = ("PARALLEL" if spec.type in PARALLEL_TYPES else "CHOICE" if spec.type in CHOICE_TYPES
                 else "DYNAMIC" if spec.type in DYNAMIC_TYPES else "SEQUENTIAL")
        for name, tasks in children:
            if name in ("errors", "finally"):
                self.chain(tasks, cluster, task_uid, end, "ERROR" if name == "errors" else "SEQUENTIAL",
                           [*parents, cluster], error=name == "errors")
            elif inner == "PARALLEL":
                for child in tasks:
                    entry, exit_ = self.task(child, cluster, "PARALLEL", [*parents, cluster], error)
                    self.edge(task_uid, entry, "PARALLEL")
                    self.edge(exit_, end, "PARALLEL")
            else:
                self.chain(tasks, cluster, task_uid, end, inner, [*parents, cluster], error)
        self.clusters.append({
            "cluster": {"uid": cluster, "type": H + "GraphCluster", "error": error, "relationType": relation,
                        "taskNode": dict(self.nodes[first + 2])},
            "nodes": [n["uid"] for n in self.nodes[first:] if n["uid"].startswith(cluster + ".")],
            "parents": parents,
            "start": start,
            "end": end,
        })
        return start, end

    def chain(self, tasks: list[Any], prefix: str, start: str, end: str, relation: str, parents: list[str],
              error: bool = False) -> None:
        previous = start
        for spec in tasks:
            entry, exit_ = self.task(spec, prefix, relation, parents, error)
            self.edge(previous, entry, relation)
            previous = exit_
        self.edge(previous, end, relation)


def flow_graph(flow: Any, execution: dict[str, Any] | None = None) -> dict[str, Any]:
    """The FlowGraph of a parsed flow; with ``execution`` (as the API shows it), task nodes carry their task run."""
    runs: dict[str, list[dict[str, Any]]] | None = None
    if execution is not None:
        runs = {}
        for tr in execution.get("taskRunList") or []:
            runs.setdefault(tr.get("taskId"), []).append(tr)
    b = _Builder(runs)
    start = b.node("root.root", "GraphClusterRoot")
    end = b.node("root.end", "GraphClusterEnd")
    if flow.triggers:
        cluster = "root.Triggers"
        t_start = b.node(f"{cluster}.root", "GraphClusterRoot")
        t_end = b.node(f"{cluster}.end", "GraphClusterEnd")
        uids = [t_start, t_end]
        for spec in flow.triggers:
            raw = next((t for t in flow.raw.get("triggers") or [] if isinstance(t, dict) and t.get("id") == spec.id),
                       {"id": spec.id, "type": spec.type})
            uid = b.node(f"{cluster}.{spec.id}", "GraphTrigger", trigger=raw)
            uids.append(uid)
            b.edge(t_start, uid, "SEQUENTIAL")
            b.edge(uid, t_end, "SEQUENTIAL")
        b.edge(t_end, start, "SEQUENTIAL")
        b.clusters.append({"cluster": {"uid": cluster, "type": H + "GraphCluster", "error": False},
                           "nodes": uids, "parents": [], "start": t_start, "end": t_end})
    b.chain(flow.tasks, "root", start, end, "SEQUENTIAL", [])
    if flow.errors:
        b.chain(flow.errors, "root", start, end, "ERROR", [], error=True)
    if flow.finally_:
        b.chain(flow.finally_, "root", start, end, "SEQUENTIAL", [])
    return {"nodes": b.nodes, "edges": b.edges, "clusters": b.clusters}
