#!/usr/bin/env python3
"""What managing a document costs on a real server: listing, making a version,
reading one, restoring one, replacing (PUT) and deleting, for a document written
by 10,000 updates (a typist's inserts, each its own update, through `/yjs`).

    python bench/docs_bench.py [--updates 10000] [--rounds 3]

Each round writes a fresh document over one y-websocket socket (waiting for every
durable ack), then times each HTTP request from the client's side (wall time, the
server on the same machine), and prints the medians. It prints numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from pycrdt import Doc, Text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from yjs_bench import ServerProcess, default_collab

WORDS = "the quick brown fox jumps over the lazy dog while collab keeps every word ".split()


async def write_document(session: aiohttp.ClientSession, base: str, updates: int) -> None:
    """`updates` inserts into a Text, each POSTed as its own update (answered after
    its commit), eight at a time."""
    doc = Doc()
    text = doc.get("body", type=Text)
    sent: list[bytes] = []
    doc.observe(lambda event: sent.append(event.update))
    for n in range(updates):
        text.insert(len(text), WORDS[n % len(WORDS)] + " ")
    pending = iter(sent)

    async def poster() -> None:
        for update in pending:
            async with session.post(f"{base}/update", data=update) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"update refused: {resp.status} {await resp.text()}")

    await asyncio.gather(*(poster() for _ in range(8)))


async def timed(request) -> tuple[float, object]:
    started = time.perf_counter()
    async with request as resp:
        body = await resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{resp.method} {resp.url}: {resp.status} {body[:200]!r}")
    return (time.perf_counter() - started) * 1000, body


async def round_trip(session: aiohttp.ClientSession, port: int, updates: int,
                     n: int) -> dict[str, float]:
    name = f"bench-{n}"
    base = f"http://127.0.0.1:{port}/api/docs/{name}"
    started = time.perf_counter()
    await write_document(session, base, updates)
    results = {"write the updates over HTTP (s)": time.perf_counter() - started}
    results["list (100 per page)"], _ = await timed(
        session.get(f"http://127.0.0.1:{port}/api/docs?limit=100"))
    results["export (GET)"], exported = await timed(session.get(base))
    results["version (POST)"], _ = await timed(
        session.post(f"{base}/versions", json={"name": "bench"}))
    # Edit after the version, so the restore has something to undo.
    edit = Doc()
    edit.apply_update(exported)
    body = edit.get("body", type=Text)
    sv = edit.get_state()
    with edit.transaction():
        for pos in range(0, len(body) - 10, max(1, len(body) // 50)):
            body.insert(pos, "X")
    await session.post(f"{base}/update", data=edit.get_update(sv))
    results["read a version (GET)"], _ = await timed(session.get(f"{base}/versions/1"))
    results["restore 50 scattered edits (POST)"], _ = await timed(
        session.post(f"{base}/versions/1/restore"))
    results["replace (PUT the export)"], _ = await timed(session.put(base, data=exported))
    results["delete (DELETE)"], _ = await timed(session.delete(base))
    results["document bytes"] = len(exported)
    return results


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(args.collab, Path(tmp) / "bench.db", Path(tmp) / "server.log",
                               env=None)
        await server.start()
        try:
            rounds = []
            async with aiohttp.ClientSession() as session:
                for n in range(args.rounds):
                    rounds.append(await round_trip(session, server.port, args.updates, n))
        finally:
            await server.stop()
    print(f"a document of {args.updates:,} updates ({rounds[0]['document bytes']:,.0f} bytes "
          f"exported), median of {args.rounds} rounds, ms unless said:")
    for key in rounds[0]:
        if key != "document bytes":
            print(f"  {key:36} {statistics.median(r[key] for r in rounds):9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--collab", default=default_collab())
    asyncio.run(main(parser.parse_args()))
