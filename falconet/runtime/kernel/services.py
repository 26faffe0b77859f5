"""What the engine's services see of the engine: the :class:`Supervisor` (its actor supervision, which
services call but never own), the :class:`Kernel` (the engine as execution actors, run contexts and
orchestration see it) and the optional :class:`ExecutionHooks` that orchestration plugs in.

This module sits below everything that uses the engine: the engine implements these Protocols and nothing
under ``falconet/runtime`` imports :mod:`.engine` (the layering test checks there is no import circle). The
Protocols are generic in the execution actor type ``A`` (:class:`~.actors.ExecutionActor`), which this
module does not import either.

Each service owns its state (see README, "How it works"): :class:`~.flowrepo.FlowRepository` the flow
revisions and their parse cache, :class:`~.admission.Admission` the concurrency queues,
:class:`~.lifecycle.ExecutionLifecycle` the actions on existing executions, :class:`~.kvcache.KVCache` the
key-value entries read by expressions, :class:`~.secretstore.Secrets` the secret values and the key of
SECRET inputs, :class:`~.executions.ExecutionInputs` the typing of inputs, uploads and flow outputs. The engine builds
them in its constructor and hands each its collaborators there.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Protocol, Sequence, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.cluster.base import Cluster
    from falconet.runtime.config import Config
    from falconet.runtime.expr.render import Renderer
    from falconet.runtime.kernel.clock import Clock
    from falconet.runtime.flow.model import Flow, TaskSpec
    from falconet.runtime.kernel.execution import Execution, TaskRun
    from falconet.runtime.kernel.flowrepo import FlowRepository
    from falconet.runtime.kernel.kvcache import KVCache
    from falconet.runtime.kernel.machine import StartSubflow
    from falconet.runtime.kernel.progress import ProgressWrites
    from falconet.runtime.kernel.recovery import Marks, ProcessRegistry
    from falconet.runtime.kernel.secretstore import Secrets
    from falconet.runtime.kernel.state import State
    from falconet.runtime.storage.base import Storage
    from falconet.runtime.store.base import Store

A = TypeVar("A")  # the execution actor type
A_contra = TypeVar("A_contra", contravariant=True)


class Supervisor(Protocol[A]):
    """The engine as its services see it: the running execution actors, the nursery they live in and the
    engine's clock."""

    actors: dict[str, A]
    clock: "Clock"
    cluster: "Cluster"
    progress_writes: "ProgressWrites"

    def start_actor(self, ex: "Execution", flow: "Flow") -> A: ...

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None: ...

    def persist(self, ex: "Execution", *, publish: bool = True) -> None: ...

    def publish_execution(self, ex: "Execution") -> None: ...

    def mark_ended(self, execution_id: str) -> None: ...

    async def settle(self, execution_id: str) -> None: ...

    async def load_execution(self, execution_id: str) -> "Execution": ...

    def kill_children(self, ex: "Execution", reason: str) -> None: ...


class Scheduling(Protocol):
    """Admission as orchestration sees it (:class:`~.admission.Admission`)."""

    def schedule(self, ex: "Execution", flow: "Flow") -> None:
        """Start ``ex`` now, at its schedule date or when its flow's concurrency allows."""
        ...


class OutputTyping(Protocol):
    """Input typing as the execution actor sees it (:class:`~.executions.ExecutionInputs`)."""

    def flow_outputs(self, flow: "Flow", variables: dict[str, Any]) -> dict[str, Any]:
        """The flow's ``outputs`` rendered and typed."""
        ...


class Kernel(Supervisor[A], Protocol[A]):
    """The engine as execution actors, task-run contexts and orchestration see it: its configuration and
    services, the store and storage, and the calls that create, persist and publish executions."""

    config: "Config"
    store: "Store"
    storage: "Storage"
    renderer: "Renderer"
    envs: dict[str, str]
    flows: "FlowRepository"
    kv: "KVCache"
    secrets: "Secrets"
    processes: "ProcessRegistry"
    after_execution: "Marks"
    execution_hooks: "ExecutionHooks[A] | None"

    @property
    def admission(self) -> Scheduling: ...

    @property
    def inputs(self) -> OutputTyping: ...

    def temp_root(self) -> Path: ...

    async def put_flow(self, source: str) -> "Flow": ...

    async def get_flow(self, namespace: str, flow_id: str, revision: int | None = None,
                       allow_deleted: bool = False, skip_invalid: bool = False) -> "Flow | None": ...

    async def list_flows(self, namespace: str | None = None) -> list["Flow"]: ...

    async def delete_flow(self, namespace: str, flow_id: str) -> None: ...

    async def create_execution(self, namespace: str, flow_id: str, *, inputs: Mapping[str, Any] | None = None,
                               files: Mapping[str, tuple[str, Path]] | None = None,
                               labels: Sequence[tuple[str, str]] = (), revision: int | None = None,
                               schedule_date: datetime | None = None, trigger: dict[str, Any] | None = None,
                               parent_labels: Sequence[tuple[str, str]] = (), start: bool = True) -> dict[str, Any]:
        ...

    async def get_execution(self, execution_id: str) -> dict[str, Any] | None: ...

    async def wait_for_end(self, execution_id: str) -> dict[str, Any]: ...

    async def resume(self, execution_id: str, *, inputs: Mapping[str, Any] | None = None,
                     files: Mapping[str, tuple[str, Path]] | None = None) -> dict[str, Any]: ...

    async def start_subflow(self, parent: A, command: "StartSubflow") -> None: ...

    def publish_task_run(self, ex: "Execution", tr: "TaskRun") -> None: ...

    def emit_log(self, entry: dict[str, Any]) -> None: ...

    def emit_metric(self, entry: dict[str, Any]) -> None: ...

    async def kv_get(self, namespace: str, key: str) -> dict[str, Any] | None: ...

    async def kv_put(self, namespace: str, key: str, value: Any, *, kv_type: str | None = None,
                     ttl: str | None = None, description: str | None = None) -> None: ...

    async def kv_delete(self, namespace: str, key: str) -> bool: ...


class ExecutionHooks(Protocol[A_contra]):
    """What orchestration across executions (:class:`~.orchestration.Orchestration`) adds to the kernel;
    the engine runs without them (``Engine.hooks`` is None) until :meth:`Engine.run` installs them."""

    async def run_for_each_item(self, parent: A_contra, tr: "TaskRun", task: "TaskSpec") -> None:
        """Run the ``<id>_items`` child of a ForEachItem task run and report its end to ``parent``."""
        ...

    def retry_state(self, actor: A_contra, state: "State") -> "State":
        """The final state of an ending execution: FAILED becomes RETRIED when a CREATE_NEW_EXECUTION
        retry applies."""
        ...

    async def on_execution_end(self, ex: "Execution", flow: "Flow") -> None:
        """After an execution ended: its retry execution, ``stopAfter``, Flow triggers."""
        ...

    def watch_execution_state(self, ex: "Execution") -> None:
        """The state of ``ex`` changed (Flow triggers on non-terminal states); never raises."""
        ...
