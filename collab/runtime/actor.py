"""`collab.Actor`: the class application developers subclass.

It adds to the mailbox core a durable `state` (msgpack-serializable, loaded on
wake, persisted after every action that changed it and before that action's
result is acknowledged, through group commit), actions, hooks, and references
to other actors. A failing action leaves the state as it was before the call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from typing import TYPE_CHECKING, Any, ClassVar

from collab.errors import CloseCode, CollabError, StoreUnavailable
from collab.protocol.codec import pack, unpack
from collab.protocol.native import actor_event
from collab.runtime.actions import (
    ActionError,
    CallAction,
    UnknownAction,
    actions_of,
    bind,
)
from collab.runtime.connections import Conn, Connect, Disconnect, Peer
from collab.runtime.mailbox import ActorBase, TimerFired
from collab.runtime.ownership import OwnerRequest
from collab.runtime.peer import PeerGone
from collab.runtime.queues import (
    BATCH_PER_TURN,
    DRAIN_METHOD,
    MAX_DELIVERY_ATTEMPTS,
    MAX_QUEUE_LENGTH,
    RETRY_BASE,
    QueueInspect,
    QueueRedrive,
    Queues,
    QueueSend,
    consumers_of,
    encode_message,
)
from collab.runtime.refs import ActorRef
from collab.runtime.schedule import TIMER_PREFIX, Schedule
from collab.runtime.waker import TimersDue
from collab.runtime.workflows import (
    RESUME_METHOD,
    Workflows,
    WorkflowStart,
    WorkflowStatus,
    workflows_of,
)
from collab.storage.base import PutActorState, PutTimer, TimerRecord, WriteOp

if TYPE_CHECKING:
    from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)

#: Timer ids of queue drains: one per queue, never a user's timer.
DRAIN_PREFIX = "queue:"

#: Actor type names as they appear in URLs and on the wire.
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,63}")


class StateNotSerializable(ActionError):
    code = "state_not_serializable"


class InternalActionError(CollabError):
    """An action raised something other than ActionError: a bug in the actor.
    Callers see only this generic error; the traceback goes to the log."""

    code = "internal"
    logged = True  # with its traceback, by the actor


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Actor(ActorBase):
    """Subclass this, declare `@action` methods, and register the class.

    Identity is (kind, key): `kind` defaults to the class name in snake_case.
    """

    kind: ClassVar[str] = "actor"
    #: Queue limits, per actor class: messages waiting per queue, deliveries before
    #: a message becomes a dead letter, and the first retry delay (seconds, doubling).
    queue_max_length: ClassVar[int] = MAX_QUEUE_LENGTH
    queue_max_attempts: ClassVar[int] = MAX_DELIVERY_ATTEMPTS
    queue_retry_base: ClassVar[float] = RETRY_BASE
    #: Queues with no consumer, read by workflows with `await ctx.receive(step, queue)`.
    inboxes: ClassVar[tuple[str, ...]] = ()
    _actions: ClassVar[dict[str, Any]] = {}
    _consumers: ClassVar[dict[str, Any]] = {}
    _workflow_methods: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            cls.kind = _snake(cls.__name__)
        if not KIND_PATTERN.fullmatch(cls.kind):
            raise ValueError(f"actor kind {cls.kind!r} must match {KIND_PATTERN.pattern}")
        cls._actions = actions_of(cls)
        cls._consumers = consumers_of(cls)
        cls._workflow_methods = workflows_of(cls)

    def __init__(self, key: str, system: ActorSystem,
                 predecessor: ActorBase | None = None) -> None:
        self.state: Any = None
        self._saved: bytes | None = None  # the state as last committed (or being committed)
        self._last_commit: asyncio.Future[None] | None = None
        #: Durable timers and cron entries: `await self.schedule.after(5, "method", ...)`.
        self.schedule = Schedule(self)
        #: Durable queues this actor consumes (`@collab.consumes("name")`).
        self.queues = Queues(self)
        #: Workflow runs (`@collab.workflow`): `await self.start_workflow("name", ...)`.
        self.workflows = Workflows(self)
        self._conns: dict[Peer, Conn] = {}
        #: Inside an action: the connection that called it (None for HTTP and actor calls).
        self.conn: Conn | None = None
        super().__init__(key, system, predecessor)

    # -- hooks for subclasses ---------------------------------------------------

    def initial_state(self) -> Any:
        """The state of a brand-new actor (default: an empty dict)."""
        return {}

    async def on_create(self) -> None:
        """Runs once in the actor's life, the first time it is loaded."""

    async def on_wake(self) -> None:
        """Runs every time the actor is loaded (after on_create on the first)."""

    async def on_sleep(self) -> None:
        """Runs before the actor is unloaded (hibernation or shutdown)."""

    async def on_before_connect(self, conn: Conn) -> None:
        """Runs when a client asks to connect, before it counts as connected: raise
        ActionError to refuse it (the client gets the error's code and message).
        `conn.params` holds what the client sent; fill `conn.state` here."""

    async def on_connect(self, conn: Conn) -> None:
        """Runs once a client is connected: it is in `self.connections` and gets events."""

    async def on_disconnect(self, conn: Conn) -> None:
        """Runs after a client left (it asked to, or its socket closed)."""

    # -- connections ----------------------------------------------------------------

    @property
    def connections(self) -> list[Conn]:
        """The clients connected to this actor right now."""
        return list(self._conns.values())

    def broadcast(self, event: str, data: Any = None, *, exclude: Conn | None = None) -> None:
        """Push `event` with `data` to every connected client (but `exclude`). The
        message is encoded once; raises TypeError at once if `data` cannot be sent."""
        out = actor_event(self.kind, self.key, event, data)
        for conn in self._conns.values():
            if conn is not exclude:
                conn.peer.send_out(out)

    def submit(self, ops: list[WriteOp]) -> asyncio.Future[None]:
        """Hand store writes to group commit; returns the commit's future. The action
        running now is acknowledged only after this commit, like its state."""
        commit = super().submit(ops)
        self._last_commit = commit
        return commit

    # -- references ---------------------------------------------------------------

    async def start_workflow(self, name: str, *args: Any) -> str:
        """Start a run of workflow `name`; returns its id once the run is recorded."""
        run, ops = self.workflows.start(name, args)
        await self.submit(ops)
        self.workflows.launch(run)
        return run.id

    async def enqueue(self, queue: str, message: Any) -> int:
        """Append `message` to one of this actor's own queues (from its own code, where
        `self.actor(...).queue(...)` would wait on itself); returns its seq once committed."""
        record, put = self.queues.enqueue(queue, encode_message(message))
        await self.submit(self._after_enqueue(queue, [put]))
        return record.seq

    def actor(self, kind: type[Actor] | str, key: str) -> ActorRef:
        """A reference to another actor: `await self.actor(Other, "k").call("act", ...)`."""
        return ActorRef(self.system, kind, key, caller=self)

    # -- the runtime side ---------------------------------------------------------

    async def load(self) -> None:
        raw = await self.system.store.load_actor_state(self.kind, self.key)
        if raw is None:
            self.state = self.initial_state()
            await self.on_create()
        else:
            self.state = unpack(raw)
            self._saved = raw
        await self.on_wake()
        self._persist()
        now = time.time()
        overdue = False
        for record in await self.system.store.load_timers(self.kind, self.key):
            self.schedule.track(record)  # a missed fire is due at once: it runs once
            overdue = overdue or record.due <= now
        if overdue:
            # Fires missed while asleep or down run before any request waiting to be handled.
            self._mailbox.appendleft(TimersDue())
        if self._consumers or self.inboxes:
            self.queues.load(await self.system.store.load_queues(self.kind, self.key))
            ops = [self._drain_soon(queue) for queue, waiting in self.queues.pending.items()
                   if waiting and not self.queues.is_inbox(queue)
                   and DRAIN_PREFIX + queue not in self.schedule.timers]
            if ops:
                self.submit(ops)
        if self._workflow_methods:
            self.workflows.load(await self.system.store.load_workflows(self.kind, self.key))

    def may_sleep(self) -> bool:
        return not self._conns

    def can_hibernate(self) -> bool:
        return not self._conns and not self.workflows.busy()

    async def save(self, reason: str) -> None:
        for conn in self._conns.values():  # the server stops, or the lease was lost
            conn.peer.close(CloseCode.SERVICE_RESTART, "server restarting"
                              if reason == "shutdown" else f"{self.kind} moved to another process")
        await self.workflows.stop()
        try:
            await self.on_sleep()
        finally:
            self._persist()
            await self.writes.flush()

    def handle(self, message: Any) -> Any:
        if type(message) is CallAction:
            return self._call(message)
        if type(message) is Connect:
            return self._connect(message)
        if type(message) is Disconnect:
            return self._disconnect(message)
        if type(message) is PeerGone:
            return self._disconnect(Disconnect(message.peer))
        if type(message) is TimerFired and message.name.startswith(TIMER_PREFIX):
            return self._fire_due(message.name[len(TIMER_PREFIX):])
        if type(message) is TimersDue:
            return self._fire_due(None)
        if type(message) is QueueSend:
            return self._queue_send(message)
        if type(message) is QueueInspect:
            return _answer(message.reply, lambda: self.queues.inspect(message.queue))
        if type(message) is QueueRedrive:
            return self._queue_redrive(message)
        if type(message) is WorkflowStart:
            return self._workflow_start(message)
        if type(message) is WorkflowStatus:
            return _answer(message.reply, lambda: self.workflows.status(message.id))
        log.warning("%s %r: unexpected message %r", self.kind, self.key, message)
        return None

    def is_request(self, message: Any) -> bool:
        return isinstance(message, CallAction | Connect | Disconnect | TimersDue | QueueSend
                          | QueueInspect | QueueRedrive | WorkflowStart | WorkflowStatus
                          | OwnerRequest | PeerGone)

    def reject(self, message: Any, error: BaseException) -> None:
        reply = getattr(message, "reply", None)
        if reply is not None and not reply.done():
            reply.set_exception(error)

    def after_drain(self) -> None:
        self.maybe_arm_idle()

    async def _call(self, message: CallAction) -> None:
        method = self._actions.get(message.name)
        if method is None:
            _fail(message.reply, UnknownAction(f"{self.kind} has no action {message.name!r}"))
            return

        async def run() -> Any:
            bind(method, self, message.name, message.args, message.kwargs)
            result = method(self, *message.args, **message.kwargs)
            return await result if inspect.isawaitable(result) else result

        self.conn = self._conns.get(message.peer) if message.peer is not None else None
        try:
            await self._transact(message.reply, f"action {message.name!r}", run)
        finally:
            self.conn = None

    async def _connect(self, message: Connect) -> None:
        peer = message.peer
        if peer in self._conns:
            _fail(message.reply, ActionError(f"already connected to {self.kind}:{self.key}",
                                             code="already_connected"))
            return
        if peer.closed:
            _fail(message.reply, ActionError("the socket closed", code="closed"))
            return
        conn = Conn(peer, self.kind, self.key, message.params, message.user)

        async def run() -> str:
            await self.on_before_connect(conn)
            self._conns[peer] = conn
            self.maybe_arm_idle()  # someone is here: no hibernation
            try:
                await self.on_connect(conn)
            except BaseException:
                del self._conns[peer]
                raise
            return conn.id

        await self._transact(message.reply, "on_connect", run)

    async def _disconnect(self, message: Disconnect) -> None:
        conn = self._conns.pop(message.peer, None)
        if conn is None:
            if message.reply is not None:
                _fail(message.reply, ActionError(f"not connected to {self.kind}:{self.key}",
                                                 code="not_connected"))
            return

        async def run() -> None:
            await self.on_disconnect(conn)

        await self._transact(message.reply, "on_disconnect", run)

    async def _transact(self, reply: asyncio.Future[Any] | None, what: str, body: Any) -> None:
        """Run `body` (actor code) and answer `reply` with its result once the state it
        changed, and anything it submitted, is committed. If it raises, its state
        changes are rolled back and the caller gets an ActionError (its own, or a
        generic internal error: the traceback goes to the log, not to the caller)."""
        before = self._last_commit
        try:
            result = await body()
            commit = self._persist()
        except Exception as exc:
            self._rollback()
            if not isinstance(exc, ActionError | StoreUnavailable):  # else not a bug
                log.exception("%s %r: %s failed", self.kind, self.key, what)
                exc = InternalActionError(f"{what} failed")
            if reply is not None:
                _fail(reply, exc)
            return
        if reply is None:
            return
        if commit is None and self._last_commit is not before:
            commit = self._last_commit  # the body submitted writes of its own
        elif commit is None and self.writes.busy:
            commit = self.writes.barrier()  # the result may read state not durable yet
        if commit is None or commit.done():
            _settle(reply, result, commit)
        else:
            commit.add_done_callback(lambda fut: _settle(reply, result, fut))

    async def _fire_due(self, only: str | None) -> None:
        """Run the due timers (just `only`, if given), one at a time, in due order."""
        now = time.time()
        due = [t for t in sorted(self.schedule.timers.values(), key=lambda t: t.due)
               if t.due <= now and (only is None or t.id == only)]
        for record in due:
            if self.schedule.timers.get(record.id) is not record:
                continue  # cancelled or replaced by an earlier fire
            await self._fire(record)

    # -- queues -----------------------------------------------------------------

    def _after_enqueue(self, queue: str, ops: list[Any]) -> list[Any]:
        """Make sure someone reads `queue`: its consumer's drain timer, or a workflow
        waiting in `ctx.receive`. Returns `ops` plus any write that needs."""
        if self.queues.is_inbox(queue):
            self.queues.wake_receivers(queue)
        elif DRAIN_PREFIX + queue not in self.schedule.timers:
            ops.append(self._drain_soon(queue))
        return ops

    def _drain_soon(self, queue: str, delay: float = 0.0) -> PutTimer:
        return self.schedule.internal(DRAIN_PREFIX + queue, time.time() + delay,
                                      DRAIN_METHOD, queue)

    async def _queue_send(self, message: QueueSend) -> None:
        try:
            record, put = self.queues.enqueue(message.queue, message.body)
        except ActionError as exc:
            _fail(message.reply, exc)
            return
        commit = self.submit(self._after_enqueue(message.queue, [put]))
        commit.add_done_callback(lambda fut: _settle(message.reply, record.seq, fut))

    async def _queue_redrive(self, message: QueueRedrive) -> None:
        ops: list[Any] = self.queues.redrive(message.queue)
        count = len(ops) // 2
        if count:
            ops = self._after_enqueue(message.queue, ops)
        if not ops:
            _settle(message.reply, 0, None)
            return
        commit = self.submit(ops)
        commit.add_done_callback(lambda fut: _settle(message.reply, count, fut))

    async def _drain(self, record: TimerRecord) -> None:
        """Hand the queue's messages to its consumer in order, then decide when (if
        ever) the queue's timer fires again."""
        queue = unpack(record.args)[0]
        handler = self._consumers.get(queue)
        waiting = self.queues.pending.get(queue)
        retry_in: float | None = None
        handled = 0
        while handler is not None and waiting and handled < BATCH_PER_TURN:
            head = waiting[0]
            self.queues.current = head
            try:
                result = handler(self, unpack(head.body))
                if inspect.isawaitable(result):
                    await result
                self._persist()
                ops: list[Any] = [self.queues.delivered(head)]
            except Exception as exc:
                self._rollback()
                log.warning("%s %r: queue %r message %d failed (attempt %d): %r", self.kind,
                            self.key, queue, head.seq, head.attempts + 1, exc)
                put, retry_in = self.queues.failed(head, repr(exc))
                ops = [put]
            finally:
                self.queues.current = None
            self.submit(ops)
            handled += 1
            if retry_in is not None:
                break
        if retry_in is None and waiting and handled >= BATCH_PER_TURN:
            retry_in = 0.0  # more to do: let other messages in first
        if retry_in is None:
            op: Any = self.schedule.forget(record.id)
        else:
            op = self._drain_soon(queue, retry_in)
        if op is not None:
            self.submit([op])

    # -- timers -----------------------------------------------------------------

    async def _workflow_start(self, message: WorkflowStart) -> None:
        try:
            run, ops = self.workflows.start(message.name, message.args)
        except ActionError as exc:
            _fail(message.reply, exc)
            return
        commit = self.submit(ops)
        self.workflows.launch(run)
        commit.add_done_callback(lambda fut: _settle(message.reply, run.id, fut))

    async def _fire(self, record: TimerRecord) -> None:
        if record.method == DRAIN_METHOD:
            await self._drain(record)
            return
        if record.method == RESUME_METHOD:
            run_id = unpack(record.args)[0]
            run = self.workflows.runs.get(run_id)
            if run is not None and run.status in ("sleeping", "running"):
                if run.status == "sleeping":
                    self.workflows.launch(run)
                op: Any = self.workflows.safety_net(run_id)  # until it ends
            else:
                op = self.workflows.finished(run_id)
            self.submit([op])
            return
        self.schedule.firing = record
        failed = False
        try:
            result = getattr(self, record.method)(*unpack(record.args))
            if inspect.isawaitable(result):
                await result
            self._persist()
        except Exception:
            failed = True
            self._rollback()
            log.exception("%s %r: timer %s (%s) failed, attempt %d", self.kind, self.key,
                          record.id, record.method, record.attempts + 1)
        finally:
            self.schedule.firing = None
        # After the state write, so a crash in between fires again rather than never.
        op = self.schedule.after_fire(record, failed)
        if op is not None:
            self.submit([op])

    def _persist(self) -> asyncio.Future[None] | None:
        """Submit the state if it changed since the last write; returns that commit."""
        try:
            data = pack(self.state)
        except (TypeError, ValueError, OverflowError) as exc:
            raise StateNotSerializable(f"state is not msgpack-serializable: {exc}") from None
        if data == self._saved:
            return None
        self._saved = data
        # If this commit fails, the write is kept and goes first in the next one
        # (runtime/writes.py): `_saved` stays what the store will hold.
        return self.submit([PutActorState(self.kind, self.key, data)])

    def _rollback(self) -> None:
        """Put the state back as last saved (or fresh): a failed call changes nothing."""
        self.state = unpack(self._saved) if self._saved is not None else self.initial_state()


def _fail(reply: asyncio.Future[Any], error: BaseException) -> None:
    if not reply.done():
        reply.set_exception(error)


def _answer(reply: asyncio.Future[Any], compute: Any) -> None:
    try:
        result = compute()
    except Exception as exc:
        if not reply.done():
            reply.set_exception(exc)
    else:
        if not reply.done():
            reply.set_result(result)


def _settle(reply: asyncio.Future[Any], result: Any, commit: asyncio.Future[None] | None):
    if reply.done():
        return
    error = commit.exception() if commit is not None else None
    if error is not None:
        reply.set_exception(error)
    else:
        reply.set_result(result)
