"""Per-connection rate limits: a token bucket for messages and one for bytes, each
refilled at its rate with room for a burst of twice that. A client past either is
closed with 4429 (too many messages); everyone else carries on."""

from __future__ import annotations

import logging
import time

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
        if self.tokens < amount:
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
