#!/usr/bin/env python3
"""What authentication costs a connection: `/ws` sockets opened and ready for a first
request, with no auth (development mode), a JWT in the query, a JWT in the auth
message, and an application hook. Prints numbers, asserts nothing.

Starts one `collab serve` per mode on 127.0.0.1 (port 0, a temporary SQLite
file), opens `--sockets` sockets with `--concurrency` at a time, each answering
one `ping` before it counts as ready (with the auth message: the auth answer,
then the ping), and reports ready sockets/s, connect-to-ready latency p50/p99
and the server CPU per socket.

    python bench/auth_bench.py
    python bench/auth_bench.py --sockets 5000 --concurrency 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import jwt
import msgpack

sys.path.insert(0, str(Path(__file__).parent))
from yjs_bench import ServerProcess, default_collab

SECRET = "bench-secret-bench-secret-bench-secret"
HOOK_MODULE = '''
from collab.auth import Principal

async def authenticate(credentials):
    if credentials.token == "bench-key":
        return Principal("bench", {"docs": {"*": "rw"}})
    return None
'''


def token() -> str:
    return jwt.encode({"sub": "bench", "exp": int(time.time()) + 3600,
                       "docs": {"*": "rw"}}, SECRET, algorithm="HS256")


async def open_ready(session: aiohttp.ClientSession, url: str, auth: str | None) -> float:
    """Seconds from connect to the first answered request; closes the socket."""
    t0 = time.perf_counter()
    async with session.ws_connect(url) as ws:
        if auth is not None:
            await ws.send_bytes(msgpack.packb({"id": 0, "op": "auth", "token": auth}))
        await ws.send_bytes(msgpack.packb({"id": 1, "op": "ping"}))
        while True:
            message = msgpack.unpackb((await ws.receive()).data)
            if message.get("id") == 1:
                assert message["ok"], message
                return time.perf_counter() - t0
            assert message.get("ok"), message


async def run_mode(name: str, server: ServerProcess, args, query: str, auth: str | None) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws{query}"
    latencies: list[float] = []
    gate = asyncio.Semaphore(args.concurrency)
    async with aiohttp.ClientSession() as session:
        async def one() -> None:
            async with gate:
                latencies.append(await open_ready(session, url, auth))

        await asyncio.gather(*(one() for _ in range(50)))  # warm up
        latencies.clear()
        cpu0, t0 = server.cpu_s(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(args.sockets)))
        elapsed = time.perf_counter() - t0
        cpu = server.cpu_s() - cpu0
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"{name:<14} {args.sockets / elapsed:8,.0f} sockets/s   ready ms p50 "
          f"{statistics.median(latencies) * 1000:5.2f}  p99 {p99 * 1000:5.2f}   "
          f"server CPU {cpu / args.sockets * 1e6:6.0f} µs/socket")


async def main(args: argparse.Namespace) -> None:
    print(f"{args.sockets} /ws sockets, {args.concurrency} at a time, each until its "
          "first answer")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "bench_hook.py").write_text(HOOK_MODULE)
        modes = [
            ("no auth", {}, "", None),
            ("JWT in query", {"COLLAB_SECRET": SECRET}, f"?token={token()}", None),
            ("JWT in message", {"COLLAB_SECRET": SECRET}, "", token()),
            ("hook", {"COLLAB_AUTH_HOOK": "bench_hook:authenticate"}, "?token=bench-key", None),
        ]
        for name, extra_env, query, auth in modes:
            env = dict(os.environ, **extra_env, COLLAB_MAX_CONNECTIONS_PER_IP="0",
                       PYTHONPATH=os.pathsep.join([str(workdir),
                                                   os.environ.get("PYTHONPATH", "")]))
            if "COLLAB_SECRET" not in extra_env:
                env.pop("COLLAB_SECRET", None)
            server = ServerProcess(args.collab, workdir / f"{len(name)}.db",
                                   workdir / "server.log", env=env)
            await server.start()
            try:
                await run_mode(name, server, args, query, auth)
            finally:
                await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collab", default=default_collab())
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    asyncio.run(main(parser.parse_args()))
