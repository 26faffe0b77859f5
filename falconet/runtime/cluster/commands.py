"""Commands forwarded to the node that owns an execution (kill, pause, resume, restart… sent to another node).

The node that received the call writes a row in ``cluster_commands`` addressed to the owner (action, JSON
arguments, uploaded files inlined) and sends ``NOTIFY falconet_commands`` with the owner's node id; the owner,
woken through its LISTEN connection (:mod:`.listen`), takes its pending rows (``FOR UPDATE SKIP LOCKED``),
applies each with the same lifecycle method, writes the answer — the result, or the engine error (class and
message), which the caller raises again, so the HTTP client gets the owner's answer or Kestra's error body —
and notifies the caller's node the same way. Both sides also look at the table every ``POLL`` seconds, in
case a notification was lost.

The caller waits at most ``TIMEOUT`` seconds. While it waits it watches the owner's lease: when it expired
before the owner took the command, the command is withdrawn and routed again (the execution is claimed by a
live node); when the owner took it and then disappeared, the caller gets a clear error (the action may or
may not have been applied; the execution resumes on another node).
"""
from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import trio

from falconet.runtime.cluster.base import NOT_FORWARDED
from falconet.runtime.kernel import errors

log = logging.getLogger("falconet.cluster")

CHANNEL = "falconet_commands"
#: seconds between two looks at the table without a notification (owner: its commands; caller: its answer)
POLL = 1.0
#: seconds between two checks of the owner's lease while a caller waits
LEASE_CHECK = 0.5
#: seconds a caller waits for the owner's answer
TIMEOUT = 60.0
#: the errors an owner's answer may carry (raised again on the caller's node)
_ERRORS: dict[str, type[errors.FalconetError]] = {
    cls.__name__: cls for cls in (errors.NotFound, errors.IllegalState, errors.IllegalArgument,
                                  errors.BadRequest, errors.InvalidEntity)}


#### encoding ##############################################################################################

def encode_args(args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """JSON of the arguments; uploaded files (``files``: id -> (name, local path)) travel inline."""
    kw = dict(kwargs)
    files = kw.pop("files", None) or {}
    inline = {key: [name, base64.b64encode(Path(path).read_bytes()).decode("ascii")]
              for key, (name, path) in files.items()}
    return json.dumps({"args": list(args), "kwargs": kw, "files": inline}, default=str)


def decode_args(text: str, temp_root: Path) -> tuple[list[Any], dict[str, Any]]:
    """The arguments; inlined files are written to new files under ``temp_root`` (moved by the action)."""
    import uuid

    data = json.loads(text)
    kwargs = dict(data["kwargs"])
    if data.get("files"):
        files = {}
        for key, (name, content) in data["files"].items():
            path = temp_root / f"upload-{uuid.uuid4().hex}"
            path.write_bytes(base64.b64decode(content))
            files[str(key)] = (str(name), path)
        kwargs["files"] = files
    return list(data["args"]), kwargs


def encode_answer(result: Any = None, error: BaseException | None = None) -> str:
    if error is None:
        return json.dumps({"value": result}, default=str)
    name = type(error).__name__ if type(error).__name__ in _ERRORS else "IllegalState"
    return json.dumps({"error": name, "message": str(error)})


def decode_answer(text: str) -> Any:
    """The result, or raise the owner's error."""
    data = json.loads(text)
    if "error" in data:
        raise _ERRORS.get(data["error"], errors.IllegalState)(data["message"])
    return data["value"]


#### SQL ###################################################################################################

def _send(conn: Any, node: str, caller: str, execution_id: str, action: str, args: str) -> int:
    cmd_id = conn.execute("INSERT INTO cluster_commands (node_id, caller_node_id, execution_id, action, args, "
                          "status) VALUES (%s, %s, %s, %s, %s, 'pending') RETURNING id",
                          (node, caller, execution_id, action, args)).fetchone()[0]
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, node))  # delivered at commit
    return int(cmd_id)


def _answer_of(conn: Any, cmd_id: int) -> tuple[str, str | None] | None:
    row = conn.execute("SELECT status, answer FROM cluster_commands WHERE id = %s", (cmd_id,)).fetchone()
    return (row[0], row[1]) if row else None


def _withdraw(conn: Any, cmd_id: int) -> bool:
    """Delete the command unless the owner took it; True when withdrawn."""
    return conn.execute("DELETE FROM cluster_commands WHERE id = %s AND status = 'pending' RETURNING id",
                        (cmd_id,)).fetchone() is not None


def _forget(conn: Any, cmd_id: int) -> None:
    conn.execute("DELETE FROM cluster_commands WHERE id = %s", (cmd_id,))


def _take(conn: Any, node: str) -> list[tuple[int, str, str, str, str]]:
    return conn.execute(
        "UPDATE cluster_commands c SET status = 'running' FROM (SELECT id FROM cluster_commands "
        "WHERE node_id = %s AND status = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED) p WHERE c.id = p.id "
        "RETURNING c.id, c.caller_node_id, c.execution_id, c.action, c.args", (node,)).fetchall()


def _answer(conn: Any, cmd_id: int, caller: str, answer: str) -> None:
    conn.execute("UPDATE cluster_commands SET status = 'done', answer = %s WHERE id = %s", (answer, cmd_id))
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, caller))


#### the two sides #########################################################################################

class Commands:
    def __init__(self, cluster: Any) -> None:
        """``cluster``: the node's :class:`~falconet.runtime.cluster.leases.PostgresCluster`."""
        self.cluster = cluster
        self._wakeup = trio.Event()   # commands for this node were announced
        self._answers = trio.Event()  # answers to this node's commands were announced

    async def forward(self, node: str, execution_id: str, action: str, args: Sequence[Any],
                      kwargs: dict[str, Any]) -> Any:
        """Send the command to ``node`` and return its answer (or raise its error); :data:`NOT_FORWARDED`
        when the owner's lease expired before it took the command (route again)."""
        db = self.cluster.db
        cmd_id = await db.run(_send, node, self.cluster.node_id, execution_id, action, encode_args(args, kwargs))
        try:
            with trio.move_on_after(TIMEOUT):
                checked = trio.current_time()
                while True:
                    answers = self._answers
                    status = await db.run(_answer_of, cmd_id)
                    if status is not None and status[0] == "done" and status[1] is not None:
                        return decode_answer(status[1])
                    with trio.move_on_after(min(POLL, LEASE_CHECK)):
                        await answers.wait()
                    if trio.current_time() - checked < LEASE_CHECK:
                        continue
                    checked = trio.current_time()
                    lease = await self.cluster.lease_of(execution_id)
                    if lease is not None and lease == (node, True):
                        continue
                    if await db.run(_withdraw, cmd_id):
                        return NOT_FORWARDED
                    if lease is None or lease[0] != node:  # the owner ended it or lost it while applying
                        status = await db.run(_answer_of, cmd_id)
                        if status is not None and status[1] is not None:
                            return decode_answer(status[1])
                        raise errors.Unavailable(f"node {node} running execution '{execution_id}' stopped while "
                                                 f"applying '{action}'; the execution resumes on another node, "
                                                 "try again")
            if await db.run(_withdraw, cmd_id):
                raise errors.Unavailable(f"node {node} running execution '{execution_id}' did not take '{action}' "
                                f"within {TIMEOUT:.0f} s")
            raise errors.Unavailable(f"node {node} running execution '{execution_id}' did not answer '{action}' "
                            f"within {TIMEOUT:.0f} s")
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await db.run(_forget, cmd_id)

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Take the commands addressed to this node and apply them (each in its own task); wake the callers
        waiting for answers. Woken by ``NOTIFY falconet_commands`` (payload: a node id), and every POLL s."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._listen)
            task_status.started()
            while True:
                with trio.move_on_after(POLL):
                    await self._wakeup.wait()
                self._wakeup = trio.Event()
                try:
                    taken = await self.cluster.db.run(_take, self.cluster.node_id)
                except Exception as exc:  # the database is unreachable: the heartbeat decides about fencing
                    log.warning("node %s: reading commands failed: %s", self.cluster.node_id, exc)
                    continue
                for cmd_id, caller, execution_id, action, args in taken:
                    nursery.start_soon(self._apply, cmd_id, caller, execution_id, action, args)

    async def _listen(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from falconet.runtime.cluster.listen import NotificationsMissed

        async with self.cluster.listener.subscribe(CHANNEL) as sub:
            task_status.started()
            while True:
                try:
                    payload = await sub.receive()
                except NotificationsMissed:
                    payload = self.cluster.node_id
                if payload == self.cluster.node_id:  # commands for this node, or answers to its own
                    self._wakeup.set()
                    self._answers.set()
                    self._answers = trio.Event()

    async def _apply(self, cmd_id: int, caller: str, execution_id: str, action: str, args: str) -> None:
        engine = self.cluster.engine
        try:
            method = getattr(engine.lifecycle, action) if action in ROUTED else None
            if method is None:
                raise errors.BadRequest(f"unknown command '{action}'")
            pos, kw = decode_args(args, engine.temp_root())
            answer = encode_answer(await method(execution_id, *pos, **kw))
        except errors.FalconetError as exc:
            answer = encode_answer(error=exc)
        except Exception as exc:  # an engine bug: the caller gets an error, this node goes on
            log.exception("node %s: command %s on execution %s failed", self.cluster.node_id, action, execution_id)
            answer = encode_answer(error=errors.IllegalState(f"{action} failed on node "
                                                             f"{self.cluster.node_id}: {exc!r}"))
        try:
            await self.cluster.db.run(_answer, cmd_id, caller, answer)
        except Exception as exc:  # the caller times out and reports it
            log.warning("node %s: the answer to command %s could not be written: %s", self.cluster.node_id,
                        cmd_id, exc)


#: the lifecycle actions that are forwarded to the owner of the execution
ROUTED = frozenset({"kill", "pause", "resume", "restart", "replay", "change_status", "set_labels",
                    "set_task_run_state", "unqueue", "force_run", "delete"})
