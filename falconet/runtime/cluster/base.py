"""The :class:`Cluster` interface and its single-node implementation (see the package docstring)."""
from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable, Sequence

import trio

__all__ = ["Cluster", "NodeFenced", "SingleNode", "NOT_FORWARDED", "Resumer"]

#: what :meth:`Cluster.route` answers when the action is to be carried out by this node
NOT_FORWARDED: Any = object()

#: ``resume(executions)``: the engine's start-up path for executions this node now owns (documents)
Resumer = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]


class NodeFenced(RuntimeError):
    """This node could not renew its execution leases in time: it stopped its executions and must stop
    (another node may have claimed them)."""


class Cluster:
    """The interface, implemented for one node alone (:class:`SingleNode`) and for PostgreSQL."""

    #: True when other nodes may share the store (commands may be forwarded, leases exist)
    shared = False

    def __init__(self) -> None:
        self.node_id = str(uuid.uuid4())

    async def run(self, resume: Resumer, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Resume (with ``resume``) the executions this node takes over at start-up, report started, then do
        the node's background work until cancelled."""
        task_status.started()

    async def close(self) -> None:
        """The engine stopped and its store is flushed and closed."""

    async def own(self, execution_id: str) -> None:
        """Take the lease of a new (or restarted) execution; called before it is stored."""

    def release(self, execution_id: str) -> None:
        """The end of the execution is stored (or about to be, by writes already queued): drop its lease."""

    async def route(self, execution_id: str, action: str, args: Sequence[Any],
                    kwargs: dict[str, Any]) -> Any:
        """Carry out ``action`` on the node that owns the execution and return its answer, or
        :data:`NOT_FORWARDED` when this node is to carry it out itself."""
        return NOT_FORWARDED


class SingleNode(Cluster):
    """The only node of its store: owns every execution (the engine resumes the unfinished ones at
    start-up), forwards nothing, costs nothing."""
