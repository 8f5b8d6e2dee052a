"""How long to wait before reconnect attempt number `attempt` (0 for the first).

"Full jitter" exponential backoff, as client-js: a random delay between 0 and
min(max_delay, base_delay * 2**attempt). The randomness spreads the clients of a
restarted server over the whole window instead of a stampede.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable

#: Seconds: the first retry comes within this (a server restart closes sockets with 1012).
BASE_DELAY = 0.25
#: Seconds: the longest wait between two attempts against a server that keeps failing.
MAX_DELAY = 10.0
#: Doublings past this change nothing (2**30 * BASE_DELAY is years); keeps the power small.
_MAX_EXPONENT = 30


def backoff_delay(attempt: int, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY,
                  random: Callable[[], float] = _random.random) -> float:
    """Seconds to wait before attempt `attempt`; `random` returns a float in [0, 1)."""
    ceiling = min(max_delay, base_delay * 2 ** min(max(attempt, 0), _MAX_EXPONENT))
    return random() * ceiling
