#!/usr/bin/env python3
"""How fast the native protocol `/ws` is: actions over one socket, and chat rooms.
Prints numbers, asserts nothing.

Starts its own `collab serve --app bench_app:registry` on 127.0.0.1 (port 0, a
temporary SQLite file, synchronous NORMAL as by default), drives it from
Python clients in this process, and stops it.

    python bench/native_bench.py                     # both, about 15 s
    python bench/native_bench.py --only chat --members 50 --senders 5 --messages 5000

actions
    One socket keeps `--window` `actor.call`s in flight to one actor; each
    call changes the actor's state, so each answer waits for its commit.
    Reports answered actions/s.

chat
    `--members` sockets connect to one room (`bench_room`: the built-in Room
    with its per-connection rate limit lifted); `--senders` of them send
    `--messages` messages in total, each keeping `--window` sends unanswered.
    Every message reaches every member as a `message` event once committed.
    Reports acknowledged messages/s, deliveries/s, the delay from send to
    each member's event (p50/p99; one process, one clock) and server CPU per
    delivery. Saturated, the delay is mostly queueing; `--rate N` instead
    sends N messages/s in total on a fixed schedule, to read the delay of a
    room that keeps up.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import msgpack

sys.path.insert(0, str(Path(__file__).parent))
from yjs_bench import ServerProcess, default_collab


class Socket:
    """A minimal msgpack `/ws` client: requests answered by id, events to a callback."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, on_event=None) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.on_event = on_event
        self.reader = asyncio.ensure_future(self.read())

    async def read(self) -> None:
        async for msg in self.ws:
            message = msgpack.unpackb(msg.data)
            if "event" in message:
                if self.on_event is not None:
                    self.on_event(message)
            else:
                future = self.pending.pop(message["id"])
                if message["ok"]:
                    future.set_result(message["result"])
                else:
                    future.set_exception(RuntimeError(message["error"]))

    async def request(self, op: str, **fields) -> object:
        request_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        await self.ws.send_bytes(msgpack.packb({"id": request_id, "op": op, **fields}))
        return await future


async def windowed(total: int, window: int, make) -> None:
    """Run `make(i)` for i in range(total), at most `window` at a time."""
    counter = iter(range(total))

    async def lane() -> None:
        for i in counter:
            await make(i)

    await asyncio.gather(*(lane() for _ in range(window)))


async def bench_actions(session, server: ServerProcess, args) -> None:
    ws = await session.ws_connect(f"ws://127.0.0.1:{server.port}/ws")
    sock = Socket(ws)
    call = {"actor": "counter", "key": "bench", "action": "increment"}
    await sock.request("actor.call", **call)  # load it
    cpu0, t0 = server.cpu_s(), time.perf_counter()
    await windowed(args.calls, args.window, lambda i: sock.request("actor.call", **call))
    elapsed, cpu = time.perf_counter() - t0, server.cpu_s() - cpu0
    print(f"actions   {args.calls} calls, window {args.window}: "
          f"{args.calls / elapsed:,.0f} actions/s, {cpu / args.calls * 1e6:.1f} µs server CPU "
          f"per action")
    await ws.close()


async def bench_chat(session, server: ServerProcess, args) -> None:
    delays_ms: list[float] = []
    delivered = 0
    done = asyncio.Event()
    expected = args.messages * args.members

    def on_event(event: dict) -> None:
        nonlocal delivered
        if event.get("name") != "message":
            return
        sent_ns = int(event["data"]["body"])
        delays_ms.append((time.perf_counter_ns() - sent_ns) / 1e6)
        delivered += 1
        if delivered == expected:
            done.set()

    sockets = []
    for i in range(args.members):
        ws = await session.ws_connect(f"ws://127.0.0.1:{server.port}/ws")
        sock = Socket(ws, on_event)
        await sock.request("actor.connect", actor="bench_room", key="bench",
                           params={"user": f"user{i}"})
        sockets.append(sock)
    senders = sockets[:args.senders]
    per_sender = args.messages // args.senders

    async def one(sock: Socket, index: int, i: int) -> None:
        await sock.request("actor.call", actor="bench_room", key="bench", action="send",
                           args=[f"{index}-{i}", str(time.perf_counter_ns())])

    async def send_all(index: int, sock: Socket) -> None:
        if not args.rate:
            await windowed(per_sender, args.window, lambda i: one(sock, index, i))
            return
        interval = args.senders / args.rate
        start = time.perf_counter() + index * interval / args.senders
        pending = []
        for i in range(per_sender):
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
            pending.append(asyncio.ensure_future(one(sock, index, i)))
        await asyncio.gather(*pending)

    cpu0, t0 = server.cpu_s(), time.perf_counter()
    await asyncio.gather(*(send_all(i, s) for i, s in enumerate(senders)))
    acked = time.perf_counter() - t0
    expected = per_sender * args.senders * args.members
    if delivered < expected:
        await asyncio.wait_for(done.wait(), 60)
    elapsed, cpu = time.perf_counter() - t0, server.cpu_s() - cpu0
    messages = per_sender * args.senders
    q = statistics.quantiles(delays_ms, n=100)
    mode = f"at {args.rate}/s" if args.rate else f"window {args.window} each"
    print(f"chat      {args.members} members, {args.senders} senders, {messages} messages "
          f"({mode}): {messages / acked:,.0f} acked messages/s, "
          f"{delivered / elapsed:,.0f} deliveries/s, delay p50 {q[49]:.1f} ms "
          f"p99 {q[98]:.1f} ms, {cpu / delivered * 1e6:.1f} µs server CPU per delivery")
    for sock in sockets:
        await sock.ws.close()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
        server = ServerProcess(args.collab, workdir / "bench.db", workdir / "server.log",
                               extra=("--app", "bench_app:registry"), env=env)
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                if args.only in (None, "actions"):
                    await bench_actions(session, server, args)
                if args.only in (None, "chat"):
                    await bench_chat(session, server, args)
        finally:
            await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["actions", "chat"])
    parser.add_argument("--collab", default=default_collab())
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="chat: messages/s in total on a schedule (default: saturate)")
    asyncio.run(main(parser.parse_args()))
