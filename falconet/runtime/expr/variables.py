"""The expression variables of a task run (Kestra's ``RunVariables``): flow, execution, task, taskrun,
parents, inputs, outputs, tasks, vars, labels, trigger, envs, globals.

Building ``outputs`` walks every task run, so it is built once per execution and then updated per changed
task run (:class:`OutputsCache`); the per-task-run part is cheap.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from falconet.runtime.flow.model import Flow, TaskSpec
from falconet.runtime.kernel.execution import Execution, TaskRun, format_instant


#### Loop values ############################################################################################

def parent_chain(execution: Execution, tr: TaskRun, by_id: Mapping[str, TaskRun]) -> list[TaskRun]:
    """Ancestors of ``tr``, nearest first."""
    chain: list[TaskRun] = []
    cur = by_id.get(tr.parent_task_run_id) if tr.parent_task_run_id else None
    while cur is not None:
        chain.append(cur)
        cur = by_id.get(cur.parent_task_run_id) if cur.parent_task_run_id else None
    return chain


def value_path(tr: TaskRun, by_id: Mapping[str, TaskRun]) -> list[str]:
    """Loop values of a task run and its ancestors, outermost first (Kestra's findParentsValues)."""
    values: list[str] = []
    cur: TaskRun | None = tr
    while cur is not None:
        if cur.value is not None:
            values.append(cur.value)
        cur = by_id.get(cur.parent_task_run_id) if cur.parent_task_run_id else None
    values.reverse()
    return values


def _copy(v: Any) -> Any:
    return {k: _copy(x) for k, x in v.items()} if isinstance(v, Mapping) else v


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Deep-merge ``other`` into ``into``; maps are copied, never shared with task-run outputs."""
    for k, v in other.items():
        cur = into.get(k)
        if isinstance(cur, dict) and isinstance(v, Mapping):
            _merge(cur, v)
        else:
            into[k] = _copy(v)


def build_outputs(execution: Execution, by_id: Mapping[str, TaskRun]) -> dict[str, Any]:
    """``outputs`` as Kestra exposes them: ``outputs.<taskId>`` or, inside loops,
    ``outputs.<taskId>[<v1>][<v2>]…`` (values of the task run's ancestors, outermost first, then its own)."""
    result: dict[str, Any] = {}
    for tr in execution.task_run_list:
        if tr.outputs is None:
            continue
        values = value_path(tr, by_id)
        if not values:
            node: Any = dict(tr.outputs)
        else:
            node = dict(tr.outputs)
            for v in reversed(values):
                node = {v: node}
        _merge(result, {tr.task_id: node})
    return result


def build_task_states(execution: Execution, by_id: Mapping[str, TaskRun]) -> dict[str, Any]:
    """``tasks.<taskId>.state`` (or ``tasks.<taskId>[<value>].state`` in loops)."""
    result: dict[str, Any] = {}
    for tr in execution.task_run_list:
        values = value_path(tr, by_id)
        node: Any = {"state": tr.state.current.value}
        for v in reversed(values):
            node = {v: node}
        _merge(result, {tr.task_id: node})
    return result


class OutputsCache:
    """The ``outputs``/``tasks`` maps of one execution, built once and then updated per changed task run
    (:meth:`changed`), so a step does not walk every task run. ``by_id``: the task runs by id, kept by the
    caller (the machine's index); without it the cache indexes the list itself.

    An update gives exactly what a rebuild would: the latest task run of a (task id, loop values) key
    sets its ``tasks`` state (earlier ones are overridden by it anyway); outputs are merged in when they
    are the key's latest, replaced when the task run is the key's only one; anything else (outputs
    dropped, a loop value named ``state``, a task id at two loop depths…) rebuilds at the next read."""

    __slots__ = ("_outputs", "_tasks", "_by_id", "_n", "_shared", "_keys", "_last", "_count", "_merged",
                 "_depth", "_simple")

    def __init__(self, by_id: Mapping[str, TaskRun] | None = None) -> None:
        self._outputs: dict[str, Any] | None = None
        self._tasks: dict[str, Any] | None = None
        self._by_id: dict[str, TaskRun] = {}
        self._n = -1
        self._shared = by_id
        self._keys: dict[str, tuple[str, tuple[str, ...]]] = {}   # task run id -> (task id, loop values)
        self._last: dict[tuple[str, tuple[str, ...]], str] = {}   # key -> id of its latest task run
        self._count: dict[tuple[str, tuple[str, ...]], int] = {}  # key -> its task runs
        self._merged: set[str] = set()                           # task runs whose outputs are in _outputs
        self._depth: dict[str, int] = {}                          # task id -> number of loop values
        self._simple = True

    def invalidate(self) -> None:
        self._outputs = None
        self._tasks = None

    def by_id(self, execution: Execution) -> Mapping[str, TaskRun]:
        if self._shared is not None:
            return self._shared
        if self._n != len(execution.task_run_list):
            self._by_id = {tr.id: tr for tr in execution.task_run_list}
            self._n = len(execution.task_run_list)
        return self._by_id

    def outputs(self, execution: Execution) -> dict[str, Any]:
        if self._outputs is None:
            by_id = self.by_id(execution)
            self._outputs = build_outputs(execution, by_id)
            self._merged = {tr.id for tr in execution.task_run_list if tr.outputs is not None}
            self._track_all(execution, by_id)
        return self._outputs

    def tasks(self, execution: Execution) -> dict[str, Any]:
        if self._tasks is None:
            by_id = self.by_id(execution)
            self._tasks = build_task_states(execution, by_id)
            self._track_all(execution, by_id)
        return self._tasks

    def _track_all(self, execution: Execution, by_id: Mapping[str, TaskRun]) -> None:
        if len(self._keys) != len(execution.task_run_list):
            for tr in execution.task_run_list:
                self._track(tr, by_id)

    def _track(self, tr: TaskRun, by_id: Mapping[str, TaskRun]) -> tuple[str, tuple[str, ...]]:
        """The key of ``tr``; a task run not seen yet is the latest of its key (task runs are appended)."""
        key = self._keys.get(tr.id)
        if key is None:
            values = tuple(value_path(tr, by_id))
            key = self._keys[tr.id] = (tr.task_id, values)
            self._last[key] = tr.id
            self._count[key] = self._count.get(key, 0) + 1
            if self._depth.setdefault(tr.task_id, len(values)) != len(values) or "state" in values:
                self._simple = False
        return key

    def changed(self, execution: Execution, tr: TaskRun) -> None:
        """``tr`` was created or changed (state, outputs)."""
        if self._outputs is None and self._tasks is None:
            return  # built (and tracked) at the next read
        key = self._track(tr, self.by_id(execution))
        if not self._simple:
            self.invalidate()
            return
        latest = self._last[key] == tr.id
        if self._tasks is not None and latest:
            node = _descend(self._tasks, key)
            if node is None:
                self._tasks = None
            else:
                node["state"] = tr.state.current.value
        if self._outputs is not None:
            merged = tr.id in self._merged
            if tr.outputs is None:
                if merged:
                    self._outputs = None
            elif not merged and latest:
                node = dict(tr.outputs)
                for v in reversed(key[1]):
                    node = {v: node}
                _merge(self._outputs, {key[0]: node})
                self._merged.add(tr.id)
            elif self._count[key] == 1:
                parent = _descend(self._outputs, (key[0], key[1][:-1])) if key[1] else self._outputs
                if parent is None:
                    self._outputs = None
                else:
                    parent[key[1][-1] if key[1] else key[0]] = _copy(dict(tr.outputs))
                    self._merged.add(tr.id)
            else:
                self._outputs = None


def _descend(root: dict[str, Any], key: tuple[str, tuple[str, ...]]) -> dict[str, Any] | None:
    """The map at ``root[task id][v1][v2]…``, created where missing; None where a value is in the way."""
    node: Any = root.setdefault(key[0], {})
    for v in key[1]:
        if not isinstance(node, dict):
            return None
        node = node.setdefault(v, {})
    return node if isinstance(node, dict) else None


#### envs / labels ##########################################################################################

def kestra_envs(prefix: str = "KESTRA_") -> dict[str, str]:
    """Environment variables starting with ``prefix``, prefix stripped and key lower-cased."""
    n = len(prefix)
    return {k[n:].lower(): v for k, v in os.environ.items() if k.startswith(prefix)}


def labels_map(labels: list[dict[str, str]]) -> dict[str, Any]:
    """Execution labels as a map; ``system.x`` keys are also nested as ``labels.system.x``."""
    out: dict[str, Any] = {}
    for lb in labels:
        key, value = lb.get("key"), lb.get("value")
        if key is None:
            continue
        out[key] = value
        if "." in key:
            head, _, rest = key.partition(".")
            node = out.get(head)
            if not isinstance(node, dict):
                node = {}
                if head not in out:
                    out[head] = node
                else:
                    continue
            node[rest] = value
    return out


#### The full context #######################################################################################

def execution_variables(execution: Execution, flow: Flow, cache: OutputsCache, *, envs: Mapping[str, str],
                        globals_: Mapping[str, Any], inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Variables shared by every task run of the execution (no task/taskrun part)."""
    v: dict[str, Any] = {
        "flow": {"id": flow.id, "namespace": flow.namespace, "revision": flow.revision},
        "execution": {
            "id": execution.id,
            "startDate": format_instant(execution.state.start_date),
            "originalId": execution.original_id,
            "state": execution.state.current.value,
        },
        "outputs": cache.outputs(execution),
        "tasks": cache.tasks(execution),
        "vars": flow.variables or {},
        "labels": labels_map(execution.labels),
        "envs": envs,
        "globals": globals_,
    }
    inputs = inputs if inputs is not None else execution.inputs
    if inputs:  # as Kestra: no inputs, no `inputs` variable (`{{ inputs.x }}` then names `inputs`)
        v["inputs"] = inputs
    if execution.trigger is not None:
        v["trigger"] = execution.trigger.get("variables") or {}
    return v


def task_run_variables(base: Mapping[str, Any], execution: Execution, task: TaskSpec, tr: TaskRun,
                       cache: OutputsCache) -> dict[str, Any]:
    """``base`` (see :func:`execution_variables`) plus task, taskrun, parents/parent."""
    v = dict(base)
    v["task"] = {"id": task.id, "type": task.type}
    taskrun: dict[str, Any] = {
        "id": tr.id,
        "startDate": format_instant(tr.state.start_date),
        "attemptsCount": max(len(tr.attempts) - 1, 0) if tr.attempts else 0,
        "parentId": tr.parent_task_run_id,
        "value": tr.value,
    }
    if tr.iteration is not None:
        taskrun["iteration"] = tr.iteration
    v["taskrun"] = taskrun
    by_id = cache.by_id(execution)
    parents = []
    for p in parent_chain(execution, tr, by_id):
        if p.value is None and not p.outputs:
            continue
        entry: dict[str, Any] = {"taskrun": {"value": p.value}}
        if p.outputs:
            entry["outputs"] = p.outputs
        parents.append(entry)
    if parents:
        v["parents"] = parents
        v["parent"] = parents[0]
    return v
