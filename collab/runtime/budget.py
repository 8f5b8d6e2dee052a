"""The memory budget: COLLAB_MEMORY_BUDGET bytes for the whole process. Past it,
the actors used least recently make room first: one that nothing holds open (no
client, no work in flight) hibernates, as after its idle timeout; a document whose
clients are all connected but quiet unloads its CRDT and keeps their sockets.

What an actor holds is estimated, not measured (Python cannot say what one object
graph costs cheaply): `ActorBase.memory_estimate()`, a fixed cost per instance plus
what it keeps in proportion to its stored size. The budget leaves the process's
own footprint at start (the interpreter, the libraries, the server) out of what
actors may use. The total is kept as it changes (each actor's estimate is taken
again after every message it handles, and dropped when it stops), so a look costs
the same with a hundred actors or a million; only going over sorts them.

What actors free is reused by the next ones but not always given back to the
system (Python's and pycrdt's allocators keep it), so after shedding the budget
asks glibc to return free heap pages (malloc_trim). Memory the process uses for
other things (buffers, caches, fragments of what it freed) is not the actors' and
is not counted: `bench/budget_bench.py` shows how close the process stays. The
estimate is exported in /metrics, beside the budget.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collab.runtime.mailbox import ActorBase
    from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)

#: Seconds between two looks at the estimate.
CHECK_INTERVAL = 0.25
#: Making room goes down to this share of what actors may use, so that the next
#: few loads do not send it over again at once.
LOW_WATER = 0.8


def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None elsewhere: it gives the heap's free pages back."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def resident_bytes() -> int:
    """This process's resident set size (Linux; 0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class MemoryBudget:
    def __init__(self, system: ActorSystem, budget: int) -> None:
        self.system = system
        self.budget = budget
        #: What the process held before any actor: not the actors' to use.
        self.baseline = resident_bytes()
        #: Bytes actors may hold (estimated), and what they hold now.
        self.allowance = max(0, budget - self.baseline)
        self.estimated = 0
        #: Actors made to hibernate, and CRDTs unloaded, to stay in the budget.
        self.shed = 0
        self._task: asyncio.Task[None] | None = None
        self._trim = _malloc_trim()
        self._shed_since_trim = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="memory-budget")
        log.info("memory budget %d MiB: %d MiB for actors (the process held %d MiB)",
                 self.budget >> 20, self.allowance >> 20, self.baseline >> 20)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            try:
                self.trim()  # what the last check shed is gone by now
                self.check()
            except Exception:  # never let the budget's bookkeeping stop the server
                log.exception("memory budget check failed")

    def account(self, actor: ActorBase) -> None:
        """Take `actor`'s estimate again (it loaded, or handled a message)."""
        estimate = actor.memory_estimate()
        self.estimated += estimate - actor.accounted_bytes
        actor.accounted_bytes = estimate

    def forget(self, actor: ActorBase) -> None:
        """`actor` stopped: what it held is no longer counted."""
        self.estimated -= actor.accounted_bytes
        actor.accounted_bytes = 0

    def check(self) -> int:
        """Past the allowance, ask the least recently used actors to make room until
        the estimate is LOW_WATER of the allowance. Returns how many were asked."""
        estimated = self.estimated
        if self.system.closing or estimated <= self.allowance:
            return 0
        target = self.allowance * LOW_WATER
        asked = 0
        for actor in sorted(self.system.loaded(), key=lambda actor: actor.last_active):
            if estimated <= target:
                break
            freed = actor.shed_memory()
            if freed:
                estimated -= freed
                asked += 1
        self.shed += asked
        self._shed_since_trim += asked
        return asked

    def trim(self) -> None:
        """Free what the actors shed held and give the heap's free pages back to the
        system (without it, what they freed is reused but still counted as the
        process's). An actor's objects refer to each other (its task, its timers and
        queues, its write chain), so only the cycle collector frees them, and at the
        server's threshold (gateway/serve.py) it may not come round for a while."""
        if self._shed_since_trim:
            self._shed_since_trim = 0
            gc.collect()
            if self._trim is not None:
                self._trim(0)
