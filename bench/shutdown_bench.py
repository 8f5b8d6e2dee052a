#!/usr/bin/env python3
"""How long `collab serve` takes to stop (SIGTERM) with many documents loaded and
their clients gone, and that nothing was lost: the issue-18 case of 5,000
documents, each written by a few updates whose log rows were not compacted yet.

    python bench/shutdown_bench.py [--docs 5000] [--updates 3] [--rounds 1]

Each round starts a server on a fresh SQLite file (idle timeout 1 h, so every
document stays loaded), writes `--updates` HTTP updates to each of `--docs`
documents (eight writers at a time; each answered after its commit), sends
SIGTERM and times the exit; then starts the server again and reads every
document back, counting any whose text is not what was acknowledged. It prints
numbers only.
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
from pycrdt import Doc, Text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from yjs_bench import ServerProcess, default_collab


def updates_for(n: int, count: int) -> tuple[list[bytes], str]:
    doc = Doc()
    text = doc.get("body", type=Text)
    sent: list[bytes] = []
    doc.observe(lambda event: sent.append(event.update))
    for k in range(count):
        text.insert(len(text), f"doc {n} line {k}\n")
    return sent, str(text)


async def write_all(session: aiohttp.ClientSession, base: str, docs: int,
                    updates: int) -> dict[str, str]:
    expected: dict[str, str] = {}
    names = iter(range(docs))

    async def writer() -> None:
        for n in names:
            sent, text = updates_for(n, updates)
            for update in sent:
                async with session.post(f"{base}/api/docs/shut-{n}/update", data=update) as r:
                    if r.status != 200:
                        raise RuntimeError(f"update refused: {r.status} {await r.text()}")
            expected[f"shut-{n}"] = text

    await asyncio.gather(*(writer() for _ in range(8)))
    return expected


async def count_lost(session: aiohttp.ClientSession, base: str,
                     expected: dict[str, str]) -> int:
    lost = 0
    names = iter(expected.items())

    async def reader() -> None:
        nonlocal lost
        for name, text in names:
            async with session.get(f"{base}/api/docs/{name}?format=json&text=body") as r:
                body = await r.json()
            if body.get("text", {}).get("body") != text:
                lost += 1

    await asyncio.gather(*(reader() for _ in range(8)))
    return lost


async def main(args: argparse.Namespace) -> None:
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = dict(os.environ, COLLAB_IDLE_TIMEOUT="3600")
        async with aiohttp.ClientSession() as session:
            for round_ in range(args.rounds):
                db = workdir / f"shutdown-{round_}.db"
                server = ServerProcess(args.collab, db, workdir / "server.log", env=env)
                await server.start()
                started = time.perf_counter()
                expected = await write_all(session, f"http://127.0.0.1:{server.port}",
                                           args.docs, args.updates)
                rows.setdefault("write all (s)", []).append(time.perf_counter() - started)
                rows.setdefault("RSS before SIGTERM (MiB)", []).append(server.rss_mib())
                rows.setdefault("SIGTERM to exit (s)", []).append(await server.stop())
                server = ServerProcess(args.collab, db, workdir / "server.log", env=env)
                await server.start()
                try:
                    lost = await count_lost(session, f"http://127.0.0.1:{server.port}",
                                            expected)
                    rows.setdefault("documents not as acknowledged", []).append(lost)
                finally:
                    await server.stop()
    print(f"{args.docs} documents x {args.updates} updates, median of {args.rounds} rounds")
    for name, values in rows.items():
        print(f"  {name:32s} {statistics.median(values):10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--collab", default=default_collab())
    asyncio.run(main(parser.parse_args()))
