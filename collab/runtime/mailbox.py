"""The core of every actor: a mailbox handled one message at a time, timers, hibernation.

Subclasses implement `_load`, `handle`, and optionally `_after_drain` (runs when
the mailbox empties: the place to flush coalesced work), `_can_hibernate` and
`_save`. Timers and stop requests arrive as mailbox messages too, so actor code
never needs a lock. Application actors build on this through `collab.Actor`
(runtime/actor.py). The hooks the mailbox calls are underscored so that an
application actor's own names (an action `save`, `load` or `reject`) never meet
them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from collab.errors import CollabError, ShuttingDown, store_error
from collab.runtime.lifecycle import ActorState, check_transition
from collab.runtime.ownership import OwnedElsewhere, OwnerRequest
from collab.runtime.writes import WriteChain
from collab.storage.base import Fence, WriteOp
from collab.storage.commit import Then

if TYPE_CHECKING:
    from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TimerFired:
    name: str


@dataclass(frozen=True, slots=True)
class WritesRecovered:
    """Writes kept after a failed commit have committed since (runtime/writes.py)."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Save and unload. `reason` is "idle" (hibernation), "budget" (hibernation to
    stay within COLLAB_MEMORY_BUDGET: skipped if something holds the actor open by
    the time it is read) or "shutdown"."""

    reason: str


IDLE_TIMER = "idle"
#: Stop's reason when the memory budget asks an actor to hibernate (runtime/budget.py).
BUDGET = "budget"
#: What an instance is estimated to hold in memory beyond its data (runtime/budget.py).
ACTOR_BYTES = 6 * 1024


class ActorBase:
    """One live instance of (kind, key). Created and owned by an ActorSystem."""

    kind: ClassVar[str] = "actor"

    def __init__(self, key: str, system: ActorSystem, predecessor: ActorBase | None = None) -> None:
        self.key = key
        self.system = system
        self.lifecycle = ActorState.LOADING
        self._predecessor = predecessor
        self._mailbox: deque[Any] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # Kept: on Python 3.11, each asyncio.get_running_loop() is a getpid() system call.
        self._loop = asyncio.get_running_loop()
        self._last_active = self._loop.time()  # of the last message handled
        self._shedding = False  # a budget Stop is in the mailbox
        #: This instance's estimate as the memory budget last counted it (budget.py).
        self.accounted_bytes = 0
        #: The lease token this process owns the actor with, when several processes
        #: share the store; every write then carries it (storage.base.Fence).
        self.fence_token: int | None = None
        #: Every write of this actor goes through here, in order, with no holes.
        self.writes = WriteChain(system.committer, self._fence,
                                 lambda: self.post(WritesRecovered()), self._ownership_lost)
        self._task = self._loop.create_task(self._run(), name=f"{self.kind}:{key}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key!r} {self.lifecycle.value}>"

    # -- subclass hooks -------------------------------------------------------

    async def wait_stopped(self) -> None:
        """Return once this instance has stopped: its mailbox task has ended (an Event
        would do the same for 370 more bytes per actor)."""
        await asyncio.wait([self._task])

    @property
    def last_active(self) -> float:
        """Loop time of the last message handled (or of its creation)."""
        return self._last_active

    def memory_estimate(self) -> int:
        """Bytes this instance is estimated to hold (runtime/budget.py)."""
        return ACTOR_BYTES

    def shed_memory(self) -> int:
        """Asked by the memory budget: hibernate if nothing holds this instance open,
        as after its idle timeout. Returns the bytes that should free (estimated), 0
        if it cannot now."""
        if self._shedding or self.lifecycle is not ActorState.LIVE \
                or not self._can_hibernate() or self.writes.busy:
            return 0
        self._shedding = True
        self.post(Stop(BUDGET))
        return self.memory_estimate()

    async def _load(self) -> None:
        """Read state from the store. Messages posted meanwhile wait."""

    def handle(self, message: Any) -> Awaitable[None] | None:
        """Handle one message; may return an awaitable, awaited before the next message."""
        raise NotImplementedError

    def _after_drain(self) -> None:
        """Called whenever the mailbox has just been emptied."""

    def _may_sleep(self) -> bool:
        """True when no client holds this actor open, so the idle timer should run."""
        return self._can_hibernate()

    def _can_hibernate(self) -> bool:
        """True when nothing needs this actor in memory right now (no clients, no
        work in flight); checked when the idle timer fires."""
        return False

    async def _save(self, reason: str) -> None:
        """Persist everything before unloading; runs in the mailbox."""

    def _reject(self, message: Any, error: BaseException) -> None:
        """Answer a message that can never be handled (the load failed, or shutdown)."""

    def _discard(self, message: Any) -> None:
        """A message of this instance's own (a timer, a completion) was left in the
        mailbox when it stopped: settle whatever waits on it."""

    def _writes_recovered(self) -> None:
        """Writes whose commit failed (their callers were told) have committed since:
        announce what was held back for them. Runs in the mailbox."""

    def _is_request(self, message: Any) -> bool:
        """True for messages from outside (clients, callers) that a successor
        instance should handle; False for this instance's own timers and completions."""
        return not isinstance(message, Stop | TimerFired | WritesRecovered)

    # -- the mailbox ----------------------------------------------------------

    def post(self, message: Any) -> bool:
        """Queue a message. Returns False once the actor is draining or stopped:
        the caller must ask the system for the live instance instead."""
        if self.lifecycle is ActorState.DRAINING or self.lifecycle is ActorState.STOPPED:
            return False
        self._mailbox.append(message)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        return True

    def _move(self, target: ActorState) -> None:
        self.lifecycle = check_transition(f"{self.kind}:{self.key}", self.lifecycle, target)

    async def _run(self) -> None:
        if self._predecessor is not None:
            # Its last writes must be committed before we read the store.
            await self._predecessor.wait_stopped()
            self._predecessor = None
        ownership = self.system.ownership
        try:
            self.fence_token = await ownership.claim(self)
            await self._load()
        except Exception as exc:
            if isinstance(exc, CollabError):  # expected, e.g. owned by another process
                log.info("%s %r not loaded: %s", self.kind, self.key, exc.message)
            else:
                log.exception("%s %r failed to load", self.kind, self.key)
            # What the waiting requests are told. A load is reads of the store above
            # all, and what fails there (a connection lost or refused, a lock, an I/O
            # error) passes: StoreUnavailable (503, close 1013), so clients retry; the
            # raw exception went out as `internal`, which a /ws client takes as final
            # (the document never synced). Decoding what was read, or an application
            # actor's on_create/on_wake, may fail for good, and is told the same:
            # telling those apart would take a list of every driver's exceptions, one
            # missing from it would leave clients stuck, while a bug told as passing
            # costs retries with backoff, each logged with its traceback above.
            error = store_error(exc, f"{self.kind} {self.key!r} could not be loaded")
            if self.fence_token is not None:
                await ownership.release(self)
            self._move(ActorState.STOPPED)
            self.system.forget(self)
            while self._mailbox:
                message = self._mailbox.popleft()
                if isinstance(error, OwnedElsewhere) and ownership.redirect(
                        error.node, type(self), self.key, message):
                    continue  # the owner handles it
                self._reject(message, error)
            self.system.reap(self)
            return
        self._move(ActorState.LIVE)
        self.maybe_arm_idle()
        loop = self._loop
        mailbox = self._mailbox
        budget = self.system.budget
        if budget is not None:
            budget.account(self)
        while True:
            while mailbox:
                message = mailbox.popleft()
                try:
                    if type(message) is Stop:
                        if message.reason == BUDGET:
                            self._shedding = False
                            if not self._can_hibernate() or self.writes.busy or mailbox:
                                continue  # needed again meanwhile: it stays
                        if await self._stop(message):
                            return
                        continue
                    if type(message) is TimerFired and message.name == IDLE_TIMER:
                        self._timers.pop(IDLE_TIMER, None)
                        timeout = self.system.settings.idle_timeout
                        idle_for = loop.time() - self._last_active
                        if idle_for >= timeout and self._can_hibernate() \
                                and not self.writes.busy and not mailbox:
                            await self._stop(Stop("idle"))
                            return
                        if self._may_sleep():  # not yet: look again when it could be time
                            self.set_timer(IDLE_TIMER, max(timeout - idle_for, timeout / 4))
                        continue
                    if isinstance(message, OwnerRequest):
                        message.answer(self)
                        continue
                    if type(message) is WritesRecovered:
                        self._writes_recovered()
                        continue
                    self._last_active = loop.time()
                    result = self.handle(message)
                    if result is not None:
                        await result
                    if budget is not None:
                        budget.account(self)
                except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                    raise
                except BaseException:  # a library's BaseException must not kill the actor
                    log.exception("%s %r: handler failed for %s", self.kind, self.key,
                                  type(message).__name__)
            try:
                self._after_drain()
            except Exception:
                log.exception("%s %r: flush after drain failed", self.kind, self.key)
            self.writes.send_queued()  # this drain's writes: to group commit in this turn
            if mailbox:
                continue
            # Not kept while it waits: a Leave would keep its closed socket, an update
            # its bytes, as long as the actor is idle.
            message = None
            self._wakeup = loop.create_future()
            await self._wakeup
            self._wakeup = None

    async def _stop(self, message: Stop) -> bool:
        self._move(ActorState.DRAINING)
        self.system.forget(self)
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        try:
            self._after_drain()
            await self._save(message.reason)
            await self.writes.flush()
            if self.writes.kept:  # a commit failed lately: one more try before we go
                await self.writes.barrier()
        except Exception:
            log.exception("%s %r: save failed while stopping", self.kind, self.key)
        self.writes.close()
        await self.system.ownership.release(self)  # after the last write committed
        self._move(ActorState.STOPPED)
        self.system.reap(self)
        leftovers = list(self._mailbox)
        self._mailbox.clear()
        for leftover in leftovers:  # arrived after we were forgotten
            if not self._is_request(leftover):
                # Our own timers and completions mean nothing to a successor, but
                # someone may wait on a completion.
                self._discard(leftover)
                continue
            if self.system.closing:
                self._reject(leftover, ShuttingDown("the server is shutting down"))
            else:
                self.system.post(type(self), self.key, leftover)
        return True

    # -- ownership ---------------------------------------------------------------

    def _ownership_lost(self) -> None:
        """Another process owns this actor now: unload (its writes are refused anyway)."""
        self.post(Stop("lease lost"))

    # -- writes ---------------------------------------------------------------

    def submit(self, ops: list[Any]) -> asyncio.Future[None]:
        """Hand store writes to group commit, after everything submitted before
        (runtime/writes.py); the future resolves once they are committed."""
        return self.writes.submit(ops)

    def submit_then(self, ops: list[Any], then: Then) -> None:
        """`submit`, with `then(error)` called as soon as the commit is settled (None:
        committed), in the same turn of the event loop."""
        self.writes.submit_then(ops, then)

    def _fence(self) -> list[WriteOp]:
        """What leads each of our submissions: our lease token, if we hold one."""
        if self.fence_token is None:
            return []
        return [Fence(self.kind, self.key, self.fence_token)]

    # -- timers ---------------------------------------------------------------

    def set_timer(self, name: str, delay: float) -> None:
        """(Re)arm timer `name`: after `delay` seconds a TimerFired(name) is posted."""
        self.cancel_timer(name)
        self._timers[name] = self._loop.call_later(delay, self._fire_timer, name)

    def cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def has_timer(self, name: str) -> bool:
        return name in self._timers

    def _fire_timer(self, name: str) -> None:
        self._timers.pop(name, None)  # fired: `has_timer` is false and it may be armed again
        self.post(TimerFired(name))

    def maybe_arm_idle(self) -> None:
        """Arm the hibernation timer if no client holds us open; cancel it otherwise."""
        if self._may_sleep():
            if IDLE_TIMER not in self._timers:
                self.set_timer(IDLE_TIMER, self.system.settings.idle_timeout)
        else:
            self.cancel_timer(IDLE_TIMER)
