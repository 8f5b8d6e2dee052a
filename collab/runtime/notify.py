"""Telling watchers: a watched actor's changes (a Document's edits, a Room's
messages) handed to the durable queues of the actors that watch it
(runtime/watches.py), without holding up the watched actor.

The watched actor keeps one durable timer, `watch`, written in the same commit as
the changes it covers; its arguments say where the untold changes start. When it
fires, the actor turns them into notes (`await actor.watch_notes(*args)` returns
the notes, the arguments that start after them, and whether more are waiting
already), and a task sends each note to every watcher's queue. Those sends wait
for the watchers' mailboxes, and a watcher may be busy calling back into the very
actor it watches (a hook that edits the document it heard about): so they run
beside the watched actor's mailbox, never in it, and editing goes on meanwhile.

Once every note is stored the timer is deleted, or moved on to start after what
was told when more changes came meanwhile. A failed send retries the whole
notification with the timer's backoff, so delivery is at least once: a watcher
may hear of a change twice, never not at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collab.protocol.codec import unpack
from collab.runtime.refs import ActorRef
from collab.storage.base import PutTimer, TimerRecord

if TYPE_CHECKING:
    from collab.runtime.actor import Actor
    from collab.runtime.watches import Watch

log = logging.getLogger(__name__)

#: The watched actor's durable timer, and the method name its record carries.
WATCH_TIMER = "watch"
NOTIFY_METHOD = "_notify_watchers"


@dataclass(frozen=True, slots=True)
class WatchersTold:
    """The sends of one notification are done (`error` None) or failed; handled in
    the watched actor's mailbox."""

    record: TimerRecord
    after: tuple[Any, ...]
    more: bool
    error: str | None


class Notifier:
    """The watch timer of one watched actor, and the task telling its watchers."""

    def __init__(self, actor: Actor, watches: list[Watch]) -> None:
        self._actor = actor
        self.watches = watches
        self._telling: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self._telling is not None

    def pending(self) -> tuple[Any, ...] | None:
        """The arguments of the notification waiting to go out, if one is."""
        record = self._actor.schedule.timers.get(WATCH_TIMER)
        return None if record is None else tuple(unpack(record.args))

    def timer(self, due: float, *args: Any) -> PutTimer:
        """The watch timer's write, due at `due`, for the caller to commit with the
        changes it covers."""
        return self._actor.schedule.internal(WATCH_TIMER, due, NOTIFY_METHOD, *args)

    async def fire(self, record: TimerRecord) -> None:
        """The timer is due: gather its notes (in the mailbox) and start telling."""
        if self._telling is not None:
            return  # told() looks at the timer again when the running one ends
        actor = self._actor
        try:
            notes, after, more = await actor.watch_notes(*unpack(record.args))
        except Exception as exc:
            log.warning("%s %r: watchers not told yet: %r", actor.kind, actor.key, exc)
            actor.submit([op for op in [actor.schedule.after_fire(record, True)] if op])
            return
        self._telling = asyncio.create_task(self._tell(record, notes, tuple(after), more),
                                            name=f"{actor.kind}:{actor.key}:watchers")

    async def _tell(self, record: TimerRecord, notes: list[Any], after: tuple[Any, ...],
                    more: bool) -> None:
        actor = self._actor
        error = None
        try:
            for watch in self.watches:
                queue = ActorRef(actor.system, watch.kind, watch.key or actor.key).queue(
                    watch.queue)
                await queue.send_many(notes)  # in order, one commit per watcher
        except Exception as exc:  # the watcher is unknown, full, away: retried
            error = repr(exc)
        if not actor.post(WatchersTold(record, after, more, error)):
            self._telling = None  # stopping: the stored timer tells again after a load

    def told(self, message: WatchersTold) -> None:
        """The sends are done: delete the timer, or move it past what was told."""
        self._telling = None
        actor = self._actor
        schedule = actor.schedule
        current = schedule.timers.get(WATCH_TIMER)
        if message.error is not None:
            log.warning("%s %r: watchers not told yet (attempt %d): %s", actor.kind, actor.key,
                        message.record.attempts + 1, message.error)
            # The retry keeps the failed notification's start, which covers any
            # change that came meanwhile too.
            op: Any = schedule.after_fire(message.record, True)
        elif current is None:
            op = None
        elif current is message.record and not message.more:
            op = schedule.after_fire(current, False)
        else:  # changes came while telling, or more were waiting: from after these
            op = self.timer(time.time() if message.more else current.due, *message.after)
        if op is not None:
            actor.submit([op])

    def stop(self) -> None:
        """The actor stops: drop the running sends (the timer's row tells again)."""
        if self._telling is not None:
            self._telling.cancel()
            self._telling = None
