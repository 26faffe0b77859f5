"""What the engine's services see of the engine: the :class:`Supervisor` (its actor supervision, which
services call but never own), and the optional :class:`ExecutionHooks` that orchestration plugs in.

Each service owns its state (see README, "How it works"): :class:`~.flowrepo.FlowRepository` the flow
revisions and their parse cache, :class:`~.admission.Admission` the concurrency queues,
:class:`~.lifecycle.ExecutionLifecycle` the actions on existing executions, :class:`~.kvcache.KVCache` the
key-value entries read by expressions, :class:`~.secretstore.Secrets` the secret values and the key of
SECRET inputs, :class:`~.executions.ExecutionInputs` the typing of inputs, uploads and flow outputs. The engine builds
them in its constructor and hands each its collaborators there.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from falconet.runtime.kernel.actors import ExecutionActor
    from falconet.runtime.kernel.clock import Clock
    from falconet.runtime.flow.model import Flow, TaskSpec
    from falconet.runtime.kernel.execution import Execution, TaskRun
    from falconet.runtime.kernel.state import State


class Supervisor(Protocol):
    """The engine as its services see it: the running execution actors, the nursery they live in and the
    engine's clock."""

    actors: dict[str, "ExecutionActor"]
    clock: "Clock"

    def start_actor(self, ex: "Execution", flow: "Flow") -> "ExecutionActor": ...

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None: ...

    def persist(self, ex: "Execution", *, publish: bool = True) -> None: ...

    def publish_execution(self, ex: "Execution") -> None: ...

    def mark_ended(self, execution_id: str) -> None: ...

    async def settle(self, execution_id: str) -> None: ...

    async def load_execution(self, execution_id: str) -> "Execution": ...

    def kill_children(self, ex: "Execution", reason: str) -> None: ...


class ExecutionHooks(Protocol):
    """What orchestration across executions (:class:`~.orchestration.Orchestration`) adds to the kernel;
    the engine runs without them (``Engine.hooks`` is None) until :meth:`Engine.run` installs them."""

    async def run_for_each_item(self, parent: "ExecutionActor", tr: "TaskRun", task: "TaskSpec") -> None:
        """Run the ``<id>_items`` child of a ForEachItem task run and report its end to ``parent``."""
        ...

    def retry_state(self, actor: "ExecutionActor", state: "State") -> "State":
        """The final state of an ending execution: FAILED becomes RETRIED when a CREATE_NEW_EXECUTION
        retry applies."""
        ...

    async def on_execution_end(self, ex: "Execution", flow: "Flow") -> None:
        """After an execution ended: its retry execution, ``stopAfter``, Flow triggers."""
        ...

    def watch_execution_state(self, ex: "Execution") -> None:
        """The state of ``ex`` changed (Flow triggers on non-terminal states); never raises."""
        ...
