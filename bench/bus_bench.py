#!/usr/bin/env python3
"""What one cross-process message costs: CPU per message on the publishing and on the
subscribing process, through collab's Bus (cluster/bus.py) and the local Redis.

    python bench/bus_bench.py                       # 20,000 messages, 1 and 5 per loop turn
    python bench/bus_bench.py --messages 50000 --per-turn 1,2,10 --size 300

The publisher queues `--per-turn` messages per event-loop turn (an owner publishes what
one turn produced for an actor as one message, so under load several actors' messages
share a turn); the subscriber is a second process. `loop only` is the publisher's loop
with nothing sent, to subtract. It prints numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from collab.cluster.bus import Bus
from collab.cluster.client import connect

CHANNEL = "bench:bus"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def subscriber(url: str, messages: int) -> None:
    bus = Bus(connect(url), "bench")
    got = 0
    started = 0.0
    done = asyncio.Event()

    def received(_data: bytes) -> None:
        nonlocal got, started
        if got == 0:
            started = cpu()
        got += 1
        if got == messages:
            done.set()

    await bus.subscribe(CHANNEL, received)
    await bus.start()
    print("ready", flush=True)
    await done.wait()
    print(f"{(cpu() - started) / messages * 1e6:.1f}", flush=True)
    await bus.stop()


async def publisher(url: str | None, messages: int, per_turn: int, size: int) -> float:
    bus = None
    if url is not None:
        bus = Bus(connect(url), "bench")
        await bus.subscribe("bench:unused", lambda _data: None)
        await bus.start()
    payload = b"x" * size
    started = cpu()
    last = None
    for i in range(messages):
        if bus is not None:
            # The last one reports back once sent: publishes leave in order.
            last = bus.publish(CHANNEL, payload, count=i == messages - 1)
        if i % per_turn == per_turn - 1:
            await asyncio.sleep(0)
        if i % 50 == 49:  # let the loop breathe as a server's would between bursts
            await asyncio.sleep(0.001)
    if last is not None:
        await last
    spent = (cpu() - started) / messages * 1e6
    if bus is not None:
        await bus.stop()
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--redis-url", default=os.environ.get("COLLAB_TEST_REDIS_URL",
                                                          "redis://127.0.0.1:6379/0"))
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--per-turn", default="1,5")
    ap.add_argument("--size", type=int, default=300, help="payload bytes (300)")
    ap.add_argument("--role", choices=("subscriber",), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "subscriber":
        asyncio.run(subscriber(args.redis_url, args.messages))
        return
    print(f"{args.messages:,} messages of {args.size} bytes, CPU µs per message")
    print("per turn  publisher  loop only  subscriber")
    for per_turn in [int(n) for n in args.per_turn.split(",")]:
        sub = subprocess.Popen([sys.executable, __file__, "--role", "subscriber",
                                "--redis-url", args.redis_url, "--messages", str(args.messages)],
                               stdout=subprocess.PIPE, text=True)
        assert sub.stdout is not None
        sub.stdout.readline()  # ready
        time.sleep(0.2)
        loop_only = asyncio.run(publisher(None, args.messages, per_turn, args.size))
        published = asyncio.run(publisher(args.redis_url, args.messages, per_turn, args.size))
        received = float(sub.stdout.readline())
        sub.wait()
        print(f"{per_turn:>8}  {published:>9.1f}  {loop_only:>9.1f}  {received:>10.1f}")


if __name__ == "__main__":
    main()
