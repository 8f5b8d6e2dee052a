"""Token buckets: the one rate limiter, for the gateway (per socket, per address) and for
actors (a room's writes per caller). Pure arithmetic over the times callers pass in,
so a limit is testable without a clock.

`TokenBucket` meters one caller; `Meters` keeps one bucket per caller key, bounded in
how many it remembers.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

#: Callers one `Meters` remembers; past it, the least recently seen is forgotten. Its
#: bucket has almost always refilled by then (the same as a fresh one), so forgetting
#: it loses nothing; only with this many callers busy within one burst's refill time
#: would the oldest get a fresh burst early. 4096 buckets take about 0.5 MiB.
MAX_METERED = 4096


class TokenBucket:
    """`rate` tokens per second, up to `burst` (twice the rate unless given)."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float | None = None,
                 now: float | None = None) -> None:
        self.rate = rate
        self.burst = 2 * rate if burst is None else burst
        self.tokens = self.burst
        self.stamp = time.monotonic() if now is None else now

    def take(self, amount: float, now: float) -> bool:
        """Spend `amount` if it is there now; False (spending nothing) if not."""
        if self.shortfall(amount, now):
            return False
        self.spend(amount)
        return True

    def spend(self, amount: float) -> None:
        """Use `amount` that `shortfall` just found available."""
        self.tokens -= min(amount, self.burst)

    def charge(self, amount: float, now: float) -> float:
        """Spend `amount` now, into debt if it is not there; returns the seconds until
        the debt is paid (0: there was enough). For a cost that is already incurred:
        the caller then waits that long before the next."""
        self.shortfall(0, now)  # refill up to now
        self.tokens -= amount
        return -self.tokens / self.rate if self.tokens < 0 else 0.0

    def shortfall(self, amount: float, now: float) -> float:
        """Seconds until `amount` is available (0: now). More than a burst counts as
        a whole burst, so one large message waits for a full bucket, not forever."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        missing = min(amount, self.burst) - self.tokens
        return missing / self.rate if missing > 1e-9 else 0.0  # float sums fall just short


class Meters:
    """One TokenBucket per caller key (a socket, a user, an address), each `rate` per
    second up to `burst`; remembers at most `limit` callers."""

    __slots__ = ("_buckets", "burst", "limit", "rate")

    def __init__(self, rate: float, burst: float | None = None,
                 limit: int = MAX_METERED) -> None:
        self.rate = rate
        self.burst = burst
        self.limit = limit
        self._buckets: dict[Hashable, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable, now: float, amount: float = 1) -> bool:
        """Spend `amount` from `key`'s bucket if it is there; False if not."""
        return self._bucket(key, now).take(amount, now)

    def charge(self, key: Hashable, now: float, amount: float = 1) -> float:
        """Spend `amount` from `key`'s bucket, into debt if need be; returns the seconds
        until its debt is paid (TokenBucket.charge)."""
        return self._bucket(key, now).charge(amount, now)

    def _bucket(self, key: Hashable, now: float) -> TokenBucket:
        buckets = self._buckets
        bucket = buckets.pop(key, None)  # re-inserted last: the order is least recent first
        if bucket is None:
            if len(buckets) >= self.limit:
                del buckets[next(iter(buckets))]
            bucket = TokenBucket(self.rate, self.burst, now)
        buckets[key] = bucket
        return bucket
