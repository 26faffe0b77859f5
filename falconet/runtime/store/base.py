"""The store interface: everything the engine persists, behind one seam (SQLite and in-memory backends).

Documents cross this interface as plain JSON-able dicts in Kestra's shapes (an execution is
``Execution.to_dict(private=True)``, a log line a LogEntry dict, …), so a backend never imports the
engine's model classes.

Write methods named ``*_nowait`` only enqueue: the writer commits them in batches (group commit) and
never blocks the caller; :meth:`Store.flush` waits until everything enqueued so far is durable. Reads
see every write enqueued before them (read-your-writes), because reads go through the same writer
thread/queue or consult the pending batch.
"""
from __future__ import annotations

import abc
import dataclasses
from datetime import datetime
from typing import Any, Iterable, Sequence


@dataclasses.dataclass
class FlowRecord:
    """One stored flow revision."""

    namespace: str
    id: str
    revision: int
    source: str
    deleted: bool = False
    disabled: bool = False
    updated: datetime | None = None


@dataclasses.dataclass
class ExecutionQuery:
    """Filters of ``GET /executions/search`` (all optional)."""

    q: str | None = None
    namespace: str | None = None            # prefix match on namespace ("a.b" matches "a.b" and "a.b.c")
    flow_id: str | None = None
    states: Sequence[str] = ()
    labels: Sequence[tuple[str, str]] = ()  # all must match
    start_date: datetime | None = None      # state.startDate >= start_date
    end_date: datetime | None = None        # state.startDate <= end_date
    trigger_execution_id: str | None = None
    child_filter: str | None = None         # "CHILD" (parentId/trigger from subflow) | "MAIN"
    page: int = 1
    size: int = 10
    sort: Sequence[str] = ()                # e.g. ["state.startDate:desc"]


@dataclasses.dataclass
class LogQuery:
    execution_id: str | None = None
    namespace: str | None = None
    flow_id: str | None = None
    task_id: str | None = None
    task_run_id: str | None = None
    outside_task_runs: bool = False         # only lines of no task run (the execution's own)
    attempt: int | None = None
    trigger_id: str | None = None
    min_level: str | None = None            # TRACE < DEBUG < INFO < WARN < ERROR
    q: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    page: int | None = None                 # None = all rows
    size: int | None = None


class Store(abc.ABC):
    """Persistent state of the engine. Every method is safe to call from trio tasks; blocking work is
    done off the trio thread. Cancelling a caller of an ``async`` method does not corrupt the store."""

    #### lifecycle ########################################################################################

    @abc.abstractmethod
    async def open(self) -> None:
        """Create/upgrade the schema and start the writer."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush pending writes and stop the writer."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Wait until every write enqueued before this call is committed."""

    #### flows ############################################################################################

    @abc.abstractmethod
    async def save_flow(self, record: FlowRecord) -> None:
        """Insert a new revision (namespace, id, revision) — revisions are never overwritten."""

    @abc.abstractmethod
    async def get_flow(self, namespace: str, flow_id: str, revision: int | None = None,
                       allow_deleted: bool = False) -> FlowRecord | None:
        """The latest (or given) revision; a flow whose latest revision is deleted is None unless allow_deleted."""

    @abc.abstractmethod
    async def list_flow_revisions(self, namespace: str, flow_id: str) -> list[FlowRecord]:
        """All revisions, ascending."""

    @abc.abstractmethod
    async def list_flows(self, namespace: str | None = None, include_deleted: bool = False) -> list[FlowRecord]:
        """Latest revision of every (non-deleted) flow, optionally under a namespace prefix."""

    #### executions #######################################################################################

    @abc.abstractmethod
    def save_execution_nowait(self, doc: dict[str, Any], *, doc_json: str | None = None) -> None:
        """Enqueue an upsert of an execution document; the writer keeps only the newest doc per id in a batch.
        ``doc_json``: the whole document as JSON text, serialised by the caller; ``doc`` then needs only
        its top-level fields (the engine builds the text from cached task-run pieces)."""

    @abc.abstractmethod
    async def save_execution(self, doc: dict[str, Any], *, doc_json: str | None = None) -> None:
        """Upsert and wait until durable (``doc_json`` as in :meth:`save_execution_nowait`)."""

    @abc.abstractmethod
    async def get_execution(self, execution_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def search_executions(self, query: ExecutionQuery) -> tuple[list[dict[str, Any]], int]:
        """(page of execution docs, total matching)."""

    @abc.abstractmethod
    async def list_unfinished_executions(self) -> list[dict[str, Any]]:
        """Every execution whose state is not terminal (for resume at start-up), oldest first."""

    @abc.abstractmethod
    async def delete_execution(self, execution_id: str) -> bool: ...

    #### logs and metrics #################################################################################

    @abc.abstractmethod
    def append_logs_nowait(self, entries: Iterable[dict[str, Any]]) -> None: ...

    @abc.abstractmethod
    async def get_logs(self, query: LogQuery) -> tuple[list[dict[str, Any]], int]:
        """Matching LogEntry dicts in timestamp order, and the total count."""

    @abc.abstractmethod
    async def count_logs_by_task_run(self, query: LogQuery) -> dict[str | None, int]:
        """Number of matching lines per ``taskRunId`` (``None`` for lines outside any task run);
        ``page`` and ``size`` are ignored."""

    @abc.abstractmethod
    async def delete_logs(self, query: LogQuery) -> int: ...

    @abc.abstractmethod
    def append_metrics_nowait(self, entries: Iterable[dict[str, Any]]) -> None: ...

    @abc.abstractmethod
    async def get_metrics(self, execution_id: str | None = None, *, namespace: str | None = None,
                          flow_id: str | None = None, task_id: str | None = None,
                          task_run_id: str | None = None, name: str | None = None,
                          start_date: datetime | None = None, end_date: datetime | None = None
                          ) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def delete_metrics(self, execution_id: str) -> int: ...

    #### key-value store ##################################################################################

    @abc.abstractmethod
    async def kv_put(self, namespace: str, key: str, entry: dict[str, Any]) -> None:
        """``entry`` = {"type", "value", "description"?, "creationDate", "updateDate", "expirationDate"?}."""

    @abc.abstractmethod
    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        """The entry, or None when missing or expired."""

    @abc.abstractmethod
    async def kv_delete(self, namespace: str, key: str) -> bool: ...

    @abc.abstractmethod
    async def kv_list(self, namespace: str) -> list[dict[str, Any]]:
        """Entries (with "key") of a namespace, expired ones excluded."""

    @abc.abstractmethod
    async def kv_list_all(self) -> list[dict[str, Any]]:
        """Entries (with "namespace" and "key") of every namespace, by namespace then key; expired ones excluded."""

    #### triggers (scheduler state) #######################################################################

    @abc.abstractmethod
    async def save_trigger(self, doc: dict[str, Any]) -> None:
        """Upsert a trigger context keyed by (namespace, flowId, triggerId)."""

    @abc.abstractmethod
    async def get_trigger(self, namespace: str, flow_id: str, trigger_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def list_triggers(self, namespace: str | None = None, flow_id: str | None = None) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def delete_trigger(self, namespace: str, flow_id: str, trigger_id: str) -> bool: ...

    @abc.abstractmethod
    async def swap_trigger(self, expected: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
        """Compare-and-set: store ``doc`` only if the stored context of its key is still ``expected`` (the
        document as read; None: no context stored). True when stored; False (nothing written) when another
        writer — another server's scheduler, an API call — changed it first."""

    #### generic small state (multiple-condition windows, concurrency queues…) ############################

    @abc.abstractmethod
    async def state_put(self, kind: str, key: str, value: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def state_get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def state_delete(self, kind: str, key: str) -> bool: ...

    @abc.abstractmethod
    async def state_list(self, kind: str) -> list[tuple[str, dict[str, Any]]]: ...

    @abc.abstractmethod
    async def swap_states(self, kind: str,
                          changes: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]) -> bool:
        """Compare-and-set of several entries of ``kind`` at once: every ``(key, expected, value)`` needs the
        stored value to still be ``expected`` (None: absent); then every one is set (``value`` None deletes),
        else none is. True when applied."""

    #### cluster coordination #############################################################################

    #: True when several Falconet servers may use this store at once (PostgreSQL): orchestration then
    #: coordinates through it (concurrency slots, flows created by other servers); memory and SQLite serve
    #: one server, which keeps that state in memory.
    shared: bool = False

    @abc.abstractmethod
    async def claim_concurrency_slot(self, namespace: str, flow_id: str, execution_id: str, limit: int) -> bool:
        """Admit ``execution_id`` (stored, of flow ``namespace.flow_id``) under a concurrency ``limit``, one
        claim per flow at a time across every server. The flow's running executions are those holding a
        slot whose execution is stored and not terminated (the slots of the others are freed here); the
        execution gets a slot — True — when it holds one already, or when running executions plus the QUEUED
        executions of the flow without a slot stored before it (start date, then insertion order: first in,
        first out) are fewer than ``limit``. False otherwise (nothing written)."""
