"""The ``falconet`` command line.

``falconet server local``     start the server (embedded SQLite store, local storage, API, UI)
``falconet server standalone`` the same server on a PostgreSQL store and a given storage folder
``falconet flow validate``    validate flow files or folders (exit 1 on any invalid flow)
``falconet flow run``         run one flow in-process (falconet/flowrun.py; exit 0 on SUCCESS/WARNING)
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import urlsplit

from falconet import deferred_imports

if TYPE_CHECKING:     # imported by the commands, after the server command deferred what it never runs
    import trio

    from falconet.runtime.config import Config

FLOW_SUFFIXES = (".yaml", ".yml")


#### argument parsing #######################################################################################

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="falconet", description="Run Kestra flows in one lightweight process.")
    parser.add_argument("--config", help="YAML configuration file (Kestra keys, e.g. kestra.url)")
    sub = parser.add_subparsers(dest="command", required=True)

    server = sub.add_parser("server", help="start a server").add_subparsers(dest="mode", required=True)
    local = server.add_parser("local", help="single-process server with the embedded SQLite store")
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=8080)
    local.add_argument("--data-dir", help="data folder (default ./falconet-data)")
    local.add_argument("--basic-auth", metavar="USER:PASSWORD", help="protect the API with basic auth")
    local.add_argument("--flows", metavar="PATH", action="append", default=[],
                       help="load flow files or folders at start-up (create or update)")
    standalone = server.add_parser(
        "standalone", help="a server on a shared store (PostgreSQL) and storage folder",
        description="A node of a cluster: a server whose store is a PostgreSQL database (--store or "
                    "falconet.store) and whose internal storage is --storage-dir (or an S3 bucket: kestra.storage.type "
                    "s3 in --config). Every node on the same database and storage is part of one cluster.")
    for flag, kw in (("--host", {"default": "127.0.0.1"}), ("--port", {"type": int, "default": 8080}),
                     ("--data-dir", {"help": "local folder: temporary files, the data-folder lock"}),
                     ("--basic-auth", {"metavar": "USER:PASSWORD", "help": "protect the API with basic auth"})):
        standalone.add_argument(flag, **kw)
    standalone.add_argument("--store", metavar="URL", help="postgresql://USER[:PASSWORD]@HOST:PORT/DB")
    standalone.add_argument("--storage-dir", metavar="DIR", help="internal storage folder (may be shared)")
    standalone.add_argument("--lease-duration", metavar="DURATION",
                            help="how long this node's execution leases outlive its last heartbeat "
                                 "(kestra.cluster.lease-duration: PT10S or seconds; default 10 s)")
    standalone.add_argument("--flows", metavar="PATH", action="append", default=[],
                            help="load flow files or folders at start-up (create or update)")

    flow = sub.add_parser("flow", help="work with flow files").add_subparsers(dest="action", required=True)
    validate = flow.add_parser("validate", help="validate flow files or folders")
    validate.add_argument("paths", nargs="+")
    run = flow.add_parser("run", help="run a flow in-process without a server",
                          description="Logs go to stderr, the final execution JSON alone to stdout.")
    run.add_argument("file")
    run.add_argument("--input", action="append", default=[], metavar="KEY=VALUE",
                     help="an input value (repeatable); @path for a FILE input")
    run.add_argument("--label", action="append", default=[], metavar="KEY:VALUE")
    run.add_argument("--data-dir", help="data folder (default: a temporary folder)")
    run.add_argument("--flows", metavar="PATH", action="append", default=[],
                     help="also load these flow files or folders (the subflows the flow calls)")
    run.add_argument("--resume-inputs", nargs="*", action="append", metavar="KEY=VALUE",
                     help="resume every Pause with these onResume inputs (none: resume without inputs)")
    return parser


def flow_files(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(sorted(f for f in path.rglob("*") if f.suffix in FLOW_SUFFIXES and f.is_file()))
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(p)
    return out


#### flow validate ##########################################################################################

def cmd_validate(args: argparse.Namespace) -> int:
    from falconet.runtime.flow.parsing import parse_flow
    from falconet.runtime.kernel.errors import FlowValidationError

    try:
        files = flow_files(args.paths)
    except FileNotFoundError as exc:
        print(f"falconet: no such file or folder: {exc.args[0]}", file=sys.stderr)
        return 2
    bad = 0
    for f in files:
        try:
            source = f.read_text(encoding="utf-8")
            flow = parse_flow(source, filename=str(f))
        except FlowValidationError as exc:
            bad += 1
            for v in exc.violations:
                line = f":{v.line}" if v.line else ""
                where = f" {v.path}:" if v.path else ""
                print(f"{f}{line}:{where} {v.message}")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            bad += 1
            print(f"{f}: cannot read: {exc}")
            continue
        print(f"{f}: OK ({flow.namespace}.{flow.id})")
    print(f"{len(files) - bad} valid, {bad} invalid")
    return 1 if bad else 0


#### server local ###########################################################################################

async def _serve(args: argparse.Namespace, config: Config) -> None:
    import trio

    from falconet.http.app import create_app
    from falconet.http.serve import serve
    from falconet.runtime.kernel.errors import FlowValidationError
    from falconet.runtime.kernel.startup import open_engine

    async with open_engine(config.data_dir, store=config.store, config=config) as engine:
        for f in flow_files(args.flows):
            try:
                await engine.put_flow(f.read_text(encoding="utf-8"))
            except FlowValidationError as exc:
                print(f"falconet: {f}: invalid flow, skipped: {exc}", file=sys.stderr)
        app = create_app(engine, config=config)
        shutdown = trio.Event()
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                async def serve_until_shutdown(task_status: trio.TaskStatus[list[str]]) -> None:
                    await serve(app, config.host, config.port, shutdown=shutdown, task_status=task_status)
                    nursery.cancel_scope.cancel(reason="server stopped")

                urls = await nursery.start(serve_until_shutdown)
                if config.port == 0:        # a free port was picked: links in executions name it
                    config.port = urlsplit(urls[0]).port or 0
                print(banner(urls, config), flush=True)
                if engine.cluster.shared:
                    from falconet.runtime.store.postgres import redact_url

                    print(f"Node {engine.node_id} of the cluster on {redact_url(config.store)}", flush=True)
                nursery.start_soon(_stop_on_signals, signals, shutdown, nursery.cancel_scope)
        # leaving open_engine stops the actors and flushes the store: running executions resume at next start


async def _stop_on_signals(signals: Any, shutdown: trio.Event, scope: trio.CancelScope) -> None:
    """First SIGINT/SIGTERM: graceful stop (no new connections, requests in flight get the server's
    graceful timeout, then the engine stops). A second one: stop at once."""
    async for signum in signals:
        name = signal.Signals(signum).name
        if shutdown.is_set():
            scope.cancel(reason=f"second {name} received")
            return
        print(f"Falconet is stopping ({name}): finishing the requests in flight", flush=True)
        shutdown.set()


def banner(urls: Sequence[str], config: Config) -> str:
    """The start-up lines: the address actually listened on, and ``kestra.url`` when it differs."""
    listen = urls[0]
    lines = [f"Falconet is running at {listen}/ui/ (API {listen}/api/v1)"]
    lines += [f"Also listening at {url}" for url in urls[1:]]
    if config.url and config.base_url() not in urls:
        lines.append(f"Execution links use kestra.url {config.base_url()}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``falconet`` command; returns the exit code. Ctrl-C prints one line (exit 130), no traceback."""
    try:
        return _main(argv)
    except (KeyboardInterrupt, BaseExceptionGroup) as exc:
        if not _only_interrupts(exc):
            raise
        print("falconet: interrupted", file=sys.stderr)
        return 130


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for e in exc.exceptions for leaf in _leaves(e)]
    return [exc]


def _only_interrupts(exc: BaseException) -> bool:
    """A KeyboardInterrupt, possibly inside (nested) exception groups of nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(KeyboardInterrupt)[1] is None
    return isinstance(exc, KeyboardInterrupt)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "server":
        with deferred_imports.deferring():     # before the server's libraries are imported
            return _run(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    import trio

    from falconet.runtime.cluster.base import NodeFenced
    from falconet.runtime.config import ConfigError, load_config, parse_lease_duration
    from falconet.runtime.kernel.errors import IllegalArgument
    from falconet.runtime.kernel.recovery import DataDirInUse
    from falconet.runtime.store import StoreError

    try:
        if args.command == "flow" and args.action == "validate":
            return cmd_validate(args)
        overrides: dict[str, Any] = {}
        if getattr(args, "data_dir", None):
            overrides["data_dir"] = args.data_dir
        if args.command == "server":
            overrides["host"] = args.host
            overrides["port"] = args.port
            if args.mode == "standalone":
                if args.store:
                    overrides["store"] = args.store
                if args.storage_dir:
                    overrides["storage_path"] = args.storage_dir
                if args.lease_duration:
                    overrides["lease_duration"] = parse_lease_duration(args.lease_duration)
            if args.basic_auth:
                user, sep, password = args.basic_auth.partition(":")
                if not sep or not user or not password:
                    print("falconet: --basic-auth expects USER:PASSWORD", file=sys.stderr)
                    return 2
                overrides["basic_auth"] = (user, password)
        config = load_config(args.config, **overrides)
        if args.command == "flow" and args.action == "run":
            from falconet import flowrun

            if not Path(args.file).is_file():
                print(f"falconet: no such file: {args.file}", file=sys.stderr)
                return 2
            return trio.run(flowrun.run, args, config)
        if args.command == "server":
            if args.mode == "standalone" and not str(config.store).startswith(("postgresql://", "postgres://")):
                print("falconet: server standalone needs a PostgreSQL store: --store postgresql://USER@HOST:PORT/DB "
                      "(or falconet.store)", file=sys.stderr)
                return 2
            config.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                trio.run(_serve, args, config)
            except KeyboardInterrupt:
                return 0
            except BaseExceptionGroup as exc:
                fenced, rest = exc.split(NodeFenced)
                if fenced is None or rest is not None:
                    raise
                print(f"falconet: {_leaves(fenced)[0]}", file=sys.stderr)
                return 3
            return 0
    except ConfigError as exc:
        print(f"falconet: configuration error: {exc}", file=sys.stderr)
        return 2
    except (DataDirInUse, StoreError, IllegalArgument) as exc:
        print(f"falconet: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"falconet: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
