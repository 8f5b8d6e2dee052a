"""The event loop a collab process runs on: uvloop where it is installed (every
platform but Windows), else asyncio's own; COLLAB_EVENT_LOOP picks one.

uvloop does the loop's own work in C: reading and writing sockets, timers, the
queue of ready callbacks. collab's hot path is mostly that work (a document update
is one read, a write per peer, and a few hops between tasks), so on uvloop the
server spends about 8% less CPU per delivered update (bench/README.md). Nothing in
collab depends on which loop runs it: the test suite serves on both (the servers it
starts as processes on uvloop, those inside the test process on asyncio).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: COLLAB_EVENT_LOOP's values: `auto` is uvloop if it is installed, else asyncio.
EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def chosen(choice: str) -> str:
    """The loop `choice` (one of EVENT_LOOPS) means here: "uvloop" or "asyncio"."""
    if choice == "auto":
        return "uvloop" if uvloop_installed() else "asyncio"
    return choice


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """Run `main` to completion on a new loop of the kind `choice` names, as
    asyncio.run does."""
    if chosen(choice) == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def running_loop_name() -> str:
    """"uvloop" or "asyncio": what the running loop is."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") \
        else "asyncio"
