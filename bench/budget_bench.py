#!/usr/bin/env python3
"""What COLLAB_MEMORY_BUDGET keeps the process to: `--docs` documents opened in turn
(one HTTP update each, eight writers), with no budget and with `--budget` MiB, on
fresh SQLite files, idle timeout 1 h (only the budget makes documents hibernate).

    python bench/budget_bench.py [--docs 5000] [--budget 100]

Prints, for each run: the server's RSS at start, its peak (sampled every 250
documents) and at the end, the documents still loaded, what the budget estimates
they hold, and how many it shed. It prints numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import aiohttp
from pycrdt import Doc, Text
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

from yjs_bench import ServerProcess, default_collab


def update_for(n: int) -> bytes:
    doc = Doc()
    doc.get("body", type=Text).insert(0, f"document {n} says hello;")
    return doc.get_update()


async def metrics(session: aiohttp.ClientSession, base: str) -> dict:
    async with session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def one_run(args: argparse.Namespace, budget_mib: int, workdir: Path) -> dict:
    env = dict(os.environ, COLLAB_IDLE_TIMEOUT="3600")
    if budget_mib:
        env["COLLAB_MEMORY_BUDGET"] = str(budget_mib << 20)
    server = ServerProcess(args.collab, workdir / f"budget-{budget_mib}.db",
                           workdir / "server.log", env=env)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    row = {"start": server.rss_mib(), "peak": 0.0}
    try:
        async with aiohttp.ClientSession() as session:
            names = iter(range(args.docs))

            async def writer() -> None:
                for n in names:
                    async with session.post(f"{base}/api/docs/b-{n}/update",
                                            data=update_for(n)) as resp:
                        if resp.status != 200:
                            raise RuntimeError(f"refused: {resp.status}")
                    if n % 250 == 0:
                        row["peak"] = max(row["peak"], server.rss_mib())

            await asyncio.gather(*(writer() for _ in range(8)))
            await asyncio.sleep(1)
            row["end"] = server.rss_mib()
            row["peak"] = max(row["peak"], row["end"])
            values = await metrics(session, base)
            row["loaded"] = values[("collab_actors_loaded", (("kind", "doc"),))]
            row["estimated"] = values[("collab_actor_memory_bytes", (("kind", "doc"),))] / 2**20
            row["shed"] = values[("collab_memory_budget_shed_total", ())]
    finally:
        await server.stop()
    return row


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.docs} documents opened in turn")
        print(f"  {'budget MiB':>10} {'start':>7} {'peak':>7} {'end':>7} {'loaded':>7} "
              f"{'est MiB':>8} {'shed':>6}")
        for budget in (0, args.budget):
            row = await one_run(args, budget, Path(tmp))
            print(f"  {budget or 'none':>10} {row['start']:7.1f} {row['peak']:7.1f} "
                  f"{row['end']:7.1f} {row['loaded']:7.0f} {row['estimated']:8.1f} "
                  f"{row['shed']:6.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--collab", default=default_collab())
    asyncio.run(main(parser.parse_args()))
