#!/usr/bin/env python3
"""Idle connections: what `collab serve` holds for many documents whose clients stay
connected but quiet (the common case), and how fast a quiet document answers again.

    python bench/idle_bench.py [--docs 5000] [--clients 2] [--quiet 40] [--wake 500]

Opens `--clients` y-websocket-protocol sockets to each of `--docs` documents (the
first client of each writes one update, which the others receive), then keeps them
open and quiet for `--quiet` seconds, renewing awareness every 15 s as y-websocket
does. It reads the server's RSS right after the edits and again after the quiet
period, then wakes `--wake` documents one at a time (their first client sends an
update) and times how long until their second client has it. Every replica must
end up as written (nothing lost, nothing applied twice). It prints numbers only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from pycrdt import Doc, Text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from collab.protocol import ywire
from yjs_bench import ServerProcess, default_collab

AWARENESS_RENEWAL = 15.0


class Client:
    """One socket to one document: a pycrdt Doc synced over the y-websocket protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, client_id: int) -> None:
        self.ws = ws
        self.doc = Doc(client_id=client_id)
        self.client_id = client_id
        self.clock = 0
        self.updates: asyncio.Queue[bytes] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type != aiohttp.WSMsgType.BINARY:
                continue
            message = ywire.parse(frame.data)
            if type(message) is ywire.SyncStep1:
                await self.ws.send_bytes(ywire.serialize(
                    ywire.SyncStep2(self.doc.get_update(message.state_vector))))
            elif type(message) is ywire.SyncStep2 or type(message) is ywire.SyncUpdate:
                self.doc.apply_update(message.update)
                if type(message) is ywire.SyncUpdate:
                    self.updates.put_nowait(message.update)

    async def start(self) -> None:
        await self.ws.send_bytes(ywire.serialize(ywire.SyncStep1(self.doc.get_state())))
        await self.renew_awareness()

    async def renew_awareness(self) -> None:
        self.clock += 1
        entry = ywire.AwarenessEntry(self.client_id, self.clock, '{"user":{"name":"bench"}}')
        await self.ws.send_bytes(ywire.serialize(
            ywire.AwarenessMessage(ywire.encode_awareness([entry]))))

    async def type(self, chars: str) -> None:
        text = self.doc.get("body", type=Text)
        before = self.doc.get_state()
        text.insert(len(text), chars)
        await self.ws.send_bytes(ywire.encode_update(self.doc.get_update(before)))


async def main(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = dict(os.environ, **{k: v for k, v in (s.split("=", 1) for s in args.env)})
        server = ServerProcess(args.collab, workdir / "idle.db", workdir / "server.log", env=env)
        await server.start()
        base = f"ws://127.0.0.1:{server.port}/yjs"
        connector = aiohttp.TCPConnector(limit=0)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                idle_rss = server.rss_mib()
                started = time.perf_counter()
                docs: list[list[Client]] = []
                sem = asyncio.Semaphore(64)

                async def open_doc(n: int) -> list[Client]:
                    async with sem:
                        clients = []
                        for c in range(args.clients):
                            ws = await session.ws_connect(f"{base}/idle-{n}", max_msg_size=0,
                                                          autoping=True, heartbeat=None)
                            client = Client(ws, n * 16 + c + 1)
                            await client.start()
                            clients.append(client)
                        await clients[0].type(f"doc {n}. ")
                        for other in clients[1:]:
                            await asyncio.wait_for(other.updates.get(), 30)
                        return clients

                docs = await asyncio.gather(*(open_doc(n) for n in range(args.docs)))
                connect_s = time.perf_counter() - started
                synced_rss = server.rss_mib()

                quiet_until = time.monotonic() + args.quiet
                while time.monotonic() < quiet_until:
                    await asyncio.sleep(min(AWARENESS_RENEWAL, quiet_until - time.monotonic()))
                    for clients in docs:
                        for client in clients:
                            await client.renew_awareness()
                await asyncio.sleep(2)
                quiet_rss = server.rss_mib()

                wake_ms = []
                for clients in docs[:args.wake]:
                    t0 = time.perf_counter()
                    await clients[0].type("woken. ")
                    await asyncio.wait_for(clients[1].updates.get(), 30)
                    wake_ms.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(1)
                expected = [f"doc {n}. " + ("woken. " if n < args.wake else "")
                            for n in range(args.docs)]
                differ = sum(str(c.doc.get("body", type=Text)) != expected[n]
                             for n, clients in enumerate(docs) for c in clients)
                for clients in docs:
                    for client in clients:
                        await client.ws.close()
        finally:
            await server.stop()
    sockets = args.docs * args.clients
    wake_ms.sort()
    print(f"{args.docs} documents x {args.clients} clients ({sockets} sockets), "
          f"{args.quiet:.0f} s quiet")
    for name, value in [
        ("connect and sync all (s)", connect_s),
        ("RSS idle server (MiB)", idle_rss),
        ("RSS after the edits (MiB)", synced_rss),
        ("RSS after the quiet period (MiB)", quiet_rss),
        ("KiB per socket, quiet", (quiet_rss - idle_rss) * 1024 / sockets),
        ("wake: update to other client p50 (ms)", statistics.median(wake_ms)),
        ("wake: p99 (ms)", wake_ms[min(len(wake_ms) - 1, int(0.99 * len(wake_ms)))]),
        ("replicas not as written", differ),
    ]:
        print(f"  {name:40s} {value:10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--quiet", type=float, default=40.0)
    parser.add_argument("--wake", type=int, default=500)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    parser.add_argument("--collab", default=default_collab())
    asyncio.run(main(parser.parse_args()))
