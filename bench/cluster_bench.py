#!/usr/bin/env python3
"""The cost of forwarding: actor calls answered by the owning process directly, and
through another process that forwards them over Redis. Prints numbers, asserts nothing.

Starts two `collab serve --app bench_app:registry` processes on one temporary
SQLite file with REDIS_URL (default redis://127.0.0.1:6379/0), makes process A
own a counter, then times `--calls` HTTP actions sent to A and the same number
sent to B (forwarded to A), one at a time and `--concurrency` at a time.

    python bench/cluster_bench.py --calls 2000 --concurrency 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))
from yjs_bench import ServerProcess, default_collab


async def timed(session, url: str, calls: int, concurrency: int) -> float:
    left = iter(range(calls))

    async def lane() -> None:
        for _ in left:
            async with session.post(url) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return calls / (time.perf_counter() - start)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = dict(os.environ, REDIS_URL=args.redis_url, PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
        servers = [ServerProcess(args.collab, work / "shared.db", work / f"{name}.log",
                                 extra=("--app", "bench_app:registry"), env=env)
                   for name in "ab"]
        for server in servers:
            await server.start()
        a, b = servers
        try:
            async with aiohttp.ClientSession() as session:
                path = "/api/actors/counter/bench/actions/increment"
                await session.post(f"http://127.0.0.1:{a.port}{path}")  # A owns it now
                for concurrency in (1, args.concurrency):
                    direct = await timed(session, f"http://127.0.0.1:{a.port}{path}",
                                         args.calls, concurrency)
                    forwarded = await timed(session, f"http://127.0.0.1:{b.port}{path}",
                                            args.calls, concurrency)
                    print(f"{concurrency:>3} at a time: {direct:,.0f} actions/s at the owner, "
                          f"{forwarded:,.0f}/s through the other process "
                          f"({forwarded / direct:.2f}x)")
        finally:
            for server in servers:
                await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collab", default=default_collab())
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
