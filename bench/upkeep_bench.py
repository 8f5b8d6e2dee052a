#!/usr/bin/env python3
"""What owning many actors costs a process in upkeep: CPU and event-loop stalls of the
heartbeat and of refreshing the actors' directory entries in Redis. Prints numbers,
asserts nothing.

Claims `--actors` entries in a real Redis (REDIS_URL, default
redis://127.0.0.1:6379/0, in a namespace of the run's own, deleted afterwards) for
one in-process Placement, then, for `--seconds`, measures the process's CPU time
and the longest lateness of a 1 ms ticker (a stall of the event loop) while the
heartbeat runs, and once while one full refresh pass runs. The refresh runs every
DIRECTORY_TTL / 3 (20 minutes), so its share of a core is its cost over that.

    python bench/upkeep_bench.py --actors 100000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from collab.cluster.leases import Lease
from collab.cluster.placement import DIRECTORY_TTL, Placement


class Ticker:
    """Measures the event loop's longest stall: how late a 1 ms sleep wakes up."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, loop.time() - before - 0.001)

    def stop(self) -> float:
        self._task.cancel()
        return self.worst


async def main(args: argparse.Namespace) -> None:
    redis = Redis.from_url(args.redis_url)
    namespace = f"upkeep-{uuid.uuid4().hex[:8]}"
    placement = Placement(redis, ttl=10.0, namespace=namespace)
    try:
        started = time.perf_counter()
        for first in range(0, args.actors, 100):
            leases = await asyncio.gather(*(placement.leases.acquire("bench", str(n))
                                            for n in range(first, min(first + 100,
                                                                      args.actors))))
            for lease in leases:
                assert isinstance(lease, Lease)
                actor = SimpleNamespace(kind=lease.kind, key=lease.key, fence_token=lease.token)
                placement.held[(lease.kind, lease.key)] = (lease, actor)
        print(f"claimed {args.actors:,} entries in {time.perf_counter() - started:.1f} s")

        await placement.start()  # the heartbeat; the first refresh is DIRECTORY_TTL / 3 away
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(args.seconds)  # no ticker here: it would cost more than upkeep
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        ticker = Ticker()
        await asyncio.sleep(args.seconds / 4)
        print(f"steady upkeep with {args.actors:,} actors: {cpu / wall:.3%} of a core "
              f"(heartbeat every {placement.liveness.interval:.3f} s), "
              f"longest stall {ticker.stop() * 1000:.1f} ms")

        ticker = Ticker()
        if args.no_gc:
            gc.disable()  # to tell the refresh's own steps from the collector's pauses
        cpu = time.process_time()
        placement.renew_soon()
        while placement.last_refresh[1] < args.actors:  # noqa: ASYNC110 - polls a counter
            await asyncio.sleep(0.01)
        refresh_cpu = time.process_time() - cpu
        took, count = placement.last_refresh
        print(f"one refresh of {count:,} entries: {took:.2f} s, {refresh_cpu:.2f} s CPU, "
              f"longest stall {ticker.stop() * 1000:.1f} ms; every {DIRECTORY_TTL / 3:.0f} s: "
              f"{refresh_cpu / (DIRECTORY_TTL / 3):.3%} of a core")
    finally:
        await placement.stop()
        keys = [k async for k in redis.scan_iter(match=f"{namespace}:*", count=10_000)]
        for first in range(0, len(keys), 10_000):
            await redis.delete(*keys[first:first + 10_000])
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--actors", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-gc", action="store_true",
                        help="disable the cyclic garbage collector during the refresh")
    asyncio.run(main(parser.parse_args()))
