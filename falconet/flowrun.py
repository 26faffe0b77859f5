"""``falconet flow run``: run one flow in an in-process engine, without a server.

stdout carries the final execution JSON and nothing else (pipe it to ``jq``); logs, progress and messages go
to stderr. On a terminal (stderr is a TTY) a progress line follows each finished task run. A Pause without a
timer is resumed with ``--resume-inputs``, or after a prompt on a terminal; otherwise the run stops and says
how to resume. Ctrl-C kills the execution and prints one line (exit 130).
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence, TextIO

import trio

from falconet.runtime.kernel.bus import Event, Overflow, Subscription
from falconet.runtime.config import Config
from falconet.runtime.kernel.errors import FalconetError, FlowValidationError
from falconet.runtime.kernel.state import State

INTERRUPTED = 130


class UsageError(Exception):
    """A command-line value that cannot be used (exit 2)."""


def parse_values(items: Sequence[str], option: str, tmp: Path) -> tuple[dict[str, Any], dict[str, tuple[str, Path]]]:
    """``KEY=VALUE`` items as (values, files); ``KEY=@path`` copies a local file for a FILE input."""
    values: dict[str, Any] = {}
    files: dict[str, tuple[str, Path]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} expects KEY=VALUE, got {item!r}")
        if value.startswith("@"):
            src = Path(value[1:])
            if not src.is_file():
                raise UsageError(f"input file not found: {src}")
            copy = Path(tempfile.mkdtemp(prefix="input-", dir=tmp)) / src.name
            shutil.copyfile(src, copy)         # the engine moves uploads into its storage
            files[key] = (src.name, copy)
        else:
            values[key] = value
    return values, files


def parse_labels(items: Sequence[str]) -> list[tuple[str, str]]:
    labels = []
    for item in items:
        key, sep, value = item.partition(":")
        if not sep:
            raise UsageError(f"--label expects KEY:VALUE, got {item!r}")
        labels.append((key, value))
    return labels


class Reporter:
    """Writes what happens to stderr: log lines, a progress line per finished task run (on a TTY)."""

    def __init__(self, out: TextIO, execution_id: str, *, progress: bool, top_level: Sequence[str] = ()):
        self.out = out
        self.execution_id = execution_id         # the main execution; others (subflows) show their flow id
        self.progress = progress
        self.started = time.monotonic()
        self.task_runs: dict[str, str] = {}      # task run id -> state, of the main execution
        self.pending = list(top_level)           # top-level task ids without a task run yet

    def show(self, event: Event) -> dict[str, Any] | None:
        """Print an event; the paused task run when the main execution is PAUSED."""
        main = event.execution_id == self.execution_id
        if event.kind == "log":
            self.log(event.data, None if main else event.flow_id)
        elif event.kind == "taskrun" and main:
            self.task_run(event.data)
        elif event.kind == "execution" and main and event.state == "PAUSED":
            paused = [tr for tr in event.data.get("taskRunList") or () if tr["state"]["current"] == "PAUSED"]
            return paused[0] if paused else None
        return None

    def drain(self, events: Subscription) -> None:
        """Print the events still buffered (the last ones of a run that ended)."""
        while True:
            try:
                self.show(events.receive_nowait())
            except trio.WouldBlock:
                return
            except Overflow as exc:
                self.say(f"falconet: {exc.dropped} events not shown (output too slow)")

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def log(self, entry: dict[str, Any], flow_id: str | None) -> None:
        where = entry.get("taskId") or "-"
        if flow_id:
            where = f"{flow_id}/{where}"
        self.say(f"{entry['timestamp']} {entry['level']:<5} [{where}] {entry['message']}")

    def task_run(self, run: dict[str, Any]) -> None:
        state = run["state"]["current"]
        before = self.task_runs.get(run["id"])
        self.task_runs[run["id"]] = state
        if run["taskId"] in self.pending:
            self.pending.remove(run["taskId"])
        if not self.progress or before == state or not State(state).is_terminated:
            return
        done = sum(State(s).is_terminated for s in self.task_runs.values())
        total = len(self.task_runs) + len(self.pending)     # grows as flowables create task runs
        value = f"[{run['value']}]" if run.get("value") is not None else ""
        elapsed = time.monotonic() - self.started
        self.say(f"[{done}/{total} tasks, {elapsed:.1f}s] {run['taskId']}{value} {state}")


async def run(args: argparse.Namespace, config: Config, *, stdin: TextIO | None = None,
              stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """The ``flow run`` command; returns the exit code."""
    from falconet.runtime.kernel.recovery import clean_abandoned_temp_dirs, private_temp_dir

    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    await trio.to_thread.run_sync(clean_abandoned_temp_dirs)  # what killed runs left behind
    tmp, lock = private_temp_dir(prefix="falconet-run-")
    try:
        return await _run(args, config, tmp, stdin, stdout, stderr)
    except UsageError as exc:
        print(f"falconet: {exc}", file=stderr)
        return 2
    finally:
        lock.release()
        shutil.rmtree(tmp, ignore_errors=True)


async def _run(args: argparse.Namespace, config: Config, tmp: Path, stdin: TextIO, stdout: TextIO,
               stderr: TextIO) -> int:
    from falconet.cli import flow_files
    from falconet.runtime.kernel.startup import open_engine

    path = Path(args.file)
    inputs, files = parse_values(args.input, "--input", tmp)
    labels = parse_labels(args.label)
    resume_items = None if args.resume_inputs is None else [i for group in args.resume_inputs for i in group]
    def subflow_files() -> list[Path]:
        return [f for f in flow_files(args.flows) if f.resolve() != path.resolve()]

    try:
        subflows = await trio.to_thread.run_sync(subflow_files)
    except FileNotFoundError as exc:
        raise UsageError(f"no such file or folder: {exc.args[0]}") from None
    store = "sqlite" if args.data_dir else "memory"
    async with open_engine(args.data_dir, store=store, config=config if args.data_dir else None) as engine:
        for f in [*subflows, path]:
            try:
                flow = await engine.put_flow(f.read_text(encoding="utf-8"))
            except FlowValidationError as exc:
                for v in exc.violations:
                    print(f"{f}:{v.line or 0}: {v.path + ': ' if v.path else ''}{v.message}", file=stderr)
                return 1
        with engine.bus.subscribe(max_buffer=100_000) as events:
            try:
                created = await engine.create_execution(flow.namespace, flow.id, inputs=inputs, files=files,
                                                        labels=labels)
            except FalconetError as exc:
                print(f"falconet: {exc}", file=stderr)
                return 1
            execution_id = created["id"]
            reporter = Reporter(stderr, execution_id, progress=stderr.isatty(), top_level=[t.id for t in flow.tasks])
            outcome: dict[str, Any] = {}
            with trio.open_signal_receiver(signal.SIGINT) as interrupts:
                async with trio.open_nursery() as nursery:
                    async def watch_interrupts() -> None:
                        async for _ in interrupts:
                            outcome["interrupted"] = True
                            nursery.cancel_scope.cancel(reason="Ctrl-C")
                            return

                    async def follow() -> None:
                        await _follow(engine, flow, execution_id, events, reporter, resume_items, stdin, tmp,
                                      outcome, nursery.cancel_scope)

                    async def wait() -> None:
                        outcome["final"] = await engine.wait_for_end(execution_id)
                        nursery.cancel_scope.cancel(reason="the execution ended")

                    nursery.start_soon(watch_interrupts)
                    nursery.start_soon(follow)
                    nursery.start_soon(wait)
            if outcome.get("interrupted"):
                with trio.move_on_after(10) as cleanup:
                    cleanup.shield = True
                    current = await engine.get_execution(execution_id)
                    if current and not State(current["state"]["current"]).is_terminated:
                        await engine.kill(execution_id)
                        await engine.wait_for_end(execution_id)
                reporter.say(f"falconet: interrupted, execution {execution_id} killed")
                return INTERRUPTED
            reporter.drain(events)
            final = outcome.get("final") or await engine.get_execution(execution_id)
    if final is None:
        print(f"falconet: execution {execution_id} no longer exists", file=stderr)
        return 1
    print(json.dumps(final, indent=2), file=stdout, flush=True)
    return 0 if final["state"]["current"] in ("SUCCESS", "WARNING") else 1


async def _follow(engine: Any, flow: Any, execution_id: str, events: Subscription, reporter: Reporter,
                  resume_items: list[str] | None, stdin: TextIO, tmp: Path, outcome: dict[str, Any],
                  scope: trio.CancelScope) -> None:
    """Print the events of the run; answer the pauses of the main execution."""
    answered: set[str] = set()
    while True:
        try:
            paused = reporter.show(await events.receive())
        except Overflow as exc:
            reporter.say(f"falconet: {exc.dropped} events not shown (output too slow)")
            continue
        if paused is None or paused["id"] in answered:
            continue
        answered.add(paused["id"])
        task = flow.find_task(paused["taskId"])
        if not await _answer_pause(engine, task, execution_id, reporter, resume_items, stdin, tmp):
            outcome["final"] = await engine.get_execution(execution_id)
            scope.cancel(reason="paused, and nothing can resume it")
            return


async def _answer_pause(engine: Any, task: Any, execution_id: str, reporter: Reporter,
                        resume_items: list[str] | None, stdin: TextIO, tmp: Path) -> bool:
    """Resume a pause, or leave a timed one to its timer; False when nothing can resume it."""
    task_id = task.id if task else "?"
    specs = list((task.props.get("onResume") if task else None) or [])
    timed = task is not None and (task.timeout is not None
                                  or any(task.props.get(k) for k in ("delay", "pauseDuration")))
    if resume_items is not None:
        values, files = parse_values(resume_items, "--resume-inputs", tmp)
        reporter.say(f"falconet: task {task_id} paused the execution; resuming it with --resume-inputs")
        return await _resume(engine, execution_id, values, files, reporter)
    if timed:
        reporter.say(f"falconet: task {task_id} paused the execution; it resumes when its delay elapses")
        return True
    if stdin.isatty() and reporter.out.isatty():
        while True:             # ask again until the answers are valid (Ctrl-C stops)
            answers = await trio.to_thread.run_sync(_prompt, task_id, specs, stdin, reporter, abandon_on_cancel=True)
            try:
                values, files = parse_values([f"{k}={v}" for k, v in answers.items()], "input", tmp)
            except UsageError as exc:
                reporter.say(f"falconet: {exc}")
                continue
            if await _resume(engine, execution_id, values, files, reporter):
                return True
            current = await engine.get_execution(execution_id)
            if current is None or current["state"]["current"] != "PAUSED":
                return True
    example = " ".join(f"{s.id}=VALUE" for s in specs)
    reporter.say(f"falconet: task {task_id} paused execution {execution_id} and nothing resumes it here: run again "
                 f"with --resume-inputs {example}".rstrip() + " (or from a terminal, to be asked)")
    return False


def _prompt(task_id: str, specs: list[Any], stdin: TextIO, reporter: Reporter) -> dict[str, str]:
    """Ask for each onResume input on the terminal (an empty answer leaves it unset)."""
    if not specs:
        reporter.say(f"Task {task_id} paused the execution. Press Enter to resume it (Ctrl-C to stop).")
        stdin.readline()
        return {}
    reporter.say(f"Task {task_id} paused the execution. Its onResume inputs (empty: not set, @path: a file):")
    values = {}
    for spec in specs:
        required = "required" if spec.required else "optional"
        about = f" - {spec.description}" if spec.description else ""
        reporter.out.write(f"  {spec.id} ({spec.type}, {required}){about}: ")
        reporter.out.flush()
        answer = stdin.readline().rstrip("\n")
        if answer:
            values[spec.id] = answer
    return values


async def _resume(engine: Any, execution_id: str, values: dict[str, Any], files: dict[str, tuple[str, Path]],
                  reporter: Reporter) -> bool:
    try:
        await engine.resume(execution_id, inputs=values, files=files)
    except FalconetError as exc:
        reporter.say(f"falconet: cannot resume: {exc}")
        return False
    return True
