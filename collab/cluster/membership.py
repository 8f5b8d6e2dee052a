"""One process among several sharing a store: its leases, its Redis bus, forwarding
and relays, plugged into the runtime as its ownership layer (runtime/ownership.py).

`Cluster.join(system, redis)` claims this process's place: from then on every
actor is owned through a lease in Redis (cluster/placement.py), a message for an
actor owned elsewhere is forwarded (cluster/forwarding.py) or relayed
(cluster/relay.py), and what an owned actor writes to sockets on other processes
is published for their relays (cluster/fanout.py). `leave()` undoes it, after
every actor has stopped.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from collab.cluster.bus import Bus
from collab.cluster.fanout import REPLAY_SECONDS, RemotePeers
from collab.cluster.forwarding import Forwarder
from collab.cluster.placement import Placement
from collab.cluster.relay import Relays
from collab.runtime.mailbox import ActorBase
from collab.runtime.ownership import HERE, Ownership
from collab.runtime.system import ActorSystem
from collab.runtime.travels import peer_of, travel_of


class Cluster(Ownership):
    """The ownership layer of one process among several."""

    def __init__(self, system: ActorSystem, redis: Redis, namespace: str = "collab") -> None:
        self.system = system
        self.redis = redis
        settings = system.settings
        self.placement = Placement(redis, settings.lease_ttl, namespace=namespace,
                                   liveness_ttl=settings.liveness_ttl)
        self.bus = Bus(redis, namespace)
        self.placement.liveness.deaf = self._deaf
        self.bus.on_reconnect(self.placement.renew_soon)
        self.forwarder = Forwarder(system, self.bus, self.placement.node)
        # Owners that die are noticed within a liveness TTL, not a lease TTL.
        self.relays = Relays(self.forwarder, self.bus, settings.liveness_ttl / 3,
                             cut_off_after=settings.lease_ttl,
                             forget_owner=self.placement.forget_owner)

    @classmethod
    async def join(cls, system: ActorSystem, redis: Redis, namespace: str = "collab") -> Cluster:
        """Make `system` one of several processes of the deployment whose Redis keys and
        channels start with `namespace`: claim leases, listen on its channel."""
        cluster = cls(system, redis, namespace)
        await cluster.placement.start()
        await cluster.forwarder.subscribe()
        await cluster.bus.start()
        cluster.relays.start()
        cluster.relays.spawn(cluster._trim_replays_forever())
        system.ownership = cluster
        return cluster

    async def leave(self) -> None:
        """After `system.stop_all`: stop relaying, listening and renewing leases."""
        await self.relays.stop()
        await self.bus.stop()
        await self.placement.stop()

    async def _deaf(self, node: str) -> bool:
        channel = self.bus.node_channel(node)
        return (await self.bus.listeners([channel])).get(channel, 0) == 0

    async def _trim_replays_forever(self) -> None:
        """Owned actors that went quiet let go of their replay items (cluster/fanout.py)."""
        while True:
            await asyncio.sleep(REPLAY_SECONDS / 3)
            self.remote_peers.trim_replays()

    @property
    def node(self) -> str:  # type: ignore[override]
        return self.placement.node

    @property
    def remote_peers(self) -> RemotePeers:
        return self.forwarder.remote_peers

    # -- the runtime's questions (runtime/ownership.py) -------------------------------

    async def claim(self, actor: ActorBase) -> int:
        return await self.placement.claim(actor)

    async def release(self, actor: ActorBase) -> None:
        self.remote_peers.actor_stopped(actor)  # its relays hear it stopped here
        await self.placement.release(actor)

    def route(self, kind: type[ActorBase], key: str, message: Any) -> Any:
        if self.forwarder.from_afar(message):
            return HERE  # forwarded here by the owner we believe in: handle it here
        if peer_of(message) is not None:
            relay = self.relays.get(kind.kind, key)
            if relay is not None and relay.post(message):
                return relay
        owner = self.placement.remote_owner(kind.kind, key)
        if owner is not None:
            return self._send(owner, kind, key, message)
        return HERE

    def redirect(self, owner: str, kind: type[ActorBase], key: str, message: Any) -> bool:
        return self._send(owner, kind, key, message) is not HERE

    def present(self, kind: type[ActorBase], key: str) -> Any:
        return self.relays.get(kind.kind, key)

    def elsewhere(self, kind: str, key: str) -> bool:
        return self.placement.remote_owner(kind, key) is not None

    async def loaded_elsewhere(self, kind: str, keys: list[str]) -> set[str]:
        holders = await self.placement.leases.holders(kind, keys)
        others = {node for node in holders.values() if node != self.node}
        alive = await self.placement.liveness.alive(others)
        return {key for key, node in holders.items() if node in alive}

    def _send(self, owner: str, kind: type[ActorBase], key: str, message: Any) -> Any:
        """Hand `message` to `owner`: a client socket's message through the relay for
        (kind, key) (returned), any other forwarded (returns None). HERE if it cannot
        go there: it came from there, or it never travels."""
        if self.forwarder.from_afar(message):
            return HERE
        if peer_of(message) is None:
            return None if self.forwarder.forward(owner, kind.kind, key, message) else HERE
        if travel_of(message).closes and self.relays.get(kind.kind, key) is None:
            return None  # leaving a relay that already closed: nothing left to do
        relay = self.relays.open(kind.kind, key, owner)
        relay.post(message)
        return relay
