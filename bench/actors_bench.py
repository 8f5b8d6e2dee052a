#!/usr/bin/env python3
"""How fast application actors are: actions per second into one actor, and
wake-ups per second of hibernated actors. Prints numbers, asserts nothing.

Runs the actor system in-process on a temporary SQLite file (WAL, synchronous
NORMAL, as `collab serve` does), so it measures the runtime and the store, not
HTTP. Every action changes the actor's state, so every result waits for its
group-committed write.

    python bench/actors_bench.py                       # about 10 s
    python bench/actors_bench.py --calls 20000 --actors 5000

actions/s, sequential: one caller awaits each result before the next call.
actions/s, concurrent: `--callers` callers each keep one call in flight, all
    to the same actor (it still runs them one at a time; commits group up).
wake-ups/s: `--actors` actors are created, the system is shut down (each saves
    and unloads), a new system starts on the same file, and one call is made to
    every actor, `--callers` at a time: each call loads the actor's state,
    runs on_wake and the action, and commits.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import collab
from collab.config import Settings
from collab.runtime.refs import ActorRef
from collab.runtime.system import ActorSystem
from collab.storage import open_store
from collab.storage.commit import GroupCommitter


class Counter(collab.Actor):
    def initial_state(self) -> dict:
        return {"count": 0, "note": "x" * 64}

    @collab.action
    def increment(self) -> int:
        self.state["count"] += 1
        return self.state["count"]


REGISTRY = collab.Registry(Counter)


async def start(path: Path) -> ActorSystem:
    settings = Settings(database_url=f"sqlite:///{path}")
    store = open_store(settings)
    await store.open()
    committer = GroupCommitter(store)
    committer.start()
    return ActorSystem(settings, store, committer, REGISTRY)


async def stop(system: ActorSystem) -> None:
    await system.stop_all()
    await system.committer.close()
    await system.store.close()


async def timed(coro) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await coro
    return time.perf_counter() - wall, time.process_time() - cpu


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        system = await start(path)
        ref = ActorRef(system, Counter, "one")
        await ref.call("increment")

        async def sequential() -> None:
            for _ in range(args.calls):
                await ref.call("increment")

        wall, cpu = await timed(sequential())
        print(f"actions/s, sequential:  {args.calls / wall:9,.0f}   "
              f"({wall * 1e6 / args.calls:.0f} µs wall, {cpu * 1e6 / args.calls:.0f} µs CPU each)")

        async def concurrent() -> None:
            per_caller = args.calls // args.callers

            async def caller() -> None:
                for _ in range(per_caller):
                    await ref.call("increment")

            await asyncio.gather(*(caller() for _ in range(args.callers)))

        wall, cpu = await timed(concurrent())
        total = args.calls // args.callers * args.callers
        print(f"actions/s, {args.callers} callers:  {total / wall:9,.0f}   "
              f"({cpu * 1e6 / total:.0f} µs CPU each, {system.committer.stats.batches:,} "
              f"commits so far)")

        keys = [f"a{i}" for i in range(args.actors)]

        async def touch_all(sys_: ActorSystem) -> None:
            sem = asyncio.Semaphore(args.callers)

            async def one(key: str) -> None:
                async with sem:
                    await ActorRef(sys_, Counter, key).call("increment")

            await asyncio.gather(*(one(key) for key in keys))

        wall, _ = await timed(touch_all(system))
        print(f"actors created/s:       {args.actors / wall:9,.0f}")
        await stop(system)

        system = await start(path)
        wall, cpu = await timed(touch_all(system))
        print(f"wake-ups/s:             {args.actors / wall:9,.0f}   "
              f"({cpu * 1e6 / args.actors:.0f} µs CPU each; {args.actors:,} hibernated actors, "
              f"{args.callers} at a time)")
        await stop(system)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--actors", type=int, default=2_000)
    asyncio.run(main(parser.parse_args()))
