#!/usr/bin/env python3
"""A small, self-contained load test for collab's y-websocket endpoint.

It starts its own `collab serve` on 127.0.0.1 (port 0, a temporary SQLite file), drives it
with Python clients (aiohttp WebSocket client + pycrdt documents, all in this one process),
prints the numbers, stops the server with SIGTERM and deletes the temporary files. It never
asserts anything about timings: it is a measuring tool, not a test.

    python bench/yjs_bench.py                      # all three, about 30 s
    python bench/yjs_bench.py --only fanout --clients 50 --rate 10 --duration 10
    python bench/yjs_bench.py --only throughput --writers 10 --total 20000
    python bench/yjs_bench.py --only coldload --updates 10000 --loads 3
    python bench/yjs_bench.py --json               # one JSON object at the end
    python bench/yjs_bench.py --only fanout,throughput --processes 2   # clients over 2 processes
    python bench/yjs_bench.py --payload object     # each update a 12-key object, not text

Scenarios (all in one document each, `ws://127.0.0.1:PORT/yjs/<doc>`):

fanout
    One observer connects first, then `--clients` writers. Each writer appends a short
    marker to a shared Y.Text `--rate` times per second for `--duration` seconds, on a fixed
    schedule with the writers evenly staggered. Every update therefore has `clients`
    receivers: the other writers and the observer. Reports latency p50/p95/p99/max over
    every (receiver, update) pair, delivered updates/s, and the server's CPU.

throughput
    `--writers` writers send `--total` updates as fast as the server accepts them. A writer
    may have at most `--window` updates that the observer has not yet received. Reports
    accepted updates/s = total / (time from the first send until the observer has all).
    With `--docs M`, M documents each get their own observer and `--writers` writers, all
    at once, and `--total` is split between them (with `--processes N`: many documents
    over N processes, each owned by whichever process its observer reached).

coldload
    One writer sends `--updates` small updates (window 50). The server is stopped with
    SIGTERM (collab flushes and compacts on the way out) and restarted `--loads` times on
    the same SQLite file; each time one new client connects and the script times the
    WebSocket open, the arrival of sync step 2, and the moment its document has all the
    content (same text as before the restart). Applying step 2 in pycrdt is client time;
    it is printed separately.

--payload object
    Instead of appending a marker to the text, each update appends an object of 12 keys
    (the marker one of its values) to a shared Y.Array: the embedded-object path (see
    docs/fidelity.md), where the server gives merged and synced updates back their
    writers' key order.

How latency is measured
    Every inserted string is a marker `~@<writer>.<seq>.<send-time-µs>@~`, where the send
    time is `time.perf_counter_ns() // 1000` taken just before the update is encoded and
    written. Yjs v1 updates store strings as UTF-8, so a receiver finds markers with a regex
    over the raw update bytes, without applying the update; this also works when the server
    merges several updates into one message. All clients share this process and its clock,
    so latency = receive time - embedded send time. Each receiver keeps the set of
    (writer, seq) pairs it has seen, which gives exact counts of missing and duplicate
    deliveries. A writer's own markers coming back (collab echoes a sender's update once it
    is committed: the durable acknowledgement) are counted as "ack" latency, not deliveries.

Client model
    The observer and the final convergence check use full pycrdt documents that apply every
    update. Writers are "lite": each keeps a private pycrdt Doc that only holds its own
    inserts and never applies incoming updates (it only scans them). Each insert is appended
    after the writer's previous insert, so every update is a real Yjs update that references
    only items the server already has. Without this, N writers would each apply N x rate
    updates per second and the Python clients, not the server, would be measured. At the
    end a fresh client syncs from the server; "converged" means its text equals the
    observer's and holds exactly one copy of every marker sent.

Limits
    The clients are Python and share the machine with the server. The script prints the
    client process's CPU use (1.0 = one core): near 1.0 the clients are the bottleneck, and
    the shared harness (Node load generator, see bench/README.md) gives the better numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from pycrdt import Array, Doc, Text

from collab.protocol import ywire

MARKER = re.compile(rb"~@(\d+)\.(\d+)\.(\d+)@~")
OBSERVER = -1  # sender id of clients that never write
TEXT = "text"  # name of the shared Y.Text
ITEMS = "items"  # name of the shared Y.Array (--payload object)
#: Keys of the objects `--payload object` writes, in a fixed order no sort gives.
OBJECT_KEYS = ("zulu", "alpha", "mike", "bravo", "yankee", "charlie", "xray", "delta",
               "whiskey", "echo", "victor")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def now_us() -> int:
    return time.perf_counter_ns() // 1000


# -- y-websocket framing: collab's own codec (pure functions over bytes) ------------


def sync_message(sub: int, payload: bytes) -> bytes:
    """y-protocols sync message: 0 = step 1 (state vector), 1 = step 2, 2 = update."""
    return bytes((0, sub)) + ywire.write_var_bytes(payload)


# -- server process ------------------------------------------------------------


def default_collab() -> str:
    sibling = Path(sys.executable).with_name("collab")
    if sibling.exists():
        return str(sibling)
    return shutil.which("collab") or "collab"


class ServerProcess:
    """`collab serve` on 127.0.0.1, port 0; the port is read from its "serving on" line.
    It runs in the temp directory, so `python -m collab` imports whatever PYTHONPATH names
    (not a `collab/` that happens to be in the caller's working directory)."""

    def __init__(self, collab: str, db_path: Path, log_path: Path, extra: tuple = (),
                 env: dict[str, str] | None = None) -> None:
        self.collab = shlex.split(collab)
        self.extra = tuple(extra)
        self.env = env
        self.db_path = db_path
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.startup_s = 0.0
        self._copy: asyncio.Task[None] | None = None

    async def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: ASYNC230 (a local file, before the server runs)
        log.write(f"\n=== start {time.strftime('%H:%M:%S')}\n".encode())
        log.flush()
        t0 = time.perf_counter()
        self.proc = await asyncio.create_subprocess_exec(
            *self.collab, "serve", "--host", "127.0.0.1", "--port", "0",
            "--database-url", f"sqlite:///{self.db_path}", *self.extra,
            stdout=asyncio.subprocess.PIPE, stderr=log, cwd=self.db_path.parent, env=self.env)
        log.close()
        assert self.proc.stdout is not None
        deadline = time.perf_counter() + 30
        while True:
            remaining = deadline - time.perf_counter()
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), max(0.1, remaining))
            except TimeoutError:
                line = b""
            if not line:
                await self.stop()
                raise RuntimeError(f"collab did not start; see {self.log_path}")
            match = re.search(rb"serving on http://[^:]+:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                break
        self.startup_s = time.perf_counter() - t0
        self._copy = asyncio.create_task(self._copy_stdout())

    async def _copy_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with open(self.log_path, "ab") as log:  # noqa: ASYNC230 (small local appends)
            async for line in self.proc.stdout:
                log.write(line)

    def url(self, doc: str, client: int = 0) -> str:
        return f"ws://127.0.0.1:{self.port}/yjs/{doc}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_s(self) -> float:
        """utime + stime of the server process, in seconds."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mib(self) -> float:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    async def stop(self) -> float:
        """SIGTERM, wait (graceful flush), SIGKILL after 30 s. Returns the seconds it took."""
        t0 = time.perf_counter()
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._copy is not None:
            try:
                await asyncio.wait_for(self._copy, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._copy.cancel()
        return time.perf_counter() - t0


class Cluster:
    """`processes` servers on one SQLite file and one Redis, used like one ServerProcess:
    client i connects to process i mod N (the observer, client 0, to the first: it
    connects first, so that process owns the document and the others relay to it);
    CPU and memory are summed over all of them."""

    def __init__(self, collab: str, db_path: Path, log_path: Path, processes: int,
                 redis_url: str) -> None:
        env = dict(os.environ, REDIS_URL=redis_url)
        self.members = [ServerProcess(collab, db_path, log_path.with_suffix(f".{i}.log"),
                                      env=env) for i in range(processes)]
        self.log_path = log_path

    async def start(self) -> None:
        for member in self.members:
            await member.start()

    def url(self, doc: str, client: int = 0) -> str:
        return self.members[client % len(self.members)].url(doc)

    def cpu_s(self) -> float:
        return sum(member.cpu_s() for member in self.members)

    def rss_mib(self) -> float:
        return sum(member.rss_mib() for member in self.members)

    async def stop(self) -> float:
        times = [await member.stop() for member in self.members]
        with open(self.log_path, "ab") as log:  # noqa: ASYNC230 (small local files)
            for member in self.members:
                log.write(member.log_path.read_bytes())
        return max(times)


# -- clients ---------------------------------------------------------------------


@dataclass
class Stats:
    """Receive-side records shared by all clients of one scenario."""

    latencies_ms: list[float] = field(default_factory=list)
    acks_ms: list[float] = field(default_factory=list)
    deliveries: int = 0
    dupes: int = 0
    last_delivery_us: int = 0


class Gone(Exception):
    """The server closed this client's connection."""


class Client:
    """One y-websocket client. `sender` >= 0 for writers, OBSERVER for read-only clients.
    `full` clients apply every update; lite ones only scan for markers (see module docs)."""

    payload = "text"  # or "object": what every update appends (--payload)

    def __init__(self, session: aiohttp.ClientSession, url: str, sender: int, *, full: bool,
                 stats: Stats | None, on_marker=None) -> None:
        self.session = session
        self.url = url
        self.sender = sender
        self.full = full
        self.stats = stats
        self.on_marker = on_marker
        self.doc = Doc()
        self.text = self.doc.get(TEXT, type=Text)
        self.items = self.doc.get(ITEMS, type=Array)
        self.seen: set[tuple[int, int]] = set()
        self.synced = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.open_us = 0
        self.step2_us = 0
        self.sent = 0
        self.keep_step2 = False  # keep the first step 2 payload (coldload applies it itself)
        self.step2_payload = b""
        self._local_update = b""
        self.gone: str | None = None  # why the connection ended early, if it did
        self._closing = False
        self._reader: asyncio.Task[None] | None = None
        if sender != OBSERVER:
            self.doc.observe(self._capture)

    def _capture(self, event) -> None:
        self._local_update = event.update

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(self.url, max_msg_size=0, compress=0,
                                                autoping=True)
        self.open_us = now_us()
        self._reader = asyncio.create_task(self._read())
        await self.ws.send_bytes(sync_message(0, self.doc.get_state()))

    async def send_marker(self) -> None:
        """Append one marker to the text and send the resulting update."""
        seq = self.sent
        self.sent += 1
        marker = f"~@{self.sender}.{seq}.{now_us()}@~"
        if self.payload == "object":
            self.items.append({key: i * seq for i, key in enumerate(OBJECT_KEYS)} | {"m": marker})
        else:
            self.text += marker
        assert self.ws is not None
        try:
            await self.ws.send_bytes(sync_message(2, self._local_update))
        except (aiohttp.ClientError, ConnectionError) as exc:
            self._mark_gone(f"send failed: {exc}")
            raise Gone(self.gone) from exc

    def content(self) -> str:
        """What this client holds: the text, or the objects as JSON (keys sorted)."""
        if self.payload == "object":
            return json.dumps(self.items.to_py(), sort_keys=True)
        return str(self.text)

    def _mark_gone(self, why: str) -> None:
        if self.gone is None and not self._closing:
            ws = self.ws
            code = ws.close_code if ws is not None else None
            self.gone = f"{why} (close code {code})"

    async def _read(self) -> None:
        assert self.ws is not None
        ws = self.ws
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.BINARY:
                continue
            data = msg.data
            received = now_us()
            if len(data) < 2 or data[0] != 0:
                continue  # awareness and other message types are ignored
            sub = data[1]
            payload, _ = ywire.read_var_bytes(data, 2)
            if sub == 0:  # the server's step 1: answer with what we have
                await ws.send_bytes(sync_message(1, self.doc.get_update(payload)))
                continue
            if self.stats is not None:
                self._record(payload, received)
            if self.full:
                self.doc.apply_update(payload)
            if sub == 1 and not self.synced.is_set():
                self.step2_us = received
                if self.keep_step2:
                    self.step2_payload = payload
                self.synced.set()
        self._mark_gone("closed by the server")

    def _record(self, payload: bytes, received: int) -> None:
        stats = self.stats
        for m in MARKER.finditer(payload):
            sender, seq, sent_us = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if sender == self.sender:
                stats.acks_ms.append((received - sent_us) / 1000)
                continue
            key = (sender, seq)
            if key in self.seen:
                stats.dupes += 1
                continue
            self.seen.add(key)
            stats.deliveries += 1
            stats.last_delivery_us = received
            stats.latencies_ms.append((received - sent_us) / 1000)
            if self.on_marker is not None:
                self.on_marker(sender, seq)

    async def close(self) -> None:
        self._closing = True
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._reader.cancel()


async def connect_all(clients: list[Client], batch: int = 50, limit_s: float = 60) -> None:
    for i in range(0, len(clients), batch):
        group = clients[i:i + batch]
        await asyncio.gather(*(c.connect() for c in group))
        await asyncio.wait_for(asyncio.gather(*(c.synced.wait() for c in group)), limit_s)


async def fresh_text(session: aiohttp.ClientSession, url: str) -> str:
    """Content of a new full client once it has synced from the server."""
    client = Client(session, url, OBSERVER, full=True, stats=None)
    await client.connect()
    await asyncio.wait_for(client.synced.wait(), 30)
    text = client.content()
    await client.close()
    return text


# -- measurements ------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {"count": len(values), "p50": pct(values, 50), "p95": pct(values, 95),
            "p99": pct(values, 99), "max": max(values) if values else None}


class CpuMeter:
    """Server and client (this process) CPU over a phase, as cores used."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.t0 = time.perf_counter()
        self.s0 = server.cpu_s()
        self.c0 = time.process_time()

    def read(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        server = self.server.cpu_s() - self.s0
        client = time.process_time() - self.c0
        return {"wall_s": wall, "server_cpu_s": server, "server_cpu_util": server / wall,
                "client_cpu_util": client / wall}


def text_check(text: str, expected_markers: int) -> dict[str, int | bool]:
    markers = re.findall(r"~@(\d+)\.(\d+)\.\d+@~", text)
    return {"markers": len(markers), "distinct": len(set(markers)),
            "ok": len(markers) == expected_markers == len(set(markers))}


async def wait_until(predicate, limit_s: float) -> bool:
    deadline = time.perf_counter() + limit_s
    while not predicate():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def run_fanout(server: ServerProcess, session: aiohttp.ClientSession, args) -> dict:
    doc = "fanout-" + uuid.uuid4().hex[:8]
    url = server.url(doc)
    stats = Stats()
    observer = Client(session, url, OBSERVER, full=True, stats=stats)
    writers = [Client(session, server.url(doc, i + 1), i, full=False, stats=stats)
               for i in range(args.clients)]
    await connect_all([observer])  # alone first, then the writers
    await connect_all(writers)
    per_writer = max(1, round(args.rate * args.duration))
    interval = 1.0 / args.rate
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    meter = CpuMeter(server)
    t0 = loop.time() + 0.05

    async def write(client: Client, index: int) -> None:
        start = t0 + index * interval / args.clients
        for k in range(per_writer):
            target = start + k * interval
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append((loop.time() - target) * 1000)
            try:
                await client.send_marker()
            except Gone:
                return

    send_start = now_us()
    await asyncio.gather(*(write(c, i) for i, c in enumerate(writers)))
    send_s = (now_us() - send_start) / 1e6
    sent = sum(c.sent for c in writers)
    expected = sent * args.clients  # each update: the (clients - 1) other writers + the observer
    drained = await wait_until(lambda: stats.deliveries >= expected, args.drain)
    cpu = meter.read()
    deliver_s = max(send_s, (stats.last_delivery_us - send_start) / 1e6)
    await asyncio.sleep(0.2)  # late duplicates, if any
    text = await fresh_text(session, url)
    converged = text_check(text, sent)["ok"] and observer.content() == text
    lost = [c.gone for c in [observer, *writers] if c.gone]
    for c in [observer, *writers]:
        await c.close()
    return {
        "scenario": "fanout", "clients": args.clients, "rate": args.rate,
        "duration_s": args.duration, "sent": sent, "sent_per_s": sent / send_s,
        "latency_ms": summary(stats.latencies_ms), "ack_ms": summary(stats.acks_ms),
        "send_lag_ms_p99": pct(lags, 99),
        "deliveries": stats.deliveries, "expected_deliveries": expected,
        "missing": expected - stats.deliveries, "dupes": stats.dupes,
        "delivered_per_s": stats.deliveries / deliver_s, "drained": drained,
        "server_cpu_util": cpu["server_cpu_util"],
        "server_us_per_delivery": cpu["server_cpu_s"] * 1e6 / max(1, stats.deliveries),
        "client_cpu_util": cpu["client_cpu_util"], "server_rss_mib": server.rss_mib(),
        "converged": converged, "connections_lost": lost,
    }


@dataclass
class Pushed:
    observer: Client
    writers: list[Client]
    seconds: float  # first send -> the observer has every update (or gave up)
    finished: bool
    cpu: dict[str, float]

    @property
    def lost(self) -> list[str]:
        return [c.gone for c in [self.observer, *self.writers] if c.gone]


async def push(server: ServerProcess | Cluster, session: aiohttp.ClientSession, doc: str,
               writers: int, total: int, window: int, stats: Stats) -> Pushed:
    """`writers` writers send `total` updates between them, as fast as accepted: each may have
    at most `window` updates that the observer has not received yet."""
    acked = [-1] * writers  # highest seq of each writer seen by the observer (sent in order)
    progress = [asyncio.Event() for _ in range(writers)]

    def on_marker(sender: int, seq: int) -> None:
        if seq > acked[sender]:
            acked[sender] = seq
            progress[sender].set()

    observer = Client(session, server.url(doc), OBSERVER, full=True, stats=stats,
                      on_marker=on_marker)
    # Writers read (and answer sync step 1) but neither scan nor apply what they receive.
    clients = [Client(session, server.url(doc, i + 1), i, full=False, stats=None)
               for i in range(writers)]
    await connect_all([observer])
    await connect_all(clients)
    counts = [total // writers + (1 if i < total % writers else 0) for i in range(writers)]

    async def write(client: Client, i: int) -> None:
        for _ in range(counts[i]):
            while client.sent - (acked[i] + 1) >= window:
                progress[i].clear()
                try:
                    await asyncio.wait_for(progress[i].wait(), 30)
                except TimeoutError:
                    return  # no progress for 30 s: give up, reported as not finished
            try:
                await client.send_marker()
            except Gone:
                return

    meter = CpuMeter(server)
    t0 = now_us()
    await asyncio.gather(*(write(c, i) for i, c in enumerate(clients)))
    finished = await wait_until(lambda: stats.deliveries >= total, 30)
    cpu = meter.read()
    end = stats.last_delivery_us if finished else now_us()
    return Pushed(observer, clients, (end - t0) / 1e6, finished, cpu)


async def run_throughput(server: ServerProcess, session: aiohttp.ClientSession, args) -> dict:
    if args.docs > 1:
        return await run_throughput_docs(server, session, args)
    doc = "throughput-" + uuid.uuid4().hex[:8]
    stats = Stats()
    p = await push(server, session, doc, args.writers, args.total, args.window, stats)
    text = await fresh_text(session, server.url(doc))
    converged = text_check(text, args.total)["ok"] and p.observer.content() == text
    lost = p.lost
    for c in [p.observer, *p.writers]:
        await c.close()
    return {
        "scenario": "throughput", "writers": args.writers, "total": args.total,
        "window": args.window, "seconds": p.seconds, "finished": p.finished,
        "accepted_per_s": args.total / p.seconds if p.finished else None,
        "observer_latency_ms": summary(stats.latencies_ms), "dupes": stats.dupes,
        "server_cpu_util": p.cpu["server_cpu_util"],
        "server_us_per_update": p.cpu["server_cpu_s"] * 1e6 / args.total,
        "client_cpu_util": p.cpu["client_cpu_util"], "server_rss_mib": server.rss_mib(),
        "converged": converged, "connections_lost": lost,
    }


async def run_throughput_docs(server: ServerProcess, session: aiohttp.ClientSession,
                              args) -> dict:
    """`--docs` documents pushed at once, each by its own writers and observer."""
    run = uuid.uuid4().hex[:8]
    docs = [f"throughput-{run}-{i}" for i in range(args.docs)]
    per_doc = args.total // args.docs
    stats = [Stats() for _ in docs]
    meter = CpuMeter(server)
    t0 = now_us()
    pushed = await asyncio.gather(*(
        push(server, session, doc, args.writers, per_doc, args.window, s)
        for doc, s in zip(docs, stats, strict=True)))
    cpu = meter.read()
    seconds = (max(s.last_delivery_us for s in stats) - t0) / 1e6
    finished = all(p.finished for p in pushed)
    converged = True
    for doc, p in zip(docs, pushed, strict=True):
        text = await fresh_text(session, server.url(doc))
        converged &= text_check(text, per_doc)["ok"] and p.observer.content() == text
    lost = [gone for p in pushed for gone in p.lost]
    for p in pushed:
        for c in [p.observer, *p.writers]:
            await c.close()
    total = per_doc * args.docs
    return {
        "scenario": "throughput", "docs": args.docs, "writers": args.writers, "total": total,
        "window": args.window, "seconds": seconds, "finished": finished,
        "accepted_per_s": total / seconds if finished else None,
        "observer_latency_ms": summary([x for s in stats for x in s.latencies_ms]),
        "dupes": sum(s.dupes for s in stats),
        "server_cpu_util": cpu["server_cpu_util"],
        "server_us_per_update": cpu["server_cpu_s"] * 1e6 / total,
        "client_cpu_util": cpu["client_cpu_util"], "server_rss_mib": server.rss_mib(),
        "converged": converged, "connections_lost": lost,
    }


async def run_coldload(collab: str, workdir: Path, args) -> dict:
    db = workdir / "coldload.db"
    log = workdir / "server.log"
    doc = "coldload-" + uuid.uuid4().hex[:8]
    server = ServerProcess(collab, db, log)
    await server.start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            stats = Stats()
            p = await push(server, session, doc, 1, args.updates, 50, stats)
            expected = p.observer.content()
            preload_lost = p.lost
            for c in [p.observer, *p.writers]:
                await c.close()
    finally:
        stop_s = await server.stop()
    result: dict = {
        "scenario": "coldload", "updates": args.updates, "text_chars": len(expected),
        "preload_per_s": args.updates / p.seconds if p.finished else None,
        "preload_finished": p.finished, "preload_connections_lost": preload_lost,
        "shutdown_s": stop_s,
        "db_bytes": db_size(workdir), "loads": [],
    }
    for _ in range(args.loads):
        server = ServerProcess(collab, db, log)
        await server.start()
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
                client = Client(session, server.url(doc), OBSERVER, full=False, stats=None)
                client.keep_step2 = True
                t0 = now_us()
                await client.connect()  # sends sync step 1 with an empty state vector
                await asyncio.wait_for(client.synced.wait(), 30)
                a0 = now_us()
                client.doc.apply_update(client.step2_payload)
                a1 = now_us()
                complete = client.content() == expected
                await client.close()
        finally:
            await server.stop()
        result["loads"].append({
            "server_start_s": server.startup_s,
            "open_ms": (client.open_us - t0) / 1000,
            "step2_ms": (client.step2_us - t0) / 1000,
            "server_ms": (client.step2_us - client.open_us) / 1000,
            "client_apply_ms": (a1 - a0) / 1000,
            "complete_ms": (client.step2_us - t0 + a1 - a0) / 1000,
            "complete": complete, "step2_bytes": len(client.step2_payload),
        })
    return result


def db_size(workdir: Path) -> int:
    """Bytes of the SQLite file and its -wal/-shm companions (the server is stopped)."""
    return sum(f.stat().st_size for f in workdir.glob("coldload.db*"))


# -- output ----------------------------------------------------------------------


def f(value, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return f"{value:,}"


def lat(s: dict) -> str:
    return "  ".join(f"{k} {f(s[k])}" for k in ("p50", "p95", "p99", "max"))


def print_fanout(r: dict) -> None:
    print(f"fanout: {r['clients']} clients x {r['rate']:g}/s for {r['duration_s']:g} s in one doc "
          f"({r['sent']} updates, {r['expected_deliveries']:,} deliveries expected)")
    print(f"  latency ms   {lat(r['latency_ms'])}")
    print(f"  ack ms       {lat(r['ack_ms'])}   (own update echoed after commit)")
    print(f"  delivered/s  {f(r['delivered_per_s'])}   missing {r['missing']}  dupes {r['dupes']}"
          f"  drained {f(r['drained'])}  converged {f(r['converged'])}")
    print(f"  server CPU   {f(r['server_cpu_util'])} cores, {f(r['server_us_per_delivery'], 1)} "
          f"µs/delivery, RSS {f(r['server_rss_mib'], 1)} MiB   client CPU "
          f"{f(r['client_cpu_util'])} cores   send lag p99 {f(r['send_lag_ms_p99'])} ms")
    print_lost(r["connections_lost"])


def print_lost(lost: list[str]) -> None:
    if lost:
        print(f"  CONNECTIONS LOST: {len(lost)}, e.g. {lost[0]}")


def print_throughput(r: dict) -> None:
    docs = f" in each of {r['docs']} documents" if r.get("docs", 1) > 1 else ""
    print(f"throughput: {r['writers']} writers{docs}, {r['total']:,} updates, "
          f"window {r['window']}")
    print(f"  accepted/s   {f(r['accepted_per_s'])}   ({f(r['seconds'])} s, finished "
          f"{f(r['finished'])}, converged {f(r['converged'])})")
    print(f"  observer latency ms  {lat(r['observer_latency_ms'])}")
    print(f"  server CPU   {f(r['server_cpu_util'])} cores, {f(r['server_us_per_update'], 1)} "
          f"µs/accepted update   client CPU {f(r['client_cpu_util'])} cores")
    print_lost(r["connections_lost"])


def print_coldload(r: dict) -> None:
    print(f"coldload: {r['updates']:,} updates ({r['text_chars']:,} chars), preload "
          f"{f(r['preload_per_s'])} upd/s, graceful stop {f(r['shutdown_s'])} s, "
          f"db {r['db_bytes'] / 1024:,.0f} KiB")
    print_lost(r["preload_connections_lost"])
    for i, x in enumerate(r["loads"], 1):
        print(f"  load {i}: open {f(x['open_ms'])} ms, step 2 {f(x['step2_ms'])} ms "
              f"(server {f(x['server_ms'])} ms after open), client apply "
              f"{f(x['client_apply_ms'])} ms, complete {f(x['complete_ms'])} ms, content "
              f"{'complete' if x['complete'] else 'INCOMPLETE'}   (server start "
              f"{f(x['server_start_s'])} s)")


def server_problems(log: Path) -> list[str]:
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    return [x for x in lines if re.search(r"\b(ERROR|CRITICAL|Traceback)\b|slow consumer", x)]


# -- main ----------------------------------------------------------------------------


async def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="collab-bench-"))
    log = workdir / "server.log"
    out: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "collab": args.collab,
                 "nproc": os.cpu_count(), "results": []}
    try:
        for name in args.only:
            if name == "coldload":
                r = await run_coldload(args.collab, workdir, args)
            else:
                if args.processes > 1:
                    server = Cluster(args.collab, workdir / f"{name}.db", log, args.processes,
                                     args.redis_url)
                else:
                    server = ServerProcess(args.collab, workdir / f"{name}.db", log)
                await server.start()
                try:
                    connector = aiohttp.TCPConnector(limit=0)
                    async with aiohttp.ClientSession(connector=connector) as session:
                        scenario = run_fanout if name == "fanout" else run_throughput
                        r = await scenario(server, session, args)
                finally:
                    await server.stop()
            out["results"].append(r)
            if not args.json:
                {"fanout": print_fanout, "throughput": print_throughput,
                 "coldload": print_coldload}[name](r)
        out["server_log_problems"] = server_problems(log)
        if not args.json and out["server_log_problems"]:
            print(f"server log: {len(out['server_log_problems'])} problem lines, e.g.")
            for line in out["server_log_problems"][:5]:
                print("  " + line)
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="fanout,throughput,coldload",
                    help="comma-separated scenarios (default: fanout,throughput,coldload)")
    ap.add_argument("--clients", type=int, default=10, help="fanout: writers in one doc (10)")
    ap.add_argument("--rate", type=float, default=10, help="fanout: updates/s per writer (10)")
    ap.add_argument("--duration", type=float, default=5, help="fanout: seconds of sending (5)")
    ap.add_argument("--drain", type=float, default=15,
                    help="fanout: seconds to wait for late deliveries (15)")
    ap.add_argument("--writers", type=int, default=10, help="throughput: writers (10)")
    ap.add_argument("--docs", type=int, default=1,
                    help="throughput: documents pushed at once, each with its own "
                         "--writers writers and an observer (1)")
    ap.add_argument("--total", type=int, default=20000, help="throughput: updates in all (20000)")
    ap.add_argument("--window", type=int, default=8,
                    help="throughput: most updates per writer not yet seen by the observer (8)")
    ap.add_argument("--updates", type=int, default=10000, help="coldload: updates written (10000)")
    ap.add_argument("--loads", type=int, default=3, help="coldload: restart-and-load cycles (3)")
    ap.add_argument("--collab", default=default_collab(),
                    help="command that runs collab (default: the `collab` next to this Python); "
                         "e.g. 'python -m collab' with PYTHONPATH=<source tree>")
    ap.add_argument("--processes", type=int, default=1,
                    help="fanout, throughput: server processes sharing one SQLite file and "
                         "Redis, clients spread over them round-robin (1)")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                    help="Redis for --processes above 1 (redis://127.0.0.1:6379/0)")
    ap.add_argument("--payload", choices=("text", "object"), default="text",
                    help="what each update appends: a marker to a Y.Text, or a 12-key object "
                         "holding it to a Y.Array (text)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (db, server log)")
    args = ap.parse_args()
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    Client.payload = args.payload
    for name in args.only:
        if name not in ("fanout", "throughput", "coldload"):
            ap.error(f"unknown scenario {name!r}")
    if args.clients < 1 or args.writers < 1 or args.rate <= 0 or args.duration <= 0:
        ap.error("--clients, --writers, --rate and --duration must be positive")
    try:
        import resource
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    except (ImportError, ValueError, OSError):
        pass
    out = asyncio.run(run(args))
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
