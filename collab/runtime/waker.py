"""The TimerWaker: wakes hibernated actors whose durable timers are due.

Live actors fire their own timers from memory; this task covers the ones that
are not loaded. It sleeps until the store's earliest due time (or until a new,
earlier timer is announced), then posts `TimersDue` to every actor with a due
timer, which loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collab.runtime.registry import UnknownActorType

if TYPE_CHECKING:
    from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)

#: Longest sleep between two looks at the store (seconds): bounds how late a
#: timer written by another process, or missed by a notify, can be.
MAX_SLEEP = 30.0
#: Pause after waking a round of actors (seconds), so rows they have not yet
#: deleted or moved are not posted again at once.
REPOST_PAUSE = 1.0
#: Actors woken per round.
BATCH = 200


@dataclass(frozen=True, slots=True)
class TimersDue:
    """Fire every timer of this actor that is due now."""


class TimerWaker:
    def __init__(self, system: ActorSystem) -> None:
        self.system = system
        self._wakeup = asyncio.Event()
        self._next_due: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._unknown_kinds: set[str] = set()
        self.woken = 0
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="timer-waker")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def notify(self, due: float) -> None:
        """A timer due at `due` was stored: look again if it is the earliest."""
        if self._next_due is None or due < self._next_due:
            self._next_due = due
            self._wakeup.set()

    async def _run(self) -> None:
        store = self.system.store
        while not self._stopping:
            try:
                # Cleared before the read: a notify that lands while it is in flight
                # (its row committed after the read began) keeps the event set.
                self._wakeup.clear()
                self._next_due = await store.next_timer_due()
                now = time.time()
                if self._next_due is None or self._next_due > now:
                    delay = MAX_SLEEP if self._next_due is None else min(
                        self._next_due - now, MAX_SLEEP)
                    # Not wait_for: in 3.11 it can swallow a cancel that races the event.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wakeup.wait()
                    continue
                for kind, key in await store.actors_with_timers_due(now, BATCH):
                    try:
                        cls = self.system.registry.resolve(kind)
                    except UnknownActorType:
                        if kind not in self._unknown_kinds:
                            self._unknown_kinds.add(kind)
                            log.warning("timers of unknown actor type %r are left in the "
                                        "store (is the --app registry complete?)", kind)
                        continue
                    if self.system.ownership.elsewhere(kind, key):
                        continue  # another process has it live and fires its timers
                    self.system.post(cls, key, TimersDue())
                    self.woken += 1
                await asyncio.sleep(REPOST_PAUSE)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer waker failed; retrying")
                await asyncio.sleep(REPOST_PAUSE)
