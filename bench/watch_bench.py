#!/usr/bin/env python3
"""What a room watch costs (`@collab.watch_room`, runtime/notify.py): chat sends to a
room nobody watches against a room one actor watches, on a real server.

    python bench/watch_bench.py [--messages 1000] [--senders 8] [--rounds 3]

Each round posts `--messages` messages to a fresh unwatched room and to a fresh
watched room over HTTP (`--senders` at a time, each answered after its commit), and
reads back when the watcher heard each one. Prints, as medians over the rounds:
sends per second, the send's p50/p99 latency, server CPU per message, and for the
watched room how long after its send was answered the watcher heard a message
(p50/p99). It prints numbers only.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from yjs_bench import ServerProcess, default_collab


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def post_messages(session: aiohttp.ClientSession, base: str, room: str, count: int,
                        senders: int) -> tuple[float, list[float], dict[int, float]]:
    """Wall seconds for all, each send's latency (ms), and when each seq was answered."""
    latencies: list[float] = []
    answered: dict[int, float] = {}
    numbers = iter(range(count))

    async def sender() -> None:
        for n in numbers:
            started = time.perf_counter()
            async with session.post(f"{base}/api/actors/bench_room/{room}/actions/send",
                                    json={"args": [f"m-{n}", f"message {n}"],
                                          "kwargs": {"user": "bench"}}) as resp:
                body = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"send refused: {resp.status} {body}")
            answered[body["result"]["seq"]] = time.time()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return time.perf_counter() - started, latencies, answered


async def heard_times(session: aiohttp.ClientSession, base: str, room: str,
                      count: int) -> dict[int, float]:
    deadline = time.monotonic() + 60
    while True:
        async with session.post(f"{base}/api/actors/listener/{room}/actions/heard_times",
                                json={}) as resp:
            heard = {int(seq): at for seq, at in (await resp.json())["result"].items()}
        if len(heard) >= count or time.monotonic() > deadline:
            return heard
        await asyncio.sleep(0.05)


async def main(args: argparse.Namespace) -> None:
    rows: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
        server = ServerProcess(args.collab, workdir / "bench.db", workdir / "server.log",
                               extra=("--app", "bench_app:registry"), env=env)
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            async with aiohttp.ClientSession() as session:
                for round_ in range(args.rounds):
                    for label, room in (("unwatched", f"plain/{round_}"),
                                        ("watched", f"watched/{round_}")):
                        cpu = server.cpu_s()
                        wall, latencies, answered = await post_messages(
                            session, base, room, args.messages, args.senders)
                        if label == "watched":
                            heard = await heard_times(session, base, room, args.messages)
                            delays = [(heard[seq] - at) * 1000 for seq, at in answered.items()
                                      if seq in heard]
                            note("watched: heard after answer p50 (ms)", quantile(delays, 0.5))
                            note("watched: heard after answer p99 (ms)", quantile(delays, 0.99))
                            note("watched: messages not heard", args.messages - len(heard))
                        note(f"{label}: sends/s", args.messages / wall)
                        note(f"{label}: send p50 (ms)", quantile(latencies, 0.5))
                        note(f"{label}: send p99 (ms)", quantile(latencies, 0.99))
                        note(f"{label}: server CPU per message (us)",
                             (server.cpu_s() - cpu) / args.messages * 1e6)
        finally:
            await server.stop()
    print(f"{args.messages} messages, {args.senders} senders, median of {args.rounds} rounds")
    for name, values in sorted(rows.items()):
        print(f"  {name:45s} {statistics.median(values):10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--collab", default=default_collab())
    asyncio.run(main(parser.parse_args()))
