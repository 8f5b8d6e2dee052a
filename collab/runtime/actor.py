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
from collections.abc import Callable
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
from collab.runtime.mailbox import ACTOR_BYTES, ActorBase, TimerFired
from collab.runtime.notify import Notifier, WatchersTold
from collab.runtime.ownership import OwnerRequest
from collab.runtime.peer import PeerGone
from collab.runtime.queues import (
    MAX_DELIVERY_ATTEMPTS,
    MAX_QUEUE_LENGTH,
    RETRY_BASE,
    QueueInspect,
    QueueRedrive,
    Queues,
    QueueSend,
    QueueSendMany,
    consumers_of,
    encode_message,
)
from collab.runtime.refs import ActorRef
from collab.runtime.replies import fail, settle, settle_after
from collab.runtime.schedule import TIMER_PREFIX, Schedule
from collab.runtime.waker import TimersDue
from collab.runtime.workflows import (
    Workflows,
    WorkflowStart,
    WorkflowStatus,
    workflows_of,
)
from collab.storage.base import PutActorState, WriteOp

if TYPE_CHECKING:
    from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)

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
        #: Tells the actors watching this one (a Document, a Room) of its changes.
        self.notifier: Notifier | None = None
        self._conns: dict[Peer, Conn] = {}
        self._documents: dict[str, Any] = {}  # DocumentRefs handed out by `document`
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
        await self.submit(self.queues.after_enqueue(queue, [put]))
        return record.seq

    def actor(self, kind: type[Actor] | str, key: str) -> ActorRef:
        """A reference to another actor: `await self.actor(Other, "k").call("act", ...)`."""
        return ActorRef(self.system, kind, key, caller=self)

    def document(self, name: str) -> Any:
        """A reference to document `name`, read and edited through its owner wherever it
        lives: `async with self.document("notes").transact() as doc: ...`, and
        `await self.document("notes").set_presence({...})` (actors/document_ref.py)."""
        ref = self._documents.get(name)
        if ref is None:  # one per document: its edits keep one Yjs client id
            ref = self._documents[name] = self.system.registry.resolve("doc").ref(
                self.system, name, caller=self)
        return ref

    # -- the runtime side ---------------------------------------------------------

    async def _load(self) -> None:
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
            ops = self.queues.drain_timers()  # for messages left waiting when it slept
            if ops:
                self.submit(ops)
        if self._workflow_methods:
            self.workflows.load(await self.system.store.load_workflows(self.kind, self.key))

    def _may_sleep(self) -> bool:
        return not self._conns

    def _can_hibernate(self) -> bool:
        return not self._conns and not self.workflows.busy() and not self._telling()

    def memory_estimate(self) -> int:
        # Its state, as Python objects, takes a few times its packed size.
        return ACTOR_BYTES + 3 * len(self._saved or b"")

    def _telling(self) -> bool:
        """True while watchers are being told of this actor's changes."""
        return self.notifier is not None and self.notifier.busy

    async def _save(self, reason: str) -> None:
        for conn in self._conns.values():  # the server stops, or the lease was lost
            conn.peer.close(CloseCode.SERVICE_RESTART, "server restarting"
                              if reason == "shutdown" else f"{self.kind} moved to another process")
        await self.workflows.stop()
        if self.notifier is not None:
            self.notifier.stop()
        try:
            await self.on_sleep()
        finally:
            self._persist()
            await self.writes.flush()

    def handle(self, message: Any) -> Any:
        handler = REQUESTS.get(type(message))
        if handler is not None:
            return handler(self, message)
        if type(message) is TimerFired and message.name.startswith(TIMER_PREFIX):
            return self.schedule.fire_due(message.name[len(TIMER_PREFIX):])
        if type(message) is WatchersTold and self.notifier is not None:
            self.notifier.told(message)
            return None
        log.warning("%s %r: unexpected message %r", self.kind, self.key, message)
        return None

    def _is_request(self, message: Any) -> bool:
        return type(message) in REQUESTS or isinstance(message, OwnerRequest)

    def _reject(self, message: Any, error: BaseException) -> None:
        reply = getattr(message, "reply", None)
        if reply is not None:
            fail(reply, error)

    def _after_drain(self) -> None:
        self.maybe_arm_idle()

    async def _call(self, message: CallAction) -> None:
        method = self._actions.get(message.name)
        if method is None:
            fail(message.reply, UnknownAction(f"{self.kind} has no action {message.name!r}"))
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
            fail(message.reply, ActionError(f"already connected to {self.kind}:{self.key}",
                                             code="already_connected"))
            return
        if peer.closed:
            fail(message.reply, ActionError("the socket closed", code="closed"))
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
                fail(message.reply, ActionError(f"not connected to {self.kind}:{self.key}",
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
                fail(reply, exc)
            return
        if reply is None:
            return
        if commit is None and self._last_commit is not before:
            commit = self._last_commit  # the body submitted writes of its own
        elif commit is None and self.writes.busy:
            commit = self.writes.barrier()  # the result may read state not durable yet
        if commit is None or commit.done():
            settle(reply, result, commit)
        else:
            settle_after(reply, result, commit)

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


#: How an Actor handles each request, by message type: everything a client, an HTTP
#: call or another actor may send it. A request left in the mailbox of an instance
#: that stops is handed to its successor.
REQUESTS: dict[type, Callable[[Actor, Any], Any]] = {
    CallAction: Actor._call,
    Connect: Actor._connect,
    Disconnect: Actor._disconnect,
    PeerGone: lambda actor, message: actor._disconnect(Disconnect(message.peer)),
    TimersDue: lambda actor, _: actor.schedule.fire_due(None),
    QueueSend: lambda actor, message: actor.queues.handle_send(message),
    QueueSendMany: lambda actor, message: actor.queues.handle_send_many(message),
    QueueInspect: lambda actor, message: actor.queues.handle_inspect(message),
    QueueRedrive: lambda actor, message: actor.queues.handle_redrive(message),
    WorkflowStart: lambda actor, message: actor.workflows.handle_start(message),
    WorkflowStatus: lambda actor, message: actor.workflows.handle_status(message),
}
