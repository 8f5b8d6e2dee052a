"""Placement: which process runs an actor, when several share one store.

Before an actor loads, its process claims the actor's entry in Redis (a
directory: kind:key -> node:token); the token becomes the actor's fence token,
carried by all its writes. An entry holds for as long as its process is alive:
the process's heartbeat (cluster/liveness.py) is the lease of all its actors,
so upkeep costs one write per beat however many actors it owns. Entries only
need a slow refresh (every DIRECTORY_TTL / 3, in batches that never stall the
loop) so that those of processes gone for good expire. A claim that finds the
entry held by a process that is gone takes it over with a higher token; the
store refuses the old owner's writes, and an old owner that finds an entry of
its own taken (a refused write, a refresh, a lapsed heartbeat) stops that actor.
Entries are released after an actor's last write commits. Requests for an actor
another process owns are forwarded to it (cluster/forwarding.py) or relayed
(cluster/relay.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.exceptions import RedisError

from collab.cluster.leases import HeldElsewhere, Lease, Leases
from collab.cluster.liveness import Liveness
from collab.errors import CloseCode, CollabError
from collab.runtime.ownership import OwnedElsewhere

if TYPE_CHECKING:
    from collab.runtime.mailbox import ActorBase

log = logging.getLogger(__name__)

#: Seconds a directory entry outlives its last refresh: entries of processes gone for
#: good expire this long after they stopped refreshing them.
DIRECTORY_TTL = 3600.0
#: Entries refreshed per round trip, and so at most per loop turn.
REFRESH_BATCH = 100


class ClusterUnavailable(CollabError):
    """Redis, which decides who owns what, does not answer: nothing was done."""

    code = "cluster_unavailable"
    status = 503
    close_code = CloseCode.TRY_AGAIN_LATER


def node_id() -> str:
    """Unique per process and readable in Redis: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Placement:
    def __init__(self, redis: Redis, ttl: float, node: str | None = None,
                 namespace: str = "collab", liveness_ttl: float = 1.5,
                 directory_ttl: float = DIRECTORY_TTL) -> None:
        """`ttl`: the lease TTL, how long a silent process may only be paused."""
        self.redis = redis
        self.ttl = ttl
        self.directory_ttl = directory_ttl
        self.leases = Leases(redis, node or node_id(), directory_ttl, namespace)
        self.liveness = Liveness(redis, namespace, self.leases.node, liveness_ttl, ttl)
        self.liveness.on_lapse = self.renew_soon
        #: Actors taken over from processes found gone, since start.
        self.takeovers = 0
        #: Seconds the last refresh of every entry took, and how many it refreshed.
        self.last_refresh: tuple[float, int] = (0.0, 0)
        self._renew_now = asyncio.Event()
        self.held: dict[tuple[str, str], tuple[Lease, ActorBase]] = {}
        #: Owners seen elsewhere, (node, loop time to stop believing it): requests go
        #: straight to them, without a local instance and a failed claim each time.
        self.remote: dict[tuple[str, str], tuple[str, float]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def node(self) -> str:
        return self.leases.node

    async def start(self) -> None:
        await self.liveness.start()
        self._task = asyncio.create_task(self._renew_forever(), name="lease-renewal")

    async def stop(self) -> None:
        """Stop renewing (call after every actor stopped and released its lease)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.liveness.stop()

    async def claim(self, actor: ActorBase) -> int:
        """Own `actor` for this process; returns its fence token. Raises
        OwnedElsewhere if another process holds it."""
        floor = await actor.system.store.fence_token(actor.kind, actor.key)
        try:
            got = await self.leases.acquire(actor.kind, actor.key, floor)
            if isinstance(got, HeldElsewhere) and await self._gone(got.node):
                held = got
                got = await self.leases.acquire(actor.kind, actor.key, floor, steal=held)
                if isinstance(got, Lease):
                    self.takeovers += 1
                    log.warning("took %s:%s over from process %s, which is gone (token %d "
                                "> %d)", actor.kind, actor.key, held.node, got.token,
                                held.token)
        except RedisError as exc:
            raise ClusterUnavailable(f"cannot reach Redis to claim {actor.kind}:{actor.key}: "
                                     f"{exc}") from None
        if isinstance(got, HeldElsewhere):
            # Believed for half a TTL: a dead owner's lease outlives it by at most a TTL.
            self.remote[(actor.kind, actor.key)] = (
                got.node, asyncio.get_running_loop().time() + self.ttl / 2)
            raise OwnedElsewhere(
                f"{actor.kind}:{actor.key} is owned by process {got.node}; retry there or later",
                got.node)
        self.held[(actor.kind, actor.key)] = (got, actor)
        self.remote.pop((actor.kind, actor.key), None)
        return got.token

    async def _gone(self, node: str) -> bool:
        return node != self.node and await self.liveness.gone(node)

    def remote_owner(self, kind: str, key: str) -> str | None:
        """The process believed to own (kind, key), if another one and still believed."""
        known = self.remote.get((kind, key))
        if known is None:
            return None
        if known[1] < asyncio.get_running_loop().time():
            del self.remote[(kind, key)]
            return None
        return known[0]

    def forget_owner(self, kind: str, key: str) -> None:
        self.remote.pop((kind, key), None)

    def forget_owner_node(self, node: str) -> None:
        """Stop believing process `node` owns anything: it stopped answering."""
        for ident in [ident for ident, (owner, _) in self.remote.items() if owner == node]:
            del self.remote[ident]

    async def release(self, actor: ActorBase) -> None:
        held = self.held.pop((actor.kind, actor.key), None)
        if held is not None and held[1] is actor:
            try:
                await self.leases.release(held[0])
            except Exception as exc:  # it expires by itself
                log.warning("could not release %s:%s: %s", actor.kind, actor.key, exc)

    def renew_soon(self) -> None:
        """Check (and refresh, or take again) every entry now, not at the next round:
        Redis is back after an outage and may have lost them, or our heartbeat lapsed
        and others may have taken some over."""
        self._renew_now.set()

    async def _renew_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.directory_ttl / 3):
                    await self._renew_now.wait()
            self._renew_now.clear()
            started, count = loop.time(), 0
            held = list(self.held.values())  # at C speed: 100,000 in about a millisecond
            try:
                for start in range(0, len(held), REFRESH_BATCH):
                    batch = [lease for lease, _ in held[start:start + REFRESH_BATCH]]
                    for lease in await self.leases.renew(batch):
                        await self._reclaim(lease)
                    count += len(batch)
            except Exception as exc:
                # Redis away: keep serving and keep trying. Nobody can claim these
                # actors without Redis; a process that can reach it and takes one over
                # gets a higher token, and the store then refuses our writes, which
                # stops that actor here (WriteChain's `stale`): one at a time, each
                # only once someone else really has it, never all at once.
                log.warning("refreshing actor entries failed: %s", exc)
                await asyncio.sleep(min(self.ttl / 3, self.directory_ttl / 3))
                self._renew_now.set()
                continue
            self.last_refresh = (loop.time() - started, count)

    async def _reclaim(self, lease: Lease) -> None:
        """A lease that could not be renewed: it expired (a Redis outage longer than the
        TTL, or a Redis restarted without its data) or another process holds it. Take
        it again if nobody else did, with a new token the actor writes with from now
        on; otherwise the actor stops here."""
        entry = self.held.get((lease.kind, lease.key))
        if entry is None or entry[0] is not lease:
            return  # released meanwhile
        actor = entry[1]
        try:
            got = await self.leases.acquire(lease.kind, lease.key, floor=lease.token)
        except Exception as exc:
            log.warning("could not take %s:%s again: %s", lease.kind, lease.key, exc)
            return  # the next round tries again
        if self.held.get((lease.kind, lease.key)) is not entry:
            if isinstance(got, Lease):  # released meanwhile: give the new one up too
                await self.leases.release(got)
            return
        if isinstance(got, Lease):
            log.info("%s:%s: lease expired unowned; taken again (token %d)", lease.kind,
                     lease.key, got.token)
            self.held[(lease.kind, lease.key)] = (got, actor)
            actor.fence_token = got.token
            return
        log.warning("lost the lease of %s:%s to process %s; stopping it here", lease.kind,
                    lease.key, got.node)
        self.held.pop((lease.kind, lease.key), None)
        actor._ownership_lost()
