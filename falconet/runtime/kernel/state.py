"""Kestra's execution and task-run states, and the predicates Kestra defines on them.

Pure data: no trio, no I/O. Mirrors ``io.kestra.core.models.flows.State`` (0.21 enum order).
"""
from __future__ import annotations

import enum


class State(str, enum.Enum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    QUEUED = "QUEUED"
    RETRYING = "RETRYING"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"

    def __str__(self) -> str:
        return self.value

    @property
    def is_terminated(self) -> bool:
        return self in TERMINATED

    @property
    def is_created(self) -> bool:
        return self in (State.CREATED, State.RESTARTED)

    @property
    def is_running(self) -> bool:
        return self in (State.RUNNING, State.KILLING)

    @property
    def is_paused(self) -> bool:
        return self is State.PAUSED

    @property
    def is_failed(self) -> bool:
        return self is State.FAILED

    @property
    def is_retrying(self) -> bool:
        return self in (State.RETRYING, State.RETRIED)

    @property
    def is_restartable(self) -> bool:
        return self is State.FAILED or self is State.PAUSED

    @property
    def is_resumable(self) -> bool:
        return self in (State.PAUSED, State.RETRYING, State.CREATED)


TERMINATED = frozenset(
    {State.FAILED, State.WARNING, State.SUCCESS, State.KILLED, State.CANCELLED, State.RETRIED, State.SKIPPED}
)

# "Worst" order used to resolve a parent's final state from its children: higher wins.
_SEVERITY = {
    State.SUCCESS: 0,
    State.SKIPPED: 0,
    State.PAUSED: 1,
    State.WARNING: 2,
    State.FAILED: 3,
    State.RETRIED: 3,
    State.CANCELLED: 3,
    State.KILLED: 4,
}


def worst(states: "list[State] | tuple[State, ...]") -> State:
    """The final state of a parent given its children's terminal states (KILLED > FAILED > WARNING > PAUSED > SUCCESS).

    An empty list (all children disabled or skipped) resolves to SUCCESS.
    """
    result = State.SUCCESS
    rank = 0
    for s in states:
        r = _SEVERITY.get(s, 0)
        if r > rank:
            rank, result = r, s
    if result in (State.RETRIED, State.CANCELLED):
        return State.FAILED if result is State.RETRIED else result
    return result
