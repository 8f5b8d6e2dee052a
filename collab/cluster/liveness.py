"""Which processes of a deployment are alive: one heartbeat key per process.

Each process rewrites `<namespace>:alive:<node>` four times per liveness TTL
(COLLAB_LIVENESS_TTL, 1.5 s) with Redis's clock at that moment; the key itself
lasts a lease TTL (COLLAB_LEASE_TTL, 10 s). This is the lease that covers every
actor the process owns: the per-actor entries in Redis only say who owns what
(cluster/placement.py), so keeping 100,000 actors costs one write per beat.

Another process counts it gone when its key has expired (silent for a lease
TTL), or when its last beat is older than a liveness TTL *and* its pub/sub
channel has no listener: a process killed with -9 loses its Redis connections,
and with them its subscription, at once; one that is only paused (a long GC, a
stalled host) keeps them, and is waited for up to the lease TTL. Data never
depends on this being right: an actor taken over gets a higher fencing token,
and the store refuses the old owner's writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

log = logging.getLogger(__name__)

#: KEYS: this process's key. ARGV: ttl ms. Stores Redis's time in ms; returns 1 if
#: the key was still there (0: it lapsed, others may have taken our actors over).
_BEAT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], now, 'PX', ARGV[1])
return existed
"""

#: KEYS: a process's key. Returns -1 if it is gone, else the ms since its last beat.
_AGE = """
local beat = redis.call('GET', KEYS[1])
if not beat then return -1 end
local t = redis.call('TIME')
return t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(beat)
"""


class Liveness:
    def __init__(self, redis: Redis, namespace: str, node: str, ttl: float,
                 lease_ttl: float) -> None:
        self.redis = redis
        self.namespace = namespace
        self.node = node
        self.ttl = ttl
        self.lease_ttl = max(lease_ttl, ttl)
        #: Seconds between two beats: four per liveness TTL, so one lost write is harmless.
        self.interval = ttl / 4
        #: Called when a beat finds our key had lapsed (we were cut off or paused).
        self.on_lapse: Callable[[], None] | None = None
        #: Whether a process's channel has no listener (the cluster's bus counts).
        self.deaf: Callable[[str], Awaitable[bool]] | None = None
        self._beat_script = redis.register_script(_BEAT)
        self._age_script = redis.register_script(_AGE)
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

    async def alive(self, nodes: set[str]) -> set[str]:
        """Those of `nodes` whose heartbeat has not expired, in one round trip."""
        if not nodes:
            return set()
        ordered = sorted(nodes)
        async with self.redis.pipeline(transaction=False) as pipe:  # not MGET: keys span slots
            for node in ordered:
                pipe.get(self.key(node))
            beats = await pipe.execute()
        return {node for node, beat in zip(ordered, beats, strict=True) if beat is not None}

    async def age(self, node: str) -> float | None:
        """Seconds since `node`'s last beat, or None if it is gone. Raises RedisError."""
        ms = await self._age_script(keys=[self.key(node)])
        return None if ms < 0 else ms / 1000

    async def gone(self, node: str) -> bool:
        """Whether process `node` is gone (see the module's docstring). One whose beat is
        late while its channel has no listener is waited for, up to a liveness TTL, so
        a caller gets a prompt answer rather than a refusal and a retry."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ttl
        deaf: bool | None = None
        while True:
            age = await self.age(node)
            if age is None:
                return True
            if deaf is None:
                deaf = self.deaf is not None and await self.deaf(node)
            if not deaf:
                return False  # it listens: alive, or paused (waited out by the key's TTL)
            if age > self.ttl:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(self.interval, max(0.0, self.ttl - age)))

    async def _beat(self) -> bool:
        return bool(await self._beat_script(keys=[self.key(self.node)],
                                            args=[int(self.lease_ttl * 1000)]))

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                existed = await self._beat()
            except Exception as exc:  # Redis away: others will wait a lease TTL for us
                log.debug("liveness heartbeat failed: %s", exc)
                continue
            if not existed:
                log.warning("this process's heartbeat had lapsed; checking its actors")
                if self.on_lapse is not None:
                    self.on_lapse()
