"""Which processes of a deployment are alive: a short-lived Redis key per process.

Each process keeps `<namespace>:alive:<node>` set with a TTL of
COLLAB_LIVENESS_TTL (1.5 s), rewritten four times per TTL. A process killed with
-9 stops rewriting it, so within one liveness TTL every other process can tell
it is gone, long before its leases (COLLAB_LEASE_TTL, 10 s) would run out, and
take its actors over with a higher fencing token (cluster/placement.py). Data
never depends on this being right: a process that was only paused (a long GC,
a stalled host) and comes back finds its leases taken at its next renewal, and
the store refuses its writes (fencing). A wrong guess costs a reload, not data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis

log = logging.getLogger(__name__)


class Liveness:
    def __init__(self, redis: Redis, namespace: str, node: str, ttl: float) -> None:
        self.redis = redis
        self.namespace = namespace
        self.node = node
        self.ttl = ttl
        #: Seconds between two heartbeats: four per TTL, so one lost write is harmless.
        self.interval = ttl / 4
        self._task: asyncio.Task[None] | None = None

    def key(self, node: str) -> str:
        return f"{self.namespace}:alive:{node}"

    async def start(self) -> None:
        """Say this process is alive (once now, bounded), then keep saying it."""
        with contextlib.suppress(Exception):  # Redis down: the loop keeps trying
            async with asyncio.timeout(self.ttl):
                await self._beat()
        self._task = asyncio.create_task(self._beat_forever(), name="liveness")

    async def stop(self) -> None:
        """Stop the heartbeat and say this process is gone (after its actors stopped)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.ttl):
                await self.redis.delete(self.key(self.node))

    async def alive(self, node: str) -> bool:
        """Whether `node` said it was alive within the last TTL. Raises RedisError."""
        return bool(await self.redis.exists(self.key(node)))

    async def wait_gone(self, node: str, within: float) -> bool:
        """Wait up to `within` seconds for `node`'s heartbeat to lapse; True if it did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while await self.alive(node):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(self.interval, max(0.0, deadline - loop.time())))
        return True

    async def _beat(self) -> None:
        await self.redis.set(self.key(self.node), b"1", px=int(self.ttl * 1000))

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._beat()
            except Exception as exc:  # Redis away: others will think us gone; fencing holds
                log.debug("liveness heartbeat failed: %s", exc)
