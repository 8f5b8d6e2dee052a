"""Durable timers and cron for application actors: `self.schedule`.

Every timer is a row in the store before `after`/`at`/`cron` return, so it
survives hibernation, restarts and kill -9. A live actor arms an in-memory
timer for each row; a hibernated one is woken by the system's TimerWaker when
its earliest row is due. Fires are at-least-once: a timer is deleted (or a cron
entry moved to its next time) only after its method succeeded, and each fire
exposes `self.schedule.firing.id` so handlers can be idempotent.

Missed fires (the server was down) run once when the actor next loads; a cron
entry that missed several ticks fires once and resumes at its next tick after
now (coalesced).
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from collab.protocol.codec import pack, unpack
from collab.protocol.text import is_text
from collab.runtime.actions import ActionError
from collab.runtime.notify import NOTIFY_METHOD
from collab.runtime.queues import DRAIN_METHOD
from collab.runtime.workflows import RESUME_METHOD
from collab.storage.base import DeleteTimer, PutTimer, TimerRecord

if TYPE_CHECKING:
    from collab.runtime.actor import Actor

log = logging.getLogger(__name__)

#: A failed fire is retried after min(2 ** attempts, MAX_BACKOFF) seconds ...
MAX_BACKOFF = 300.0
#: ... and given up (logged, deleted) after this many attempts.
MAX_ATTEMPTS = 10
#: Characters of a cron entry's name: it is the stored timer's id.
MAX_CRON_NAME_CHARS = 200
TIMER_PREFIX = "timer:"
CRON_PREFIX = "cron:"


class ScheduleError(ActionError):
    code = "invalid_schedule"


def next_cron_time(expr: str, tz: str, after: float) -> float:
    """The first tick of cron `expr` in zone `tz` strictly after Unix time `after`."""
    zone = ZoneInfo(tz)
    start = datetime.fromtimestamp(after, zone)
    return croniter(expr, start).get_next(float)


class Schedule:
    """The timers of one actor, as `actor.schedule`."""

    __slots__ = ("_actor", "firing", "timers")

    def __init__(self, actor: Actor) -> None:
        self._actor = actor
        self.timers: dict[str, TimerRecord] = {}
        #: The timer whose method is running right now (None outside a fire).
        self.firing: TimerRecord | None = None

    async def after(self, seconds: float, method: str, *args: Any) -> str:
        """Run `method(*args)` in `seconds`; returns the timer id."""
        return await self._put(time.time() + max(0.0, seconds), method, args)

    async def at(self, when: datetime, method: str, *args: Any) -> str:
        """Run `method(*args)` at `when` (a naive datetime is taken as UTC)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return await self._put(when.timestamp(), method, args)

    async def cron(self, name: str, expr: str, method: str, *args: Any, tz: str = "UTC") -> str:
        """Run `method(*args)` on every tick of cron `expr` in zone `tz`. Calling it
        again with the same `name` replaces the entry. Returns the id `cron:<name>`."""
        if not isinstance(name, str) or not 0 < len(name) <= MAX_CRON_NAME_CHARS \
                or "\x00" in name or not is_text(name):
            raise ScheduleError(f"a cron entry's name must be 1 to {MAX_CRON_NAME_CHARS} "
                                "characters of valid Unicode text without NUL")
        if not croniter.is_valid(expr):
            raise ScheduleError(f"not a cron expression: {expr!r}")
        try:
            due = next_cron_time(expr, tz, time.time())
        except ZoneInfoNotFoundError:
            raise ScheduleError(f"unknown time zone {tz!r}") from None
        return await self._put(due, method, args, timer_id=CRON_PREFIX + name, cron=expr, tz=tz)

    async def cancel(self, timer_id: str) -> bool:
        """Delete a timer or cron entry; returns False if there was none."""
        if self.timers.pop(timer_id, None) is None:
            return False
        actor = self._actor
        actor.cancel_timer(TIMER_PREFIX + timer_id)
        await actor.submit([DeleteTimer(actor.kind, actor.key, timer_id)])
        return True

    def list(self) -> list[dict[str, Any]]:
        """Every pending timer: id, due (Unix time), method, args, cron, tz."""
        return [{"id": t.id, "due": t.due, "method": t.method,
                 "args": unpack(t.args), "cron": t.cron, "tz": t.tz}
                for t in sorted(self.timers.values(), key=lambda t: t.due)
                if not t.method.startswith("_")]  # the runtime's own (queue retries)

    async def _put(self, due: float, method: str, args: tuple, *, timer_id: str | None = None,
                   cron: str | None = None, tz: str | None = None) -> str:
        actor = self._actor
        if not callable(getattr(type(actor), method, None)) or method.startswith("_"):
            raise ScheduleError(f"{actor.kind} has no method {method!r} to schedule")
        try:
            packed = pack(list(args))
        except (TypeError, ValueError) as exc:
            raise ScheduleError(f"timer arguments are not msgpack-serializable: {exc}") from None
        record = TimerRecord(actor.kind, actor.key, timer_id or uuid.uuid4().hex, due, method,
                             packed, cron, tz)
        await actor.submit([PutTimer(record)])
        self.track(record)
        return record.id

    def internal(self, timer_id: str, due: float, method: str, *args: Any) -> PutTimer:
        """Track a runtime-owned timer (e.g. a queue's retry) and return its write, for
        the caller to commit together with its own ops."""
        record = TimerRecord(self._actor.kind, self._actor.key, timer_id, due, method,
                             pack(list(args)))
        self.track(record)
        return PutTimer(record)

    def untrack(self, timer_id: str) -> None:
        """Stop holding and arming a timer in memory; its row, if any, is left alone."""
        self.timers.pop(timer_id, None)
        self._actor.cancel_timer(TIMER_PREFIX + timer_id)

    def forget(self, timer_id: str) -> DeleteTimer | None:
        """Stop tracking a timer; returns its deletion, or None if there was none."""
        if self.timers.pop(timer_id, None) is None:
            return None
        self._actor.cancel_timer(TIMER_PREFIX + timer_id)
        return DeleteTimer(self._actor.kind, self._actor.key, timer_id)

    def track(self, record: TimerRecord) -> None:
        """Hold `record` in memory, arm its in-memory timer, and tell the waker (which
        wakes the actor for it if it hibernates first)."""
        self.timers[record.id] = record
        self._actor.set_timer(TIMER_PREFIX + record.id, max(0.0, record.due - time.time()))
        self._actor.system.timer_waker.notify(record.due)

    def after_fire(self, record: TimerRecord, failed: bool) -> PutTimer | DeleteTimer | None:
        """What to store once `record` fired: its next time, a retry, or its deletion."""
        now = time.time()
        if failed:
            attempts = record.attempts + 1
            if attempts >= MAX_ATTEMPTS:
                self.timers.pop(record.id, None)
                return DeleteTimer(record.kind, record.key, record.id)
            retry = TimerRecord(record.kind, record.key, record.id,
                                now + min(2.0 ** attempts, MAX_BACKOFF), record.method,
                                record.args, record.cron, record.tz, attempts)
            self.track(retry)
            return PutTimer(retry)
        if record.cron is not None:
            following = TimerRecord(record.kind, record.key, record.id,
                                    next_cron_time(record.cron, record.tz or "UTC", now),
                                    record.method, record.args, record.cron, record.tz)
            self.track(following)
            return PutTimer(following)
        self.timers.pop(record.id, None)
        return DeleteTimer(record.kind, record.key, record.id)

    async def fire_due(self, only: str | None) -> None:
        """Run the due timers (just `only`, if given), one at a time, in due order."""
        now = time.time()
        due = [t for t in sorted(self.timers.values(), key=lambda t: t.due)
               if t.due <= now and (only is None or t.id == only)]
        for record in due:
            if self.timers.get(record.id) is not record:
                continue  # cancelled or replaced by an earlier fire
            await self._fire(record)

    async def _fire(self, record: TimerRecord) -> None:
        actor = self._actor
        if record.method == DRAIN_METHOD:
            await actor.queues.drain(record)
            return
        if record.method == RESUME_METHOD:
            actor.workflows.resume(unpack(record.args)[0])
            return
        if record.method == NOTIFY_METHOD:
            if actor.notifier is not None:
                await actor.notifier.fire(record)
            else:  # nobody watches it any more
                actor.submit([self.after_fire(record, False)])
            return
        self.firing = record
        failed = False
        try:
            result = getattr(actor, record.method)(*unpack(record.args))
            if inspect.isawaitable(result):
                await result
            actor._persist()
        except Exception:
            failed = True
            actor._rollback()
            log.exception("%s %r: timer %s (%s) failed, attempt %d", actor.kind, actor.key,
                          record.id, record.method, record.attempts + 1)
        finally:
            self.firing = None
        # After the state write, so a crash in between fires again rather than never.
        op = self.after_fire(record, failed)
        if op is not None:
            actor.submit([op])
