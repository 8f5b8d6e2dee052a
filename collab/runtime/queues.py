"""Durable queues of application actors: `ref.queue("jobs").send(msg)` and
`@collab.consumes("jobs")` handlers.

A message is a store row before `send` returns. The actor hands its queue's
messages to the consumer one at a time, in send order; a message leaves the
store only after its handler succeeded (and the state it changed was written).
A failing handler has its state changes rolled back and is retried after 1, 2,
4, ... seconds; after MAX_DELIVERY_ATTEMPTS the message becomes a dead letter,
kept for inspection and re-drive, and the queue moves on. The retry wake-up is
a durable timer, so a pending queue survives hibernation, restart and kill -9.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from collab.protocol.codec import pack, unpack
from collab.protocol.text import MAX_ERROR_CHARS, storable
from collab.runtime.actions import ActionError, marked_methods, refuse_runtime_names
from collab.runtime.replies import answer_with, fail, settle, settle_after
from collab.runtime.travels import travels
from collab.storage.base import (
    DeleteQueueMessage,
    PutQueueMessage,
    PutTimer,
    QueueRecord,
    TimerRecord,
)

if TYPE_CHECKING:
    from collab.runtime.actor import Actor

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

#: Messages that may wait in one queue: a full queue refuses sends (`queue_full`)
#: rather than growing without bound in memory and on disk.
MAX_QUEUE_LENGTH = 10_000
#: Largest encoded message (bytes); bigger data belongs in a document or state.
MAX_MESSAGE_BYTES = 64 * 1024
#: Deliveries of one message before it becomes a dead letter.
MAX_DELIVERY_ATTEMPTS = 5
#: Retry delays: min(RETRY_BASE * 2 ** (attempts - 1), RETRY_CAP) seconds.
RETRY_BASE = 1.0
RETRY_CAP = 300.0
#: Messages handled per turn before the actor lets other messages in.
BATCH_PER_TURN = 100
DRAIN_METHOD = "_drain_queue"
#: Timer ids of queue drains: one per queue, never a user's timer.
DRAIN_PREFIX = "queue:"


def consumes(queue: str) -> Callable[[F], F]:
    """Mark `method(self, message)` as the consumer of queue `queue` (one per queue)."""

    def mark(method: F) -> F:
        method.__collab_consumes__ = queue  # type: ignore[attr-defined]
        return method

    return mark


def consumers_of(cls: type) -> dict[str, Callable[..., Any]]:
    """The consumer method of each queue `cls` declares, by queue name. Raises
    ValueError if a consumer has a name the runtime uses (a consumer `handle` would
    receive every mailbox message)."""
    marked = marked_methods(cls, "__collab_consumes__")
    refuse_runtime_names(cls, (name for name, _, _ in marked), "@collab.consumes")
    return {queue: member for _, member, queue in marked}


class UnknownQueue(ActionError):
    code = "unknown_queue"
    status = 404


class QueueFull(ActionError):
    code = "queue_full"
    status = 429


class MessageTooLarge(ActionError):
    code = "message_too_large"
    status = 413


@travels("queue.send")
@dataclass(frozen=True, slots=True)
class QueueSend:
    queue: str
    body: bytes
    reply: asyncio.Future[int] = field(repr=False)


@travels("queue.send_many")
@dataclass(frozen=True, slots=True)
class QueueSendMany:
    """Append several messages in order, in one commit; reply with their seqs."""

    queue: str
    bodies: list[bytes]
    reply: asyncio.Future[list[int]] = field(repr=False)


@travels("queue.inspect")
@dataclass(frozen=True, slots=True)
class QueueInspect:
    """Reply with the queue's pending count and dead letters."""

    queue: str
    reply: asyncio.Future[dict[str, Any]] = field(repr=False)


@travels("queue.redrive")
@dataclass(frozen=True, slots=True)
class QueueRedrive:
    """Put every dead letter back at the end of the queue; reply with how many."""

    queue: str
    reply: asyncio.Future[int] = field(repr=False)


def encode_message(message: Any) -> bytes:
    try:
        body = pack(message)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ActionError(f"queue message is not msgpack-serializable: {exc}",
                          code="invalid_message") from None
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"queue message of {len(body)} bytes; the limit is "
                              f"{MAX_MESSAGE_BYTES}")
    return body


def retry_delay(attempts: int, base: float = RETRY_BASE) -> float:
    return min(base * 2 ** (attempts - 1), RETRY_CAP)


class Queues:
    """The queues of one actor (`actor.queues`): pending messages and dead letters."""

    __slots__ = ("_actor", "_next_seq", "_waiters", "current", "dead", "pending")

    def __init__(self, actor: Actor) -> None:
        self._actor = actor
        self.pending: dict[str, deque[QueueRecord]] = {}
        self.dead: dict[str, list[QueueRecord]] = {}
        self._next_seq: dict[str, int] = {}
        #: The message whose consumer is running right now (its seq, attempts, ...).
        self.current: QueueRecord | None = None
        #: Workflow runs waiting in `ctx.receive` for a message of an inbox queue.
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def load(self, records: list[QueueRecord]) -> None:
        for record in records:
            (self.dead.setdefault(record.queue, []) if record.dead
             else self.pending.setdefault(record.queue, deque())).append(record)
            self._next_seq[record.queue] = max(self._next_seq.get(record.queue, 1),
                                               record.seq + 1)

    def has_pending(self) -> bool:
        return any(self.pending.values())

    def depth(self) -> int:
        """Messages waiting in all of this actor's queues (dead letters not included)."""
        return sum(len(waiting) for waiting in self.pending.values())

    def dead_count(self) -> int:
        return sum(len(dead) for dead in self.dead.values())

    def enqueue(self, queue: str, body: bytes) -> tuple[QueueRecord, PutQueueMessage]:
        """Append a message (validated by the caller); returns it and its write."""
        records, puts = self.enqueue_many(queue, [body])
        return records[0], puts[0]

    def enqueue_many(self, queue: str, bodies: list[bytes]
                     ) -> tuple[list[QueueRecord], list[PutQueueMessage]]:
        """Append messages in order, all or none (validated by the caller); returns
        them and their writes."""
        if queue not in self._actor._consumers and queue not in self._actor.inboxes:
            raise UnknownQueue(f"{self._actor.kind} has no queue {queue!r} (declare a "
                               "@collab.consumes handler, or list it in `inboxes`)")
        waiting = self.pending.setdefault(queue, deque())
        limit = self._actor.queue_max_length
        if len(waiting) >= limit:
            raise QueueFull(f"queue {queue!r} holds {limit} messages; try later")
        if len(waiting) + len(bodies) > limit:
            raise QueueFull(f"queue {queue!r} has room for {limit - len(waiting)} more "
                            f"messages, not {len(bodies)}; try later")
        actor = self._actor
        now = time.time()
        records = []
        for body in bodies:
            seq = self._next_seq.get(queue, 1)
            self._next_seq[queue] = seq + 1
            record = QueueRecord(actor.kind, actor.key, queue, seq, body, enqueued_at=now)
            waiting.append(record)
            records.append(record)
        return records, [PutQueueMessage(record) for record in records]

    def is_inbox(self, queue: str) -> bool:
        """True for a queue read by workflows (`ctx.receive`) rather than a consumer."""
        return queue not in self._actor._consumers

    def wake_receivers(self, queue: str) -> None:
        for waiter in self._waiters.pop(queue, []):
            if not waiter.done():
                waiter.set_result(None)

    async def receive(self, queue: str) -> tuple[QueueRecord, DeleteQueueMessage]:
        """Take the head of inbox `queue`, waiting for one to arrive; returns it and
        the write that removes it from the store, for the caller to commit. (Until
        then it is only out of memory: a restart brings it back.)"""
        if not self.is_inbox(queue) or queue not in self._actor.inboxes:
            raise UnknownQueue(f"{self._actor.kind} has no inbox {queue!r} (list it in "
                               "`inboxes`)")
        while True:
            waiting = self.pending.get(queue)
            if waiting:
                head = waiting.popleft()
                return head, DeleteQueueMessage(head.kind, head.key, head.queue, head.seq)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(queue, []).append(waiter)
            await waiter

    def delivered(self, record: QueueRecord) -> DeleteQueueMessage:
        self.pending[record.queue].popleft()
        return DeleteQueueMessage(record.kind, record.key, record.queue, record.seq)

    def failed(self, record: QueueRecord, error: str) -> tuple[PutQueueMessage, float | None]:
        """Count a failed delivery; returns its write and the retry delay, or None
        when the message just became a dead letter (the queue moves on)."""
        attempts = record.attempts + 1
        dead = attempts >= self._actor.queue_max_attempts
        updated = QueueRecord(record.kind, record.key, record.queue, record.seq, record.body,
                              attempts, dead, storable(error, MAX_ERROR_CHARS),
                              record.enqueued_at)
        waiting = self.pending[record.queue]
        waiting.popleft()
        if dead:
            self.dead.setdefault(record.queue, []).append(updated)
            return PutQueueMessage(updated), None
        waiting.appendleft(updated)
        return PutQueueMessage(updated), retry_delay(attempts, self._actor.queue_retry_base)

    def redrive(self, queue: str) -> list[PutQueueMessage | DeleteQueueMessage]:
        """Move the dead letters of `queue` to its end with fresh attempts."""
        ops: list[PutQueueMessage | DeleteQueueMessage] = []
        for record in self.dead.pop(queue, []):
            ops.append(DeleteQueueMessage(record.kind, record.key, record.queue, record.seq))
            _, put = self.enqueue(queue, record.body)
            ops.append(put)
        return ops

    def inspect(self, queue: str) -> dict[str, Any]:
        return {
            "pending": len(self.pending.get(queue, ())),
            "dead": [{"seq": r.seq, "message": unpack(r.body),
                      "attempts": r.attempts, "error": r.error, "enqueued_at": r.enqueued_at}
                     for r in self.dead.get(queue, [])],
        }

    # -- requests and draining: what the actor does with its queues ---------------

    def after_enqueue(self, queue: str, ops: list[Any]) -> list[Any]:
        """Make sure someone reads `queue`: its consumer's drain timer, or a workflow
        waiting in `ctx.receive`. Returns `ops` plus any write that needs."""
        if self.is_inbox(queue):
            self.wake_receivers(queue)
        elif DRAIN_PREFIX + queue not in self._actor.schedule.timers:
            ops.append(self.drain_soon(queue))
        return ops

    def drain_soon(self, queue: str, delay: float = 0.0) -> PutTimer:
        return self._actor.schedule.internal(DRAIN_PREFIX + queue, time.time() + delay,
                                             DRAIN_METHOD, queue)

    def drain_timers(self) -> list[PutTimer]:
        """Drain timers for consumer queues holding messages but none (after a load)."""
        timers = self._actor.schedule.timers
        return [self.drain_soon(queue) for queue, waiting in self.pending.items()
                if waiting and not self.is_inbox(queue) and DRAIN_PREFIX + queue not in timers]

    async def handle_send(self, message: QueueSend) -> None:
        try:
            record, put = self.enqueue(message.queue, message.body)
        except ActionError as exc:
            fail(message.reply, exc)
            return
        commit = self._actor.submit(self.after_enqueue(message.queue, [put]))
        settle_after(message.reply, record.seq, commit)

    async def handle_send_many(self, message: QueueSendMany) -> None:
        try:
            records, puts = self.enqueue_many(message.queue, list(message.bodies))
        except ActionError as exc:
            fail(message.reply, exc)
            return
        commit = self._actor.submit(self.after_enqueue(message.queue, list(puts)))
        settle_after(message.reply, [record.seq for record in records], commit)

    async def handle_inspect(self, message: QueueInspect) -> None:
        answer_with(message.reply, lambda: self.inspect(message.queue))

    async def handle_redrive(self, message: QueueRedrive) -> None:
        ops: list[Any] = self.redrive(message.queue)
        count = len(ops) // 2
        if count:
            ops = self.after_enqueue(message.queue, ops)
        if not ops:
            settle(message.reply, 0, None)
            return
        settle_after(message.reply, count, self._actor.submit(ops))

    async def drain(self, record: TimerRecord) -> None:
        """Hand the queue's messages to its consumer in order, then decide when (if
        ever) the queue's timer fires again."""
        actor = self._actor
        queue = unpack(record.args)[0]
        handler = actor._consumers.get(queue)
        waiting = self.pending.get(queue)
        retry_in: float | None = None
        handled = 0
        while handler is not None and waiting and handled < BATCH_PER_TURN:
            head = waiting[0]
            self.current = head
            try:
                result = handler(actor, unpack(head.body))
                if inspect.isawaitable(result):
                    await result
                actor._persist()
                ops: list[Any] = [self.delivered(head)]
            except Exception as exc:
                actor._rollback()
                log.warning("%s %r: queue %r message %d failed (attempt %d): %r", actor.kind,
                            actor.key, queue, head.seq, head.attempts + 1, exc)
                put, retry_in = self.failed(head, repr(exc))
                ops = [put]
            finally:
                self.current = None
            actor.submit(ops)
            handled += 1
            if retry_in is not None:
                break
        if retry_in is None and waiting and handled >= BATCH_PER_TURN:
            retry_in = 0.0  # more to do: let other messages in first
        if retry_in is None:
            op: Any = actor.schedule.forget(record.id)
        else:
            op = self.drain_soon(queue, retry_in)
        if op is not None:
            actor.submit([op])
