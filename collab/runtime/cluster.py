"""Cluster mode for one process: leases, the Redis bus, forwarding and relays,
started and stopped together (when several processes share one store)."""

from __future__ import annotations

from redis.asyncio import Redis

from collab.cluster.bus import Bus
from collab.cluster.placement import Placement
from collab.runtime.forwarding import Forwarder
from collab.runtime.relay import Relays
from collab.runtime.system import ActorSystem


async def join(system: ActorSystem, redis: Redis) -> None:
    """Make `system` one of several processes: claim leases, listen on its channel."""
    ttl = system.settings.lease_ttl
    system.placement = Placement(redis, ttl)
    system.placement.start()
    bus = Bus(redis)
    system.forwarder = Forwarder(system, bus, system.placement.node)
    await system.forwarder.subscribe()
    await bus.start()
    system.relays = Relays(system.forwarder, bus, ttl / 3)
    system.relays.start()


async def leave(system: ActorSystem) -> None:
    """After `system.stop_all`: stop relaying, listening and renewing leases."""
    if system.relays is not None:
        await system.relays.stop()
    if system.forwarder is not None:
        await system.forwarder.bus.stop()
    if system.placement is not None:
        await system.placement.stop()
