"""Per-connection rate limits: a token bucket for messages and one for bytes, each
refilled at its rate with room for a burst of twice that. A client past either is
closed with 4429 (too many messages); everyone else carries on. Awareness
(cursors) has its own, gentler budget: past it, updates are coalesced, not refused."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable

from collab.config import Settings
from collab.errors import CloseCode
from collab.gateway.connection import Connection

log = logging.getLogger(__name__)


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = 2 * rate
        self.tokens = self.burst
        self.stamp = time.monotonic()

    def take(self, amount: float, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens + 1e-9 < amount:  # float sums of elapsed time fall just short
            return False
        self.tokens -= amount
        return True


class RateLimit:
    """What one connection may send; a rate of 0 turns that limit off."""

    __slots__ = ("bytes", "messages")

    def __init__(self, settings: Settings) -> None:
        self.messages = TokenBucket(settings.max_messages_per_second) \
            if settings.max_messages_per_second else None
        self.bytes = TokenBucket(settings.max_bytes_per_second) \
            if settings.max_bytes_per_second else None

    def allow(self, size: int) -> bool:
        now = time.monotonic()
        return (self.messages is None or self.messages.take(1, now)) \
            and (self.bytes is None or self.bytes.take(size, now))


async def refused(limit: RateLimit, conn: Connection, size: int) -> bool:
    """Count one message of `size` against `limit`; past it, close `conn` with 4429
    and return True (the caller stops reading)."""
    if limit.allow(size):
        return False
    log.info("%s: over its rate limit, closing with 4429", conn.id)
    await conn.aclose(CloseCode.RATE_LIMITED, "too many messages: slow down")
    return True


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
