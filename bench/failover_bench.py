#!/usr/bin/env python3
"""Failover: seconds from kill -9 of a document's owner to the first write the other
process acknowledges, with default settings. Prints numbers, asserts nothing.

Each round starts two `collab serve` processes on a fresh SQLite file and one Redis
(REDIS_URL, default redis://127.0.0.1:6379/0, in a namespace of the round's own),
makes process A own a document, and sends one HTTP update every `--interval` seconds
to process B, which forwards it to A. After `--before` seconds A is killed with -9;
B goes on being asked until it acknowledges a write. Then every acknowledged update
is looked for in the document (lost ones are counted).

    python bench/failover_bench.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from pycrdt import Doc, Text

sys.path.insert(0, str(Path(__file__).parent))
from yjs_bench import ServerProcess, default_collab


class Writer:
    """A pycrdt document whose edits become HTTP updates, each with its own marker. An
    update carries everything not acknowledged yet, as a client that retries does (a
    refused edit that later ones depend on goes again with them)."""

    def __init__(self) -> None:
        self.doc = Doc()
        self.text = self.doc.get("body", type=Text)
        self.acked_state = self.doc.get_state()
        self.n = 0

    def next_update(self) -> tuple[str, bytes]:
        self.n += 1
        marker = f"<{self.n}>"
        self.text.insert(len(self.text), marker)
        return marker, self.doc.get_update(self.acked_state)

    def acked(self) -> None:
        self.acked_state = self.doc.get_state()


async def one_round(args: argparse.Namespace, work: Path, n: int) -> dict[str, float]:
    env = dict(os.environ, REDIS_URL=args.redis_url,
               COLLAB_REDIS_PREFIX=f"failover-{uuid.uuid4().hex[:8]}")
    a, b = (ServerProcess(args.collab, work / f"round{n}.db", work / f"{name}.log", env=env)
            for name in "ab")
    await a.start()
    await b.start()
    doc = "failover"
    writer = Writer()
    acked: list[str] = []
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async def write(server: ServerProcess) -> bool:
                marker, update = writer.next_update()
                try:
                    async with session.post(f"http://127.0.0.1:{server.port}/api/docs/{doc}"
                                            "/update", data=update) as resp:
                        if resp.status == 200:
                            acked.append(marker)
                            writer.acked()
                            return True
                except (aiohttp.ClientError, TimeoutError):
                    pass
                return False

            assert await write(a)  # A owns the document
            deadline = time.perf_counter() + args.before
            while time.perf_counter() < deadline:
                await write(b)
                await asyncio.sleep(args.interval)
            before = len(acked)
            a.proc.send_signal(signal.SIGKILL)
            killed = time.perf_counter()
            refused = 0
            while not await write(b):
                refused += 1
                await asyncio.sleep(args.interval)
            back = time.perf_counter() - killed
            async with session.get(f"http://127.0.0.1:{b.port}/api/docs/{doc}"
                                   "?format=json&text=body") as resp:
                body = (await resp.json())["text"]["body"]
            lost = sum(1 for marker in acked if marker not in body)
            return {"seconds": back, "acked": before, "refused": refused, "lost": lost}
    finally:
        await a.proc.wait()
        await b.stop()


async def main(args: argparse.Namespace) -> None:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            result = await one_round(args, Path(tmp), n)
            results.append(result)
            print(f"round {n + 1}: writes acknowledged again {result['seconds']:.2f} s after "
                  f"kill -9 ({result['refused']} refused meanwhile); "
                  f"{result['acked']} acknowledged before, {result['lost']} lost", flush=True)
    seconds = [r["seconds"] for r in results]
    print(f"failover: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
          f"over {len(seconds)} rounds; acknowledged writes lost: "
          f"{sum(r['lost'] for r in results)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--collab", default=default_collab())
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=float, default=2.0, help="seconds of writes before")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between writes")
    asyncio.run(main(parser.parse_args()))
