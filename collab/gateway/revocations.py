"""The users this process refuses: who was revoked by an administrator, and when.

Read from the store at startup and kept in memory for `Gatekeeper.verify`. A
revocation is committed to the store before anything else happens, then (with
several processes) published on Redis, so every process closes its own sockets
of that user with 4403 and refuses their older tokens at once. Pub/sub loses
what is published while a subscriber is cut off (redis-py even hides short
cuts), so in cluster mode the table is also read again after the bus
reconnects and every RESYNC_INTERVAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

from collab.auth import Principal
from collab.cluster.bus import Bus
from collab.cluster.leases import PREFIX
from collab.errors import CloseCode
from collab.gateway.connection import Connection
from collab.runtime.system import ActorSystem
from collab.storage.base import RevokeUser

log = logging.getLogger(__name__)

#: The Redis channel every process subscribes to for revocations made elsewhere.
CHANNEL = f"{PREFIX}:revocations"
#: Seconds `revoke` waits for Redis to take the message before answering anyway
#: (the revocation is stored already; other processes then learn of it when their
#: pub/sub reconnects, or at their next start).
PUBLISH_TIMEOUT = 2.0
#: The close reason sent with 4403.
CLOSE_REASON = "revoked"
#: Seconds between two reads of the whole table in cluster mode: the longest a
#: revocation whose message was lost goes unenforced here. The table has one
#: small row per revoked user, so a read costs little next to this interval.
RESYNC_INTERVAL = 5.0


def refused(principal: Principal, revoked_at: float) -> bool:
    """True if a revocation at `revoked_at` covers `principal`'s token: one issued at
    or before it, or one without `iat`."""
    return principal.issued_at is None or principal.issued_at <= revoked_at


class Revocations:
    """user -> Unix time of their latest revocation, as this process enforces it."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._system: ActorSystem | None = None
        self._connections: Iterable[Connection] = ()
        self._bus: Bus | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def revoked_at(self, user: str) -> float | None:
        """When `user` was last revoked (Unix time), or None if never."""
        return self._at.get(user)

    async def start(self, system: ActorSystem, connections: Iterable[Connection]) -> None:
        """Enforce the store's revocations, closing `connections` (this process's live
        sockets) of users revoked from now on. In cluster mode, first listen on Redis
        so that nothing revoked elsewhere during the load is missed."""
        self._system = system
        self._connections = connections
        if system.forwarder is not None:
            self._bus = system.forwarder.bus
            self._bus.on_reconnect(self._reload_soon)
            await self._bus.subscribe(CHANNEL, self._heard)
        self._merge(await system.store.load_revocations())
        if self._bus is not None:
            self._spawn(self._resync_forever(), "revocations-resync")

    async def stop(self) -> None:
        """Stop listening; the store keeps every revocation for the next start."""
        if self._bus is not None:
            self._bus.unsubscribe(CHANNEL)
            self._bus = None
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def revoke(self, user: str, at: float) -> int:
        """Refuse `user`'s tokens issued at or before `at`, here and in every process.

        Returns once the revocation is committed (raises the store's error if it
        cannot be, and then nothing changed), after handing it to Redis, with the
        number of this process's sockets it closed."""
        if self._system is None:
            raise RuntimeError("Revocations.start() first")
        await self._system.committer.submit([RevokeUser(user, at)])
        self._merge({user: at})
        if self._bus is not None:
            sent = self._bus.publish(CHANNEL, json.dumps({"user": user, "at": at}).encode(),
                                     count=True)
            assert sent is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PUBLISH_TIMEOUT):
                    await sent
        return self._close_sockets(user)

    def _merge(self, revocations: dict[str, float]) -> list[str]:
        """Keep the latest time per user; returns the users whose time moved."""
        moved = []
        for user, at in revocations.items():
            if at > self._at.get(user, float("-inf")):
                self._at[user] = at
                moved.append(user)
        return moved

    def _close_sockets(self, user: str) -> int:
        """Close this process's open sockets of `user` whose token is now refused."""
        at = self._at[user]
        closed = 0
        for conn in list(self._connections):
            if conn.principal.user == user and not conn.closed and refused(conn.principal, at):
                conn.close(CloseCode.FORBIDDEN, CLOSE_REASON)
                closed += 1
        return closed

    def _heard(self, payload: bytes) -> None:
        """A revocation published by a process (this one's own come back too)."""
        message = json.loads(payload)
        user, at = message["user"], message["at"]
        if not isinstance(user, str) or not isinstance(at, int | float):
            raise ValueError(f"not a revocation: {message!r}")
        for moved in self._merge({user: float(at)}):
            self._close_sockets(moved)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reload_soon(self) -> None:
        """After a Redis outage: read the table again (a bus callback, so sync)."""
        if self._bus is not None:  # not stopped
            self._spawn(self._reload(), "revocations-reload")

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_INTERVAL)
            await self._reload()

    async def _reload(self) -> None:
        """Enforce what the store holds and this process missed."""
        assert self._system is not None
        try:
            stored = await self._system.store.load_revocations()
        except Exception as exc:  # the next resync tries again
            log.warning("could not read the revocations again: %s", exc)
            return
        for user in self._merge(stored):
            log.info("revocation of %r missed on Redis, enforced from the store", user)
            self._close_sockets(user)
