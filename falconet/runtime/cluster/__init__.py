"""Cluster membership of an engine (``engine.cluster``): which node runs which execution.

A node is one engine (one ``falconet server standalone`` process) with its own id, a random uuid per start
(:attr:`Cluster.node_id`, in the logs). :class:`SingleNode`, used with the memory and SQLite stores, owns
every execution and forwards nothing: each method is a no-op or returns at once. With a PostgreSQL store the
engine gets :class:`~falconet.runtime.cluster.leases.PostgresCluster`: execution leases renewed by a
heartbeat, claims of orphaned executions, self-fencing, and commands forwarded to the owner
(:mod:`.commands`).

The engine calls, in this order of an execution's life: :meth:`Cluster.own` before a new execution (or a
restarted one) is stored, :meth:`Cluster.route` before an action on an existing execution
(:data:`NOT_FORWARDED`: act here), :meth:`Cluster.release` once its end is durable. :meth:`Cluster.run`
starts the node's background work and hands the engine the executions it takes over (``resume``);
:meth:`Cluster.close` after the store closed.
"""
from __future__ import annotations

import sys
from typing import Any

from falconet.runtime.cluster.base import NOT_FORWARDED, Cluster, NodeFenced, SingleNode

__all__ = ["Cluster", "NodeFenced", "SingleNode", "make_cluster", "NOT_FORWARDED"]


def make_cluster(engine: Any) -> Cluster:
    """The cluster of ``engine``: PostgreSQL's when its store is a PostgreSQL database, else a single node."""
    postgres = sys.modules.get("falconet.runtime.store.postgres")  # not imported: not a PostgreSQL store
    if postgres is not None and isinstance(engine.store, postgres.PostgresStore):
        from falconet.runtime.cluster.leases import PostgresCluster

        return PostgresCluster(engine)
    return SingleNode()
