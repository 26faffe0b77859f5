"""Websocket fan-out: what N subscribers of ``/api/v1/ws`` cost the engine, and whether each one sees
every terminal state.

    python benchmarks/bench_ws.py [--subscribers 200] [--executions 1000] [--concurrency 8] [--rounds 2] [--batch]
                                  [--deflate]

`falconet server local` (SQLite store) runs pinned to one core (``taskset``, when there is more than one);
the clients run on the others. Each round creates ``--executions`` executions of the 2-task flow of
``bench_http.py`` through ``POST /api/v1/executions`` (``bench_http``'s keep-alive socket clients) and
measures executions/s (executions / (last endDate − first POST)) with no subscriber and with
``--subscribers`` websockets on ``/api/v1/ws?namespace=bench.http&state=SUCCESS`` read by one client
thread (raw sockets and a minimal frame reader, so the readers stay cheaper than the server). Each
subscriber must receive the SUCCESS of every execution (live, or in the resync after an overflow).

The server's capacity is measured by its CPU time per execution (``/proc/<pid>/stat``), from the first
POST until the server is idle again (with subscribers: once every subscriber got every frame); the
final documents are fetched after that, outside the measured time (fetching them pages through every
execution of the flow, a cost that grows from round to round). On a 2-core machine the clients and the
reader process share the one core the server does not use, so wall-clock throughput with 200 readers
mostly measures how fast the *readers* run (the server idles, waiting for them). Both figures are printed,
and the server's system (kernel) time, and the frames each subscriber received.
Target (issue 16): 200 subscribers cost <= 20 % of throughput, and no subscriber misses a terminal state.

``--deflate``: the subscribers offer permessage-deflate as browsers do (``permessage-deflate;
client_max_window_bits``) and decompress what they receive (one decompressor per subscriber when the server
keeps its compression context between messages; when it answers ``server_no_context_takeover``, each
message on its own, and a payload already decoded for another subscriber is not decoded again).
"""
from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import re
import selectors
import shutil
import socket
import zlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import create_many_raw, fetch_final, free_port, instant, load_flow_when_up  # noqa: E402

_ID = re.compile(rb'\{"type":"execution","execution":\{(?:"tenantId":"[^"]*",)?"id":"([0-9A-Za-z]+)"')


#: what browsers offer (Chrome, Firefox)
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"
_EXTENSIONS = re.compile(rb"(?im)^sec-websocket-extensions:([^\r\n]*)")
_BITS = re.compile(rb"server_max_window_bits=(\d+)")


class Subscriber:
    """One websocket client: a handshake, then unmasked server frames parsed from a byte buffer."""

    def __init__(self, port: int, path: str, deflate: bool = False, decoded: dict[bytes, bytes] | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        offer = f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n" if deflate else ""
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"{offer}\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        head, _, self.buffer = head.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(head.decode(errors="replace"))
        accepted = _EXTENSIONS.search(head)
        self.deflate = bool(accepted and b"permessage-deflate" in accepted.group(1))
        self.no_context = bool(accepted and b"server_no_context_takeover" in accepted.group(1))
        bits = _BITS.search(accepted.group(1)) if accepted else None
        self.window_bits = int(bits.group(1)) if bits else 15
        self.inflater = zlib.decompressobj(-self.window_bits)
        self.decoded = decoded if decoded is not None else {}  # shared by the subscribers of a reader
        self.sock.setblocking(False)
        self.seen: set[str] = set()
        self.frames = 0
        self.closed = False

    def inflate(self, payload: bytes) -> bytes:
        """A compressed message's text (RFC 7692 7.2.2)."""
        if not self.no_context:
            return self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        text = self.decoded.get(payload)
        if text is None:
            if len(self.decoded) > 64:
                self.decoded.clear()
            text = self.decoded[payload] = zlib.decompressobj(-self.window_bits).decompress(
                payload + b"\x00\x00\xff\xff")
        return text

    def feed(self) -> None:
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        if not data:
            self.closed = True
            return
        buf = self.buffer + data
        pos = 0
        while len(buf) - pos >= 2:
            opcode, length = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length, start = int.from_bytes(buf[pos + 2:pos + 4], "big"), pos + 4
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length, start = int.from_bytes(buf[pos + 2:pos + 10], "big"), pos + 10
            if len(buf) - start < length:
                break
            if opcode == 1:  # one message, or an array of them (``batch=true``)
                self.frames += 1
                if buf[pos] & 0x40:  # RSV1: compressed (permessage-deflate)
                    text = self.inflate(bytes(buf[start:start + length]))
                    self.seen.update(match.group(1).decode() for match in _ID.finditer(text))
                else:
                    for match in _ID.finditer(buf, start, start + length):
                        self.seen.add(match.group(1).decode())
            elif opcode == 8:
                self.closed = True
            pos = start + length
        self.buffer = buf[pos:]


def reader_process(port: int, count: int, batch: bool, deflate: bool, ready: Any, expected: Any, results: Any,
                   done: Any) -> None:
    """Connect ``count`` subscribers and read; once the ids of the round arrive on ``expected``, go on
    until every subscriber saw all of them (or DELIVERY_TIMEOUT), then put each one's seen ids and the
    seconds the last deliveries took after the round ended."""
    path = "/api/v1/ws?namespace=bench.http&state=SUCCESS" + ("&batch=true" if batch else "")
    decoded: dict[bytes, bytes] = {}
    subscribers = [Subscriber(port, path, deflate, decoded) for _ in range(count)]
    ready.set()
    ids: set[str] | None = None
    with selectors.DefaultSelector() as sel:
        for s in subscribers:
            sel.register(s.sock, selectors.EVENT_READ, s)
        while True:
            for key, _ in sel.select(timeout=0.1):
                key.data.feed()
            if ids is None and not expected.empty():
                ids, since = expected.get(), time.monotonic()
            if ids is not None and (all(ids <= s.seen for s in subscribers)
                                    or time.monotonic() - since > DELIVERY_TIMEOUT):
                break
    results.put(([s.seen for s in subscribers], time.monotonic() - since, sum(s.frames for s in subscribers),
                 sum(s.deflate for s in subscribers), sum(s.no_context for s in subscribers)))
    done.wait(60)  # the server's CPU time is read before the subscribers go away
    for s in subscribers:
        s.sock.close()


DELIVERY_TIMEOUT = 120.0


def cpu_seconds(pid: int) -> tuple[float, float, float]:
    """User + system CPU time the process used so far, the system part alone (``/proc/<pid>/stat``
    fields 14 and 15), and the user + system time of its main thread (the trio thread)."""
    tick = os.sysconf("SC_CLK_TCK")
    times = []
    for path in (f"/proc/{pid}/stat", f"/proc/{pid}/task/{pid}/stat"):
        with open(path, "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        times.append(((int(fields[11]) + int(fields[12])) / tick, int(fields[12]) / tick))
    return times[0][0], times[0][1], times[1][0]


def per_execution(start: tuple[float, float, float], pid: int, executions: int) -> tuple[float, float, float]:
    """Milliseconds of CPU (all, system, the trio thread's) per execution since ``start``."""
    end = cpu_seconds(pid)
    return tuple((e - s) * 1000 / executions for e, s in zip(end, start, strict=True))  # type: ignore[return-value]


def wait_idle(pid: int) -> None:
    """Until the server used no CPU time for 0.2 s (every execution ended, every frame written)."""
    last = cpu_seconds(pid)[0]
    while True:
        time.sleep(0.2)
        now = cpu_seconds(pid)[0]
        if now - last < 0.015:
            return
        last = now


def rate_of(base: str, sent: dict[str, float]) -> tuple[float, set[str]]:
    """Executions/s (executions / (last endDate - first POST)) and the ids of the ended executions."""
    final = fetch_final(base, set(sent))
    if len(final) != len(sent):
        raise SystemExit(f"only {len(final)} of {len(sent)} executions ended")
    span = max(instant(d["state"]["endDate"]) for d in final.values()) - min(sent.values())
    return len(final) / span, set(final)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--executions", type=int, default=1000, help="executions per round")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", action="store_true",
                    help="subscribe with batch=true (one frame per 250 ms window holding every message)")
    ap.add_argument("--deflate", action="store_true",
                    help="the subscribers offer permessage-deflate as browsers do, and decompress what they get")
    ap.add_argument("--profile", metavar="FILE", help="run the server under cProfile, stats written to FILE")
    args = ap.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    pin = ["taskset", "-c", str(cores[0])] if len(cores) > 1 and shutil.which("taskset") else []

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    without: list[float] = []
    with_subs: list[float] = []
    cpu_without: list[tuple[float, float, float]] = []  # server CPU ms per execution: all, system, trio thread
    cpu_with: list[tuple[float, float, float]] = []
    missed = 0
    lags: list[float] = []
    frames: list[float] = []  # frames received per subscriber in a round
    negotiated: list[tuple[int, int]] = []  # subscribers with permessage-deflate, and without server context
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as data:
        env = dict(os.environ, KESTRA_URL=base)
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        server = subprocess.Popen([*pin, sys.executable, *profile, "-m", "falconet", "server", "local", "--port", str(port),
                                   "--data-dir", data], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if pin:
            os.sched_setaffinity(0, set(cores[1:]))
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                load_flow_when_up(http, server)
            rate_of(base, create_many_raw(base, 200, args.concurrency))  # warm-up

            def measure_without() -> None:
                wait_idle(server.pid)
                cpu = cpu_seconds(server.pid)
                sent = create_many_raw(base, args.executions, args.concurrency)
                wait_idle(server.pid)
                cpu_without.append(per_execution(cpu, server.pid, args.executions))
                without.append(rate_of(base, sent)[0])

            def measure_with() -> int:
                ready, expected, results = multiprocessing.Event(), multiprocessing.Queue(), multiprocessing.Queue()
                done = multiprocessing.Event()
                reader = multiprocessing.Process(target=reader_process, args=(port, args.subscribers, args.batch,
                                                                              args.deflate, ready, expected, results,
                                                                              done))
                reader.start()
                if not ready.wait(60):
                    raise SystemExit("the subscribers did not connect")
                time.sleep(0.5)  # let the server register every subscription
                wait_idle(server.pid)
                cpu = cpu_seconds(server.pid)
                sent = create_many_raw(base, args.executions, args.concurrency)
                ids = set(sent)
                expected.put(ids)
                seen, lag, received, deflated, no_context = results.get(timeout=DELIVERY_TIMEOUT + 60)
                negotiated.append((deflated, no_context))
                wait_idle(server.pid)
                cpu_with.append(per_execution(cpu, server.pid, args.executions))
                frames.append(received / max(args.subscribers, 1))
                with_subs.append(rate_of(base, sent)[0])
                done.set()
                reader.join()
                lags.append(lag)
                return sum(len(ids - s) for s in seen)

            for round_number in range(args.rounds):
                # every round adds executions to the store: alternate the order (without, with; with, without)
                if round_number % 2 == 0:
                    measure_without()
                    missed += measure_with()
                else:
                    missed += measure_with()
                    measure_without()
        finally:
            server.terminate()
            server.wait(60)
    base_rate, fan_rate = statistics.median(without), statistics.median(with_subs)
    print(f"server {'pinned to core ' + str(cores[0]) if pin else 'unpinned'}; {args.rounds} rounds of "
          f"{args.executions} executions, {args.concurrency} concurrent clients; "
          f"{'batched frames (batch=true)' if args.batch else 'one message per frame'}"
          f"{'; subscribers offer permessage-deflate' if args.deflate else ''}")
    if args.deflate:
        print(f"permessage-deflate negotiated by {min(n[0] for n in negotiated)} of {args.subscribers} subscribers, "
              f"server_no_context_takeover by {min(n[1] for n in negotiated)}")
    print(f"no subscriber: median {base_rate:.0f} executions/s (rounds: {', '.join(f'{r:.0f}' for r in without)})")
    print(f"{args.subscribers} subscribers: median {fan_rate:.0f} executions/s "
          f"(rounds: {', '.join(f'{r:.0f}' for r in with_subs)})")
    print(f"cost of the subscribers in wall-clock throughput: {(1 - fan_rate / base_rate) * 100:.0f} % (the clients "
          f"and the readers share the other cores: on a small machine this measures them as much as the server)")
    base_cpu, fan_cpu = statistics.median(c[0] for c in cpu_without), statistics.median(c[0] for c in cpu_with)
    base_sys, fan_sys = statistics.median(c[1] for c in cpu_without), statistics.median(c[1] for c in cpu_with)
    base_trio, fan_trio = statistics.median(c[2] for c in cpu_without), statistics.median(c[2] for c in cpu_with)
    print(f"server CPU per execution: {base_cpu:.2f} ms without, {fan_cpu:.2f} ms with {args.subscribers} subscribers "
          f"(every frame delivered); cost: {(1 - base_cpu / fan_cpu) * 100:.0f} % of the server's capacity; "
          f"target <= 20 %")
    pairs = ", ".join(f"{w[0]:.2f} / {f[0]:.2f}" for w, f in zip(cpu_without, cpu_with, strict=True))
    print(f"server CPU per execution, rounds in order (without then with, then with then without, ...): "
          f"{pairs} (without / with)")
    print(f"of which system (kernel) time: {base_sys:.2f} ms without, {fan_sys:.2f} ms with")
    print(f"of which the trio thread: {base_trio:.2f} ms without, {fan_trio:.2f} ms with; the other threads (the "
          f"store's writer): {base_cpu - base_trio:.2f} ms without, {fan_cpu - fan_trio:.2f} ms with")
    print(f"frames per subscriber and round: {', '.join(f'{f:.0f}' for f in frames)}")
    print(f"terminal states missed by subscribers: {missed}; target 0 "
          f"(the last ones arrived {max(lags):.1f} s after the round's last POST was answered)")
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
