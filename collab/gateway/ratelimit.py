"""Per-connection rate limits: a token bucket for messages and one for bytes, each
refilled at its rate with room for a burst of twice that. A client past either is
paced: its socket is not read until the budget allows, so TCP pushes back on the
sender and a bulk import just goes at the rate. One kept waiting for longer than
COLLAB_RATE_LIMIT_GRACE (a flood, not a burst) is closed with 4429; everyone else
carries on. Awareness (cursors) has its own, gentler budget: past it, updates are
coalesced, not refused. Waking actors that are not loaded (subscribe, connect, call,
a `/yjs` join) has a budget per socket and one per client address: past either, the
socket is paced the same way once the actor is on its way."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable

from collab.config import DEFAULT_MAX_SUBSCRIPTIONS, Settings
from collab.errors import CloseCode
from collab.gateway.socket_peer import SocketPeer
from collab.runtime.buckets import Meters, TokenBucket

log = logging.getLogger(__name__)

#: Seconds of COLLAB_MAX_LOADS_PER_SECOND_PER_IP one address may wake at once: the
#: clients behind one NAT or proxy reconnecting together after a restart.
ADDRESS_LOAD_BURST_SECONDS = 10


class RateLimit:
    """What one connection may send; a rate of 0 turns that limit off."""

    __slots__ = ("bytes", "grace", "messages", "owed_until", "throttled_since")

    def __init__(self, settings: Settings) -> None:
        self.messages = TokenBucket(settings.max_messages_per_second) \
            if settings.max_messages_per_second else None
        self.bytes = TokenBucket(settings.max_bytes_per_second) \
            if settings.max_bytes_per_second else None
        self.grace = settings.rate_limit_grace
        #: When the connection began to be paced without a break (monotonic), or None.
        self.throttled_since: float | None = None
        #: Nothing more is read before this (monotonic): the cost of what it did (`owe`).
        self.owed_until = 0.0

    def owe(self, seconds: float) -> None:
        """Read nothing more for `seconds`: what the last message cost is past a budget."""
        if seconds > 0:
            self.owed_until = max(self.owed_until, time.monotonic() + seconds)

    def wait(self, size: int) -> float:
        """0 if a message of `size` may pass now (and counts it), else the seconds
        until it may."""
        now = time.monotonic()
        wait = max(self.messages.shortfall(1, now) if self.messages else 0.0,
                   self.bytes.shortfall(size, now) if self.bytes else 0.0,
                   self.owed_until - now)
        if wait == 0.0:
            if self.messages:
                self.messages.spend(1)
            if self.bytes:
                self.bytes.spend(size)
        return wait


class Loads:
    """Actors one socket may wake per second (COLLAB_MAX_LOADS_PER_SECOND, bursts of
    COLLAB_MAX_SUBSCRIPTIONS), and all the sockets of its address together (the
    shared `per_address` meters); a rate of 0 turns that one off. A socket whose
    wake-ups have all been past a budget for longer than COLLAB_RATE_LIMIT_GRACE is
    churning, not reconnecting: `flooding` says so."""

    __slots__ = ("address", "grace", "own", "paced_since", "per_address")

    def __init__(self, settings: Settings, per_address: Meters, address: str) -> None:
        rate = settings.max_loads_per_second
        burst = max(settings.max_subscriptions or DEFAULT_MAX_SUBSCRIPTIONS, 2 * rate)
        self.own = TokenBucket(rate, burst) if rate else None
        self.per_address = per_address if per_address.rate else None
        self.address = address
        self.grace = settings.rate_limit_grace
        #: Since when every wake-up was past a budget (monotonic), or None.
        self.paced_since: float | None = None

    def charge(self) -> float:
        """Count one actor woken by this socket; returns the seconds to pace it for."""
        now = time.monotonic()
        own, per_address = self.own, self.per_address
        wait = max(own.charge(1, now) if own is not None else 0.0,
                   per_address.charge(self.address, now) if per_address is not None else 0.0)
        if not wait:
            self.paced_since = None
        elif self.paced_since is None:
            self.paced_since = now
        return wait

    def flooding(self) -> bool:
        return self.paced_since is not None \
            and time.monotonic() - self.paced_since > self.grace


def loads_per_address(settings: Settings) -> Meters:
    """The meters every socket of one address shares (COLLAB_MAX_LOADS_PER_SECOND_PER_IP,
    bursts of ten times that)."""
    rate = settings.max_loads_per_second_per_ip
    return Meters(rate, ADDRESS_LOAD_BURST_SECONDS * rate)


async def refused(limit: RateLimit, conn: SocketPeer, size: int) -> bool:
    """Count one message of `size` against `limit`, pacing the connection past it (the
    caller reads nothing meanwhile). A connection paced without a break for longer
    than the grace is closed with 4429: returns True, and the caller stops reading."""
    waited = False
    while (wait := limit.wait(size)) > 0:
        now = time.monotonic()
        if limit.throttled_since is None:
            limit.throttled_since = now
        if now + wait - limit.throttled_since > limit.grace:
            log.info("%s: over its rate limit for %g s, closing with 4429", conn.id,
                     limit.grace)
            await conn.aclose(CloseCode.RATE_LIMITED, "too many messages: slow down")
            return True
        waited = True
        await asyncio.sleep(wait)
    if not waited:  # it came within the budget: any pacing is over
        limit.throttled_since = None
    return False


class Throttle:
    """At most `rate` sends per second (bursts of twice that) for one connection; past
    it, only the latest held send per key waits, and goes out when the budget allows.
    For awareness: a newer state replaces an older one, so dropping the ones in
    between loses nothing. A rate of 0 sends everything at once."""

    __slots__ = ("bucket", "timer", "waiting")

    def __init__(self, rate: float) -> None:
        self.bucket = TokenBucket(rate) if rate else None
        self.waiting: dict[Hashable, Callable[[], None]] = {}
        self.timer: asyncio.TimerHandle | None = None

    def take(self, key: Hashable) -> bool:
        """True if a send for `key` may go now (and counts it); False: `hold` it."""
        if self.bucket is None:
            return True
        return not self.waiting and self.bucket.take(1, time.monotonic())

    def hold(self, key: Hashable, send: Callable[[], None]) -> None:
        """Run `send` when the budget allows, unless a newer send for `key` replaces it."""
        self.waiting.pop(key, None)  # the newest goes last, after older keys
        self.waiting[key] = send
        self._arm()

    def discard(self, key: Hashable) -> None:
        self.waiting.pop(key, None)

    def close(self) -> None:
        self.waiting.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _arm(self) -> None:
        if self.timer is None and self.waiting and self.bucket is not None:
            delay = max(0.0, (1 - self.bucket.tokens) / self.bucket.rate)
            self.timer = asyncio.get_running_loop().call_later(delay, self._release)

    def _release(self) -> None:
        self.timer = None
        now = time.monotonic()
        while self.waiting and self.bucket is not None and self.bucket.take(1, now):
            key = next(iter(self.waiting))
            self.waiting.pop(key)()
        self._arm()
