"""The one wait budget of the test suite, and the one polling helper that uses it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

#: Seconds any test may wait for something that should happen.
TIMEOUT = 20.0
#: Seconds between two checks of a polled condition.
POLL_INTERVAL = 0.005


async def until(check: Callable[[], bool | Awaitable[bool]]) -> None:
    """Poll `check` (sync or async) until it is true; fail after TIMEOUT."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(POLL_INTERVAL)
