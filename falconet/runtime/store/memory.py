"""MemoryStore: the :class:`Store` semantics in dicts, no threads — for tests under trio's fake clock.

Every document is kept as its JSON text (taken when the write is called), so a stored snapshot never
aliases the caller's live objects and every read returns a fresh dict — exactly what the SQLite store
does. ``*_nowait`` writes apply immediately (there is nothing to batch), so ``flush()`` only checks the
store is open. Every ``async`` method is a checkpoint *before* it acts: a caller cancelled at that point
has changed nothing; once past it, the operation runs to completion without yielding (all or nothing).
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

import trio

from falconet.runtime.kernel.clock import SYSTEM, Clock
from falconet.runtime.kernel.errors import IllegalArgument, IllegalState
from falconet.runtime.store._common import (
    TERMINAL_STATES, ExecRow, LogRow, MetricRow, StoreError, check_child_filter, check_paging, check_states,
    check_flow, copy_flow, dt_ms, dt_us, dumps, execution_row, kv_expiration_ms, level_value, log_row, metric_row,
    namespace_matches, parse_sort, trigger_key,
)
from falconet.runtime.store.base import ExecutionQuery, FlowRecord, LogQuery, Store

__all__ = ["MemoryStore"]


def _sort_key(value: Any) -> tuple[int, Any]:
    # None sorts first ascending (like SQL NULLs in SQLite)
    return (0, 0) if value is None else (1, value)


class MemoryStore(Store):
    """In-memory store. ``clock`` tells the current date (KV expiry)."""

    def __init__(self, *, clock: Clock = SYSTEM) -> None:
        self._clock = clock
        self._open = False
        self._closed = False
        self._seq = 0
        # id -> (insertion seq, row); seq is kept on update, a new one is taken after delete
        self._executions: dict[str, tuple[int, ExecRow]] = {}
        self._flows: dict[tuple[str, str], dict[int, FlowRecord]] = {}
        self._logs: list[tuple[int, LogRow]] = []
        self._metrics: list[tuple[int, MetricRow]] = []
        self._kv: dict[tuple[str, str], tuple[int | None, str]] = {}
        self._triggers: dict[tuple[str, str, str], str] = {}
        self._state: dict[tuple[str, str], str] = {}
        self._slots: dict[str, tuple[str, str]] = {}  # concurrency slots: execution id -> (namespace, flow id)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _check(self) -> None:
        if not self._open:
            raise StoreError("the store is closed" if self._closed else "the store is not open (call open() first)")

    async def _enter(self) -> None:
        await trio.lowlevel.checkpoint()
        self._check()

    #### lifecycle ########################################################################################

    async def open(self) -> None:
        await trio.lowlevel.checkpoint()
        self._open = True  # reopening a closed MemoryStore finds its data again

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()
        self._open = False
        self._closed = True  # only for the error message

    async def flush(self) -> None:
        await self._enter()

    #### flows ############################################################################################

    async def save_flow(self, record: FlowRecord) -> None:
        await self._enter()
        check_flow(record)
        revs = self._flows.setdefault((record.namespace, record.id), {})
        if record.revision in revs:
            raise IllegalState(f"flow {record.namespace}.{record.id} revision {record.revision} already exists")
        revs[record.revision] = copy_flow(record)

    async def get_flow(self, namespace: str, flow_id: str, revision: int | None = None,
                       allow_deleted: bool = False) -> FlowRecord | None:
        await self._enter()
        revs = self._flows.get((namespace, flow_id))
        if not revs:
            return None
        rec = revs[max(revs)] if revision is None else revs.get(revision)
        if rec is None or (rec.deleted and not allow_deleted):
            return None
        return copy_flow(rec)

    async def list_flow_revisions(self, namespace: str, flow_id: str) -> list[FlowRecord]:
        await self._enter()
        revs = self._flows.get((namespace, flow_id)) or {}
        return [copy_flow(revs[r]) for r in sorted(revs)]

    async def list_flows(self, namespace: str | None = None, include_deleted: bool = False) -> list[FlowRecord]:
        await self._enter()
        out = []
        for (ns, _fid), revs in sorted(self._flows.items()):
            if namespace is not None and not namespace_matches(ns, namespace):
                continue
            rec = revs[max(revs)]
            if rec.deleted and not include_deleted:
                continue
            out.append(copy_flow(rec))
        return out

    #### executions #######################################################################################

    def save_execution_nowait(self, doc: dict[str, Any], *, doc_json: str | None = None) -> None:
        self._check()
        row = execution_row(doc, doc_json)
        old = self._executions.get(row.id)
        self._executions[row.id] = (old[0] if old else self._next_seq(), row)

    async def save_execution(self, doc: dict[str, Any], *, doc_json: str | None = None) -> None:
        await self._enter()
        self.save_execution_nowait(doc, doc_json=doc_json)

    async def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        await self._enter()
        item = self._executions.get(execution_id)
        if item is None or item[1].deleted:
            return None
        return json.loads(item[1].doc_json)

    async def search_executions(self, query: ExecutionQuery) -> tuple[list[dict[str, Any]], int]:
        await self._enter()
        check_paging(query.page, query.size)
        order = parse_sort(query.sort)
        states = set(check_states(query.states))
        child = check_child_filter(query.child_filter)
        start = dt_ms(query.start_date) if query.start_date is not None else None
        end = dt_ms(query.end_date) if query.end_date is not None else None
        q = query.q.lower() if query.q else None
        labels = [(str(k), str(v)) for k, v in query.labels]
        hits: list[tuple[int, ExecRow]] = []
        for seq, r in self._executions.values():
            if r.deleted:
                continue
            if query.namespace is not None and not namespace_matches(r.namespace, query.namespace):
                continue
            if query.flow_id is not None and r.flow_id != query.flow_id:
                continue
            if states and r.state not in states:
                continue
            if labels and not all(lb in r.labels for lb in labels):
                continue
            if start is not None and r.start_ms < start:
                continue
            if end is not None and r.start_ms > end:
                continue
            if query.trigger_execution_id is not None and r.trigger_execution_id != query.trigger_execution_id:
                continue
            if child == "CHILD" and r.trigger_execution_id is None:
                continue
            if child == "MAIN" and r.trigger_execution_id is not None:
                continue
            if q and not (q in r.id.lower() or q in r.namespace.lower() or q in r.flow_id.lower()):
                continue
            hits.append((seq, r))
        # stable multi-key sort: least significant key first; insertion order breaks ties
        hits.sort(key=lambda h: h[0], reverse=order[0][1])
        for col, desc in reversed(order):
            hits.sort(key=lambda h: _sort_key(getattr(h[1], col)), reverse=desc)
        total = len(hits)
        lo = (query.page - 1) * query.size
        return [json.loads(r.doc_json) for _, r in hits[lo:lo + query.size]], total

    async def list_unfinished_executions(self) -> list[dict[str, Any]]:
        await self._enter()
        rows = [(r.start_ms, seq, r) for seq, r in self._executions.values()
                if r.state not in TERMINAL_STATES and not r.deleted]
        rows.sort(key=lambda t: (t[0], t[1]))
        return [json.loads(r.doc_json) for _, _, r in rows]

    async def delete_execution(self, execution_id: str) -> bool:
        await self._enter()
        return self._executions.pop(execution_id, None) is not None

    #### logs and metrics #################################################################################

    def append_logs_nowait(self, entries: Iterable[dict[str, Any]]) -> None:
        self._check()
        rows = [log_row(e) for e in entries]  # validate all before storing any
        self._logs.extend((self._next_seq(), r) for r in rows)

    def _log_matches(self, query: LogQuery) -> Callable[[LogRow], bool]:
        min_level = level_value(query.min_level) if query.min_level is not None else None
        start = dt_us(query.start_date) if query.start_date is not None else None
        end = dt_us(query.end_date) if query.end_date is not None else None
        q = query.q.lower() if query.q else None

        def match(r: LogRow) -> bool:
            return ((query.execution_id is None or r.execution_id == query.execution_id)
                    and (query.namespace is None or (r.namespace is not None
                                                     and namespace_matches(r.namespace, query.namespace)))
                    and (query.flow_id is None or r.flow_id == query.flow_id)
                    and (query.task_id is None or r.task_id == query.task_id)
                    and (query.task_run_id is None or r.task_run_id == query.task_run_id)
                    and not (query.outside_task_runs and r.task_run_id is not None)
                    and (query.attempt is None or r.attempt == query.attempt)
                    and (query.trigger_id is None or r.trigger_id == query.trigger_id)
                    and (min_level is None or r.level >= min_level)
                    and (start is None or r.ts_us >= start)
                    and (end is None or r.ts_us <= end)
                    and (q is None or q in r.message.lower()))
        return match

    async def get_logs(self, query: LogQuery) -> tuple[list[dict[str, Any]], int]:
        await self._enter()
        check_paging(query.page, query.size)
        match = self._log_matches(query)
        hits = sorted((t for t in self._logs if match(t[1])), key=lambda t: (t[1].ts_us, t[0]))
        total = len(hits)
        if query.page is not None or query.size is not None:
            size = query.size or 10
            lo = ((query.page or 1) - 1) * size
            hits = hits[lo:lo + size]
        return [json.loads(r.entry_json) for _, r in hits], total

    async def count_logs_by_task_run(self, query: LogQuery) -> dict[str | None, int]:
        await self._enter()
        match = self._log_matches(query)
        return dict(Counter(r.task_run_id for _, r in self._logs if match(r)))

    async def delete_logs(self, query: LogQuery) -> int:
        await self._enter()
        match = self._log_matches(query)
        kept = [t for t in self._logs if not match(t[1])]
        n = len(self._logs) - len(kept)
        self._logs = kept
        return n

    def append_metrics_nowait(self, entries: Iterable[dict[str, Any]]) -> None:
        self._check()
        rows = [metric_row(e) for e in entries]
        self._metrics.extend((self._next_seq(), r) for r in rows)

    async def get_metrics(self, execution_id: str | None = None, *, namespace: str | None = None,
                          flow_id: str | None = None, task_id: str | None = None,
                          task_run_id: str | None = None, name: str | None = None,
                          start_date: datetime | None = None, end_date: datetime | None = None
                          ) -> list[dict[str, Any]]:
        await self._enter()
        start = dt_us(start_date) if start_date is not None else None
        end = dt_us(end_date) if end_date is not None else None
        hits = [t for t in self._metrics
                if (execution_id is None or t[1].execution_id == execution_id)
                and (namespace is None or (t[1].namespace is not None and namespace_matches(t[1].namespace, namespace)))
                and (flow_id is None or t[1].flow_id == flow_id)
                and (task_id is None or t[1].task_id == task_id)
                and (task_run_id is None or t[1].task_run_id == task_run_id)
                and (name is None or t[1].name == name)
                and (start is None or t[1].ts_us >= start)
                and (end is None or t[1].ts_us <= end)]
        hits.sort(key=lambda t: (t[1].ts_us, t[0]))
        return [json.loads(r.entry_json) for _, r in hits]

    async def delete_metrics(self, execution_id: str) -> int:
        await self._enter()
        kept = [t for t in self._metrics if t[1].execution_id != execution_id]
        n = len(self._metrics) - len(kept)
        self._metrics = kept
        return n

    #### key-value store ##################################################################################

    def _kv_live(self, item: tuple[int | None, str] | None) -> bool:
        return item is not None and (item[0] is None or item[0] > dt_ms(self._clock.now()))

    async def kv_put(self, namespace: str, key: str, entry: dict[str, Any]) -> None:
        await self._enter()
        exp = kv_expiration_ms(namespace, key, entry)
        self._kv[(namespace, key)] = (exp, dumps(entry, f"kv {namespace}/{key}"))

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        await self._enter()
        item = self._kv.get((namespace, key))
        return json.loads(item[1]) if item is not None and self._kv_live(item) else None

    async def kv_delete(self, namespace: str, key: str) -> bool:
        await self._enter()
        item = self._kv.pop((namespace, key), None)
        return self._kv_live(item)

    async def kv_list(self, namespace: str) -> list[dict[str, Any]]:
        await self._enter()
        out = []
        for (ns, key), item in sorted(self._kv.items()):
            if ns == namespace and self._kv_live(item):
                out.append({"key": key, **json.loads(item[1])})
        return out

    async def kv_list_all(self) -> list[dict[str, Any]]:
        await self._enter()
        return [{"namespace": ns, "key": key, **json.loads(item[1])}
                for (ns, key), item in sorted(self._kv.items()) if self._kv_live(item)]

    #### triggers #########################################################################################

    async def save_trigger(self, doc: dict[str, Any]) -> None:
        await self._enter()
        key = trigger_key(doc)
        self._triggers[key] = dumps(doc, "trigger")

    async def get_trigger(self, namespace: str, flow_id: str, trigger_id: str) -> dict[str, Any] | None:
        await self._enter()
        raw = self._triggers.get((namespace, flow_id, trigger_id))
        return json.loads(raw) if raw is not None else None

    async def list_triggers(self, namespace: str | None = None, flow_id: str | None = None) -> list[dict[str, Any]]:
        await self._enter()
        return [json.loads(raw) for (ns, fid, _), raw in sorted(self._triggers.items())
                if (namespace is None or namespace_matches(ns, namespace)) and (flow_id is None or fid == flow_id)]

    async def delete_trigger(self, namespace: str, flow_id: str, trigger_id: str) -> bool:
        await self._enter()
        return self._triggers.pop((namespace, flow_id, trigger_id), None) is not None

    async def swap_trigger(self, expected: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
        await self._enter()
        key = trigger_key(doc)
        if expected is not None and trigger_key(expected) != key:
            raise IllegalArgument("swap_trigger: the expected context is of another trigger")
        new = dumps(doc, "trigger")
        raw = self._triggers.get(key)
        if expected is not None:
            expected = json.loads(dumps(expected, "trigger"))
        if (raw is None) != (expected is None) or (raw is not None and json.loads(raw) != expected):
            return False
        self._triggers[key] = new
        return True

    #### generic small state ##############################################################################

    async def state_put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        await self._enter()
        if not kind or not key:
            raise IllegalArgument("state kind and key must be non-empty")
        self._state[(kind, key)] = dumps(value, f"state {kind}/{key}")

    async def state_get(self, kind: str, key: str) -> dict[str, Any] | None:
        await self._enter()
        raw = self._state.get((kind, key))
        return json.loads(raw) if raw is not None else None

    async def state_delete(self, kind: str, key: str) -> bool:
        await self._enter()
        return self._state.pop((kind, key), None) is not None

    async def state_list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        await self._enter()
        return [(k, json.loads(raw)) for (kd, k), raw in sorted(self._state.items()) if kd == kind]

    async def swap_states(self, kind: str,
                          changes: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]) -> bool:
        await self._enter()
        if not kind or any(not key for key, _, _ in changes):
            raise IllegalArgument("state kind and key must be non-empty")
        rows = [(key, None if old is None else json.loads(dumps(old, f"state {kind}/{key}")),
                 None if new is None else dumps(new, f"state {kind}/{key}")) for key, old, new in changes]
        for key, old, _ in rows:
            raw = self._state.get((kind, key))
            if (raw is None) != (old is None) or (raw is not None and json.loads(raw) != old):
                return False
        for key, _, new in rows:
            if new is None:
                self._state.pop((kind, key), None)
            else:
                self._state[(kind, key)] = new
        return True

    #### cluster coordination #############################################################################

    async def claim_concurrency_slot(self, namespace: str, flow_id: str, execution_id: str, limit: int) -> bool:
        await self._enter()
        if not namespace or not flow_id or not execution_id:
            raise IllegalArgument("namespace, flow id and execution id must be non-empty")

        def running(eid: str) -> bool:
            item = self._executions.get(eid)
            return item is not None and not item[1].deleted and item[1].state not in TERMINAL_STATES

        for eid in [e for e, key in self._slots.items() if key == (namespace, flow_id) and not running(e)]:
            del self._slots[eid]
        if execution_id in self._slots:
            return True
        taken = sum(1 for key in self._slots.values() if key == (namespace, flow_id))
        ahead = 0
        mine = self._executions.get(execution_id)
        if mine is not None:
            order = (mine[1].start_ms, mine[0])
            ahead = sum(1 for seq, r in self._executions.values()
                        if r.namespace == namespace and r.flow_id == flow_id and not r.deleted and r.state == "QUEUED"
                        and r.id != execution_id and r.id not in self._slots and (r.start_ms, seq) < order)
        if taken + ahead >= limit:
            return False
        self._slots[execution_id] = (namespace, flow_id)
        return True
