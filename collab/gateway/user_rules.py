"""What administrators decided about users, as this process enforces it: revocations
and permission limits.

A revocation refuses a user's tokens issued before a cut-off (the whole second
after it was asked for: `revocation_cutoff`); limits put a ceiling
over a user's grants (`Principal.limits`). Both are committed to the store before
anything else happens, then (with several processes) published on Redis, so
every process applies them to its own live sockets at once: a revoked user's
sockets close with 4403; a limited user's sockets that may no longer read what
they hold close with 4403, the others keep going with the lower permissions.
Pub/sub loses what is published while a subscriber is cut off (redis-py even
hides short cuts), so in cluster mode the tables are also read again after the
bus reconnects and every RESYNC_INTERVAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
from collections.abc import Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from collab.auth import Principal, parse_limits
from collab.errors import CloseCode
from collab.gateway.socket_peer import SocketPeer
from collab.runtime.system import ActorSystem
from collab.storage.base import LimitUser, RevokeUser, WriteOp

if TYPE_CHECKING:  # the Redis client is imported only by a server given REDIS_URL
    from collab.cluster.bus import Bus

log = logging.getLogger(__name__)

#: The Redis channel every process subscribes to for decisions made elsewhere.
CHANNEL = "user-rules"  # in the deployment's namespace (Bus.channel)
#: Seconds a change waits for Redis to take the message before answering anyway
#: (it is stored already; other processes then learn of it when their pub/sub
#: reconnects, at their next resync, or at their next start).
PUBLISH_TIMEOUT = 2.0
#: Close reasons sent with 4403.
REVOKED = "revoked"
LIMITED = "permissions changed"
#: Seconds between two reads of the tables in cluster mode: the longest a change
#: whose message was lost goes unenforced here. One small row per user concerned.
RESYNC_INTERVAL = 5.0

Limits = Mapping[str, Mapping[str, str]]
#: What `settle` did to a socket.
CLOSED = "closed"
DOWNGRADED = "downgraded"


def revocation_cutoff(now: float) -> float:
    """The cut-off of a revocation asked for at `now` (Unix time): the next whole
    second. A JWT's `iat` has whole seconds, so a token issued at 12.3 says 12 like
    one issued at 12.9: no rule on `iat` can tell a token issued just before a
    revocation at 12.5 from one issued just after. With the cut-off at 13, every
    token issued before the call (iat <= 12) is refused, and the call answers only
    once the clock has reached 13, so every token issued after the answer (iat >=
    13) works. Tokens issued during the call are refused too."""
    return float(math.floor(now) + 1)


def refused(principal: Principal, cutoff: float) -> bool:
    """True if a revocation with this cut-off covers `principal`'s token: one issued
    (`iat`) before it, or one without `iat`."""
    return principal.issued_at is None or principal.issued_at < cutoff


@dataclasses.dataclass(frozen=True, slots=True)
class Applied:
    """What a change did to this process's sockets."""

    closed: int = 0
    downgraded: int = 0


class UserRules:
    """user -> latest revocation time, and user -> (limits, when set)."""

    def __init__(self) -> None:
        self._revoked: dict[str, float] = {}
        self._limits: dict[str, tuple[Limits, float]] = {}
        self._system: ActorSystem | None = None
        self._connections: Iterable[SocketPeer] = ()
        self._bus: Bus | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the gatekeeper asks -------------------------------------------------

    def revoked_at(self, user: str) -> float | None:
        """When `user` was last revoked (Unix time), or None if never."""
        return self._revoked.get(user)

    def limits_of(self, user: str) -> Limits:
        """`user`'s limits ({} when none)."""
        entry = self._limits.get(user)
        return entry[0] if entry is not None else {}

    # -- lifetime -----------------------------------------------------------------

    async def start(self, system: ActorSystem, connections: Iterable[SocketPeer],
                    bus: Bus | None = None) -> None:
        """Enforce what the store holds, and apply changes from now on to
        `connections` (this process's live sockets). With `bus` (cluster mode), listen
        on Redis first, so that nothing decided elsewhere during the load is missed."""
        self._system = system
        self._connections = connections
        if bus is not None:
            self._bus = bus
            self._bus.on_reconnect(self._reload_soon)
            await self._bus.subscribe(self._bus.channel(CHANNEL), self._heard)
        await self._load(apply=False)
        if self._bus is not None:
            self._spawn(self._resync_forever(), "user-rules-resync")

    async def stop(self) -> None:
        """Stop listening; the store keeps everything for the next start."""
        if self._bus is not None:
            self._bus.unsubscribe(self._bus.channel(CHANNEL))
            self._bus = None
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    # -- changes ------------------------------------------------------------------

    async def revoke(self, user: str, now: float) -> Applied:
        """Refuse `user`'s tokens issued before the cut-off of a revocation asked for
        at `now` (`revocation_cutoff`), here and in every process, and close their
        sockets admitted before it. Returns once committed (raises the store's error
        if it cannot be, and then nothing changed), after handing it to Redis, and
        not before the cut-off (at most a second): a token issued after this returns
        works. Returns what it did here."""
        cutoff = revocation_cutoff(now)
        await self._commit(RevokeUser(user, cutoff), {"user": user, "revoked_at": cutoff})
        self._merge_revocation(user, cutoff)
        applied = self._apply(user)
        await asyncio.sleep(max(0.0, cutoff - time.time()))
        return applied

    async def limit(self, user: str, limits: Limits, at: float) -> Applied:
        """Put `limits` over `user`'s permissions ({} lifts them), here and in every
        process; like `revoke`."""
        text = json.dumps(limits, sort_keys=True)
        await self._commit(LimitUser(user, text, at),
                           {"user": user, "limits": limits, "set_at": at})
        self._merge_limits(user, limits, at)
        return self._apply(user)

    async def _commit(self, op: WriteOp, message: dict[str, Any]) -> None:
        if self._system is None:
            raise RuntimeError("UserRules.start() first")
        await self._system.committer.submit([op])
        if self._bus is not None:
            sent = self._bus.publish(self._bus.channel(CHANNEL), json.dumps(message).encode(),
                                     count=True)
            assert sent is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PUBLISH_TIMEOUT):
                    await sent

    def _merge_revocation(self, user: str, at: float) -> bool:
        """Keep the latest time; True if it moved."""
        if at > self._revoked.get(user, float("-inf")):
            self._revoked[user] = at
            return True
        return False

    def _merge_limits(self, user: str, limits: Limits, at: float) -> bool:
        """Keep the latest change; True if it was newer than what we had."""
        current = self._limits.get(user)
        if current is not None and current[1] >= at:
            return False
        self._limits[user] = (limits, at)
        return True

    def _apply(self, user: str) -> Applied:
        """Bring this process's open sockets of `user` in line with the rules."""
        closed = downgraded = 0
        for conn in list(self._connections):
            if conn.principal.user != user or conn.closed:
                continue
            outcome = self.settle(conn)
            closed += outcome == CLOSED
            downgraded += outcome == DOWNGRADED
        return Applied(closed, downgraded)

    def settle(self, conn: SocketPeer) -> str | None:
        """Bring one admitted socket in line with the rules: close it if its user was
        revoked after it was admitted, or if it may no longer read what it holds;
        lower its permissions otherwise. Returns CLOSED, DOWNGRADED or None."""
        principal = conn.principal
        revoked_at = self._revoked.get(principal.user)
        if revoked_at is not None and refused(principal, revoked_at) \
                and conn.admitted_at <= revoked_at:
            conn.close(CloseCode.FORBIDDEN, REVOKED)
            return CLOSED
        limits = self.limits_of(principal.user)
        if principal.limits == limits:
            return None
        lowered = dataclasses.replace(principal, limits=limits)
        if not conn.may_keep(lowered):
            conn.close(CloseCode.FORBIDDEN, LIMITED)
            return CLOSED
        conn.principal = lowered
        return DOWNGRADED

    # -- other processes ------------------------------------------------------------

    def _heard(self, payload: bytes) -> None:
        """A change published by a process (this one's own come back too)."""
        message = json.loads(payload)
        user = message.get("user")
        if not isinstance(user, str):
            raise ValueError(f"not a user rule: {message!r}")
        if "revoked_at" in message:
            moved = self._merge_revocation(user, float(message["revoked_at"]))
        else:
            moved = self._merge_limits(user, parse_limits(message["limits"]),
                                       float(message["set_at"]))
        if moved:
            self._apply(user)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _reload_soon(self) -> None:
        """After a Redis outage: read the tables again (a bus callback, so sync)."""
        if self._bus is not None:  # not stopped
            self._spawn(self._reload(), "user-rules-reload")

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_INTERVAL)
            await self._reload()

    async def _reload(self) -> None:
        try:
            await self._load(apply=True)
        except Exception as exc:  # the next resync tries again
            log.warning("could not read the user rules again: %s", exc)

    async def _load(self, *, apply: bool) -> None:
        """Take in what the store holds; with `apply`, enforce what this process missed."""
        assert self._system is not None
        store = self._system.store
        moved = {user for user, at in (await store.load_revocations()).items()
                 if self._merge_revocation(user, at)}
        for user, (text, at) in (await store.load_user_limits()).items():
            if self._merge_limits(user, parse_limits(json.loads(text)), at):
                moved.add(user)
        if apply:
            for user in moved:
                log.info("a rule for %r missed on Redis, enforced from the store", user)
                self._apply(user)
