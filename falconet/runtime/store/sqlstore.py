"""The Store contract in SQL that SQLite and PostgreSQL both accept (``?`` placeholders: the PostgreSQL
connection adapter rewrites them), run through :class:`~falconet.runtime.store._writer.WriterStore`'s queue:
writes are jobs in the writer's transaction, reads see every write queued before them."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable, Sequence

import trio

from falconet.runtime.kernel.errors import IllegalArgument
from falconet.runtime.store import _sql as sql
from falconet.runtime.store._common import (
    check_flow, check_paging, dt_ms, dt_us, dumps, execution_row, kv_expiration_ms, log_row, metric_row, trigger_key,
)
from falconet.runtime.store._writer import BARRIER, WriterStore
from falconet.runtime.store.base import ExecutionQuery, FlowRecord, LogQuery

__all__ = ["SQLStore"]


class SQLStore(WriterStore):
    """Every Store method as SQL jobs; subclasses open the connection (:meth:`WriterStore.connect`)."""

    #: SQL condition matching one label (parameters: key, value) of the JSON list ``executions.labels``
    label_match: str = sql.SQLITE_LABEL_MATCH

    #### flows ############################################################################################

    async def save_flow(self, record: FlowRecord) -> None:
        check_flow(record)
        await self._call(sql.save_flow, record.namespace, record.id, record.revision, record.source,
                         int(bool(record.deleted)), int(bool(record.disabled)),
                         record.updated.isoformat() if record.updated is not None else None)

    async def get_flow(self, namespace: str, flow_id: str, revision: int | None = None,
                       allow_deleted: bool = False) -> FlowRecord | None:
        if revision is None:
            rows = await self._call(sql.select, "SELECT * FROM flows WHERE namespace = ? AND id = ? "
                                    "ORDER BY revision DESC LIMIT 1", (namespace, flow_id), read=True)
        else:
            rows = await self._call(sql.select, "SELECT * FROM flows WHERE namespace = ? AND id = ? AND revision = ?",
                                    (namespace, flow_id, revision), read=True)
        if not rows:
            return None
        rec = sql.flow_record(rows[0])
        return None if rec.deleted and not allow_deleted else rec

    async def list_flow_revisions(self, namespace: str, flow_id: str) -> list[FlowRecord]:
        rows = await self._call(sql.select, "SELECT * FROM flows WHERE namespace = ? AND id = ? ORDER BY revision",
                                (namespace, flow_id), read=True)
        return [sql.flow_record(r) for r in rows]

    async def list_flows(self, namespace: str | None = None, include_deleted: bool = False) -> list[FlowRecord]:
        w = sql.Where()
        if namespace is not None:
            w.namespace("f.namespace", namespace)
        if not include_deleted:
            w.add("f.deleted = 0")
        rows = await self._call(
            sql.select, "SELECT f.* FROM flows f JOIN (SELECT namespace, id, max(revision) AS revision FROM flows "
            "GROUP BY namespace, id) m USING (namespace, id, revision)" + w.sql() + " ORDER BY f.namespace, f.id",
            tuple(w.params), read=True)
        return [sql.flow_record(r) for r in rows]

    #### executions #######################################################################################

    def save_execution_nowait(self, doc: dict[str, Any], *, doc_json: str | None = None) -> None:
        self._queue_execution(execution_row(doc, doc_json))

    async def save_execution(self, doc: dict[str, Any], *, doc_json: str | None = None) -> None:
        row = execution_row(doc, doc_json)  # validated before the checkpoint
        await trio.lowlevel.checkpoint_if_cancelled()
        self._queue_execution(row)
        await self._call(BARRIER)

    async def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        rows = await self._call(sql.select, "SELECT doc FROM executions WHERE id = ? AND deleted = 0",
                                (execution_id,), read=True)
        return json.loads(rows[0][0]) if rows else None

    async def search_executions(self, query: ExecutionQuery) -> tuple[list[dict[str, Any]], int]:
        where, order, params = sql.execution_search(query, self.label_match)
        docs, total = await self._call(sql.search_executions, where, order, params, query.size,
                                       (query.page - 1) * query.size, read=True)
        return [json.loads(d) for d in docs], total

    async def list_unfinished_executions(self) -> list[dict[str, Any]]:
        rows = await self._call(sql.select, sql.UNFINISHED, (), read=True)
        return [json.loads(r[0]) for r in rows]

    async def delete_execution(self, execution_id: str) -> bool:
        return await self._call(sql.modify, "DELETE FROM executions WHERE id = ?", (execution_id,)) > 0

    #### logs and metrics #################################################################################

    def append_logs_nowait(self, entries: Iterable[dict[str, Any]]) -> None:
        self._queue_rows("L", [log_row(e) for e in entries])

    async def get_logs(self, query: LogQuery) -> tuple[list[dict[str, Any]], int]:
        check_paging(query.page, query.size)
        w = sql.log_where(query)
        limit = offset = None
        if query.page is not None or query.size is not None:
            limit = query.size or 10
            offset = ((query.page or 1) - 1) * limit
        entries, total = await self._call(sql.search_logs, w.sql(), w.params, limit, offset, read=True)
        return [json.loads(e) for e in entries], total

    async def logs_after(self, execution_id: str, after_seq: int | None,
                         limit: int) -> list[tuple[int, dict[str, Any]]]:
        """``(seq, entry)`` of the execution's log lines stored after ``after_seq``, oldest first, at most
        ``limit``; with ``after_seq=None`` its last ``limit`` lines (insertion order, for the cluster's event
        relay, which follows an execution written by another node)."""
        if after_seq is None:
            rows = await self._call(sql.select, "SELECT seq, entry FROM logs WHERE execution_id = ? "
                                    "ORDER BY seq DESC LIMIT ?", (execution_id, limit), read=True)
            rows = rows[::-1]
        else:
            rows = await self._call(sql.select, "SELECT seq, entry FROM logs WHERE execution_id = ? AND seq > ? "
                                    "ORDER BY seq LIMIT ?", (execution_id, after_seq, limit), read=True)
        return [(int(seq), json.loads(entry)) for seq, entry in rows]

    async def count_logs_by_task_run(self, query: LogQuery) -> dict[str | None, int]:
        w = sql.log_where(query)
        rows = await self._call(sql.select, "SELECT task_run_id, count(*) FROM logs" + w.sql()
                                + " GROUP BY task_run_id", tuple(w.params), read=True)
        return {r[0]: r[1] for r in rows}

    async def delete_logs(self, query: LogQuery) -> int:
        w = sql.log_where(query)
        return await self._call(sql.modify, "DELETE FROM logs" + w.sql(), tuple(w.params))

    def append_metrics_nowait(self, entries: Iterable[dict[str, Any]]) -> None:
        self._queue_rows("M", [metric_row(e) for e in entries])

    async def get_metrics(self, execution_id: str | None = None, *, namespace: str | None = None,
                          flow_id: str | None = None, task_id: str | None = None,
                          task_run_id: str | None = None, name: str | None = None,
                          start_date: datetime | None = None, end_date: datetime | None = None
                          ) -> list[dict[str, Any]]:
        w = sql.Where()
        for col, v in (("execution_id", execution_id), ("flow_id", flow_id), ("task_id", task_id),
                       ("task_run_id", task_run_id), ("name", name)):
            if v is not None:
                w.add(f"{col} = ?", v)
        if namespace is not None:
            w.namespace("namespace", namespace)
        if start_date is not None:
            w.add("timestamp >= ?", dt_us(start_date))
        if end_date is not None:
            w.add("timestamp <= ?", dt_us(end_date))
        rows = await self._call(sql.select, "SELECT entry FROM metrics" + w.sql() + " ORDER BY timestamp, seq",
                                tuple(w.params), read=True)
        return [json.loads(r[0]) for r in rows]

    async def delete_metrics(self, execution_id: str) -> int:
        return await self._call(sql.modify, "DELETE FROM metrics WHERE execution_id = ?", (execution_id,))

    #### key-value store ##################################################################################

    async def kv_put(self, namespace: str, key: str, entry: dict[str, Any]) -> None:
        exp = kv_expiration_ms(namespace, key, entry)
        await self._call(sql.modify, "INSERT INTO kv (namespace, key, expiration, entry) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (namespace, key) DO UPDATE SET expiration = excluded.expiration, "
                         "entry = excluded.entry", (namespace, key, exp, dumps(entry, f"kv {namespace}/{key}")))

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        rows = await self._call(sql.select, "SELECT entry FROM kv WHERE namespace = ? AND key = ? AND "
                                "(expiration IS NULL OR expiration > ?)", (namespace, key, dt_ms(self._clock.now())),
                                read=True)
        return json.loads(rows[0][0]) if rows else None

    async def kv_delete(self, namespace: str, key: str) -> bool:
        return await self._call(sql.kv_delete, namespace, key, dt_ms(self._clock.now()))

    async def kv_list(self, namespace: str) -> list[dict[str, Any]]:
        rows = await self._call(sql.select, "SELECT key, entry FROM kv WHERE namespace = ? AND "
                                "(expiration IS NULL OR expiration > ?) ORDER BY key",
                                (namespace, dt_ms(self._clock.now())), read=True)
        return [{"key": k, **json.loads(e)} for k, e in rows]

    async def kv_list_all(self) -> list[dict[str, Any]]:
        rows = await self._call(sql.select, "SELECT namespace, key, entry FROM kv WHERE "
                                "(expiration IS NULL OR expiration > ?) ORDER BY namespace, key",
                                (dt_ms(self._clock.now()),), read=True)
        return [{"namespace": ns, "key": k, **json.loads(e)} for ns, k, e in rows]

    #### triggers #########################################################################################

    async def save_trigger(self, doc: dict[str, Any]) -> None:
        ns, fid, tid = trigger_key(doc)
        await self._call(sql.modify, "INSERT INTO triggers (namespace, flow_id, trigger_id, doc) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (namespace, flow_id, trigger_id) DO UPDATE SET doc = excluded.doc",
                         (ns, fid, tid, dumps(doc, "trigger")))

    async def get_trigger(self, namespace: str, flow_id: str, trigger_id: str) -> dict[str, Any] | None:
        rows = await self._call(sql.select, "SELECT doc FROM triggers WHERE namespace = ? AND flow_id = ? AND "
                                "trigger_id = ?", (namespace, flow_id, trigger_id), read=True)
        return json.loads(rows[0][0]) if rows else None

    async def list_triggers(self, namespace: str | None = None, flow_id: str | None = None) -> list[dict[str, Any]]:
        w = sql.Where()
        if namespace is not None:
            w.namespace("namespace", namespace)
        if flow_id is not None:
            w.add("flow_id = ?", flow_id)
        rows = await self._call(sql.select, "SELECT doc FROM triggers" + w.sql() + " ORDER BY namespace, flow_id, "
                                "trigger_id", tuple(w.params), read=True)
        return [json.loads(r[0]) for r in rows]

    async def delete_trigger(self, namespace: str, flow_id: str, trigger_id: str) -> bool:
        return await self._call(sql.modify,
                                "DELETE FROM triggers WHERE namespace = ? AND flow_id = ? AND trigger_id = ?",
                                (namespace, flow_id, trigger_id)) > 0

    async def swap_trigger(self, expected: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
        key = trigger_key(doc)
        if expected is not None and trigger_key(expected) != key:
            raise IllegalArgument("swap_trigger: the expected context is of another trigger")
        # compared as JSON values, on a copy the caller cannot change while the writer thread reads it
        old = json.loads(dumps(expected, "trigger")) if expected is not None else None
        return bool(await self._call(sql.swap_trigger, *key, old, dumps(doc, "trigger"), alone=True))

    #### generic small state ##############################################################################

    async def state_put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        if not kind or not key:
            raise IllegalArgument("state kind and key must be non-empty")
        await self._call(sql.modify, "INSERT INTO state (kind, key, value) VALUES (?, ?, ?) ON CONFLICT (kind, key) "
                         "DO UPDATE SET value = excluded.value", (kind, key, dumps(value, f"state {kind}/{key}")))

    async def state_get(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = await self._call(sql.select, "SELECT value FROM state WHERE kind = ? AND key = ?", (kind, key),
                                read=True)
        return json.loads(rows[0][0]) if rows else None

    async def state_delete(self, kind: str, key: str) -> bool:
        return await self._call(sql.modify, "DELETE FROM state WHERE kind = ? AND key = ?", (kind, key)) > 0

    async def swap_states(self, kind: str,
                          changes: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]) -> bool:
        if not kind or any(not key for key, _, _ in changes):
            raise IllegalArgument("state kind and key must be non-empty")
        rows = [(key, None if old is None else json.loads(dumps(old, f"state {kind}/{key}")),
                 None if new is None else dumps(new, f"state {kind}/{key}")) for key, old, new in changes]
        try:
            await self._call(sql.swap_states, kind, rows, alone=True)
        except sql.SwapConflict:
            return False
        return True

    #### cluster coordination #############################################################################

    def flow_lock(self, namespace: str, flow_id: str) -> tuple[str, int] | None:
        """The statement (and its key) that serialises the concurrency claims of one flow across servers;
        None when this connection is the only writer."""
        return None

    async def claim_concurrency_slot(self, namespace: str, flow_id: str, execution_id: str, limit: int) -> bool:
        if not namespace or not flow_id or not execution_id:
            raise IllegalArgument("namespace, flow id and execution id must be non-empty")
        return bool(await self._call(sql.claim_concurrency_slot, self.flow_lock(namespace, flow_id), namespace,
                                     flow_id, execution_id, int(limit), alone=True))

    async def state_list(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        rows = await self._call(sql.select, "SELECT key, value FROM state WHERE kind = ? ORDER BY key", (kind,),
                                read=True)
        return [(k, json.loads(v)) for k, v in rows]
