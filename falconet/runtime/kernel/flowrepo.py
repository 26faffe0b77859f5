"""The flow repository: every flow revision, parsed once and cached, and the latest revision of each flow.
The only writer of flows to the store; a lock keeps create/update/delete of flows serial."""
from __future__ import annotations

import logging
from typing import Any, Callable

import trio

from falconet.runtime.config import Config
from falconet.runtime.kernel.clock import Clock
from falconet.runtime.kernel.errors import FlowValidationError, IllegalArgument, InvalidEntity, NotFound, Violation
from falconet.runtime.flow.model import Flow
from falconet.runtime.flow.parsing import parse_flow, validate_flow_source
from falconet.runtime.kernel.execution import now
from falconet.runtime.store.base import FlowRecord, Store

log = logging.getLogger("falconet.engine")

#: flow sources at least this long (characters), or with this many characters inside ``{{ }}``, are parsed on
#: a worker thread: pure-Python YAML parsing takes about 3 µs per character, compiling a template (flow
#: validation compiles every one) up to 300 µs per character, and the trio thread must keep answering
PARSE_IN_THREAD = 8 * 1024
TEMPLATE_IN_THREAD = 512


def _parse_in_thread(source: str) -> bool:
    if len(source) >= PARSE_IN_THREAD:
        return True
    inside, pos = 0, 0
    while inside < TEMPLATE_IN_THREAD:
        start = source.find("{{", pos)
        if start < 0:
            return False
        end = source.find("}}", start + 2)
        if end < 0:
            return len(source) - start >= TEMPLATE_IN_THREAD - inside
        inside += end - start
        pos = end + 2
    return True


class FlowRepository:
    def __init__(self, config: Config, store: Store, registry: Any, clock: Clock):
        self.config = config
        self.store = store
        self.registry = registry
        self.clock = clock
        self.parse_limiter = trio.CapacityLimiter(2)  # parsing threads hold the GIL: leave the trio thread a share
        self._flows: dict[tuple[str, str, int], Flow] = {}
        self._broken: dict[tuple[str, str, int], FlowValidationError] = {}  # stored sources that no longer parse
        self._latest: dict[tuple[str, str], int] = {}
        #: incremented on every change of :meth:`latest` (a flow saved, deleted or loaded, or a refresh found one)
        self.changes = 0
        #: called after each of those changes (the scheduler wakes to evaluate a new or changed flow's triggers)
        self.on_change: list[Callable[[], None]] = []
        self._lock = trio.Lock()

    async def load(self) -> None:
        """Read the latest revision of every (not deleted) flow from the store."""
        for rec in await self.store.list_flows(include_deleted=False):
            self._latest[(rec.namespace, rec.id)] = rec.revision
        self._changed()

    async def refresh(self) -> None:
        """Read the latest revisions again: on a shared store other servers create, change and delete flows."""
        latest = {(rec.namespace, rec.id): rec.revision for rec in await self.store.list_flows(include_deleted=False)}
        if latest != self._latest:
            self._latest = latest
            self._changed()

    def _changed(self) -> None:
        self.changes += 1
        for callback in self.on_change:
            callback()

    def latest(self) -> dict[tuple[str, str], int]:
        """A copy of ``{(namespace, flow id): latest revision}`` of the flows not deleted."""
        return dict(self._latest)

    async def parse(self, source: str, revision: int = 1) -> Flow:
        """Parse and validate a source; a long one on a worker thread (at most two at a time), so a big or
        hostile source never stalls the trio thread (the YAML bounds keep each parse short, see limits.py)."""
        if not _parse_in_thread(source):
            return parse_flow(source, registry=self.registry, revision=revision,
                              plugin_defaults=self.config.plugin_defaults)
        return await self.clock.run_sync_in_thread(
            lambda: parse_flow(source, registry=self.registry, revision=revision,
                               plugin_defaults=self.config.plugin_defaults),
            limiter=self.parse_limiter)

    async def create(self, source: str) -> Flow:
        flow = await self.parse(source, 1)
        async with self._lock:
            existing = await self.store.get_flow(flow.namespace, flow.id, allow_deleted=True)
            if existing is not None and not existing.deleted:
                raise IllegalArgument(f"Flow id already exists: {flow.namespace}.{flow.id}")
            revision = existing.revision + 1 if existing is not None else 1
            return await self._save(flow, source, revision)

    async def update(self, namespace: str, flow_id: str, source: str) -> Flow:
        if await self.store.get_flow(namespace, flow_id) is None:  # 404 before 422, as Kestra answers
            raise NotFound(f"Flow '{namespace}.{flow_id}' not found")
        flow = await self.parse(source, 1)  # outside the lock: a long parse never holds other flow changes
        async with self._lock:
            existing = await self.store.get_flow(namespace, flow_id)
            if existing is None:
                raise NotFound(f"Flow '{namespace}.{flow_id}' not found")
            if flow.id != flow_id or flow.namespace != namespace:
                raise InvalidEntity([Violation("id", "Illegal flow id update")])
            if existing.source == source:
                flow.revision = existing.revision
                return flow
            return await self._save(flow, source, existing.revision + 1)

    async def put(self, source: str) -> Flow:
        """Create or update (used by the CLI and namespace/bulk updates)."""
        flow = await self.parse(source, 1)
        existing = await self.store.get_flow(flow.namespace, flow.id)
        if existing is None:
            return await self.create(source)
        return await self.update(flow.namespace, flow.id, source)

    async def _save(self, flow: Flow, source: str, revision: int) -> Flow:
        flow.revision = revision
        await self.store.save_flow(FlowRecord(flow.namespace, flow.id, revision, source, deleted=False,
                                              disabled=flow.disabled, updated=now()))
        self._flows[(flow.namespace, flow.id, revision)] = flow
        self._latest[(flow.namespace, flow.id)] = revision
        self._changed()
        return flow

    async def get(self, namespace: str, flow_id: str, revision: int | None = None,
                  allow_deleted: bool = False, skip_invalid: bool = False) -> Flow | None:
        """A flow revision (the latest when ``revision`` is None), parsed once and cached.

        A stored source that no longer parses (a plugin removed, a bound tightened) raises its
        :class:`FlowValidationError` — or gives None with ``skip_invalid`` (background services, start-up);
        it is parsed once and logged once, never again."""
        if revision is not None and (namespace, flow_id, revision) in self._flows:
            cached = self._flows[(namespace, flow_id, revision)]
            return cached if (allow_deleted or not cached.deleted) else None
        if revision is None and not allow_deleted and not self.store.shared:
            # this server is the store's only writer of flows (a store that is not shared serves one server):
            # its latest revision, kept by every create, update and delete, needs no read of the store
            latest = self._latest.get((namespace, flow_id))
            kept = self._flows.get((namespace, flow_id, latest)) if latest is not None else None
            if kept is not None and not kept.deleted:
                return kept
        rec = await self.store.get_flow(namespace, flow_id, revision, allow_deleted=allow_deleted)
        if rec is None:
            return None
        key = (rec.namespace, rec.id, rec.revision)
        flow = self._flows.get(key)
        if flow is None:
            broken = self._broken.get(key)
            if broken is None:
                source = rec.source
                if rec.deleted and not source:
                    prev = [r for r in await self.store.list_flow_revisions(namespace, flow_id) if r.source]
                    source = prev[-1].source if prev else ""
                try:
                    flow = await self.parse(source, rec.revision)
                except FlowValidationError as exc:
                    broken = self._broken[key] = exc
                    log.warning("stored flow %s.%s revision %d is invalid and is skipped: %s",
                                rec.namespace, rec.id, rec.revision, str(exc).replace("\n", "; ")[:1000])
            if broken is not None:
                if skip_invalid:
                    return None
                raise broken
            assert flow is not None
            flow.deleted = rec.deleted
            self._flows[key] = flow
        return flow

    async def list_revisions(self, namespace: str, flow_id: str) -> list[Flow]:
        out = []
        for rec in await self.store.list_flow_revisions(namespace, flow_id):
            if rec.deleted:
                continue
            flow = await self.get(namespace, flow_id, rec.revision, allow_deleted=True, skip_invalid=True)
            if flow is not None:
                out.append(flow)
        return out

    async def list_latest(self, namespace: str | None = None) -> list[Flow]:
        """The latest revision of every flow (in ``namespace``); stored flows that no longer parse are skipped."""
        out = []
        for rec in await self.store.list_flows(namespace):
            flow = await self.get(rec.namespace, rec.id, rec.revision, skip_invalid=True)
            if flow is not None:
                out.append(flow)
        return out

    async def delete(self, namespace: str, flow_id: str) -> None:
        async with self._lock:
            rec = await self.store.get_flow(namespace, flow_id)
            if rec is None:
                raise NotFound(f"Flow '{namespace}.{flow_id}' not found")
            await self.store.save_flow(FlowRecord(namespace, flow_id, rec.revision + 1, rec.source, deleted=True,
                                                  updated=now()))
            self._latest.pop((namespace, flow_id), None)
            self._changed()

    async def validate_source(self, source: str) -> list[dict[str, Any]]:
        """``POST /flows/validate``: one result per document (a long source on a worker thread)."""
        if not _parse_in_thread(source):
            return validate_flow_source(source, registry=self.registry)
        return await self.clock.run_sync_in_thread(lambda: validate_flow_source(source, registry=self.registry),
                                                   limiter=self.parse_limiter)
