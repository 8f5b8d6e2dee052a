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

import msgpack

from collab.errors import CollabError
from collab.runtime.actions import (
    DEFAULT_CALL_TIMEOUT,
    ActionError,
    CallAction,
    CallTimeout,
    UnknownAction,
    actions_of,
    bind,
)
from collab.runtime.actor import ActorBase, TimerFired
from collab.runtime.schedule import TIMER_PREFIX, Schedule
from collab.runtime.waker import TimersDue
from collab.storage.base import PutActorState, TimerRecord

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


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Actor(ActorBase):
    """Subclass this, declare `@action` methods, and register the class.

    Identity is (kind, key): `kind` defaults to the class name in snake_case.
    """

    kind: ClassVar[str] = "actor"
    _actions: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            cls.kind = _snake(cls.__name__)
        if not KIND_PATTERN.fullmatch(cls.kind):
            raise ValueError(f"actor kind {cls.kind!r} must match {KIND_PATTERN.pattern}")
        cls._actions = actions_of(cls)

    def __init__(self, key: str, system: ActorSystem,
                 predecessor: ActorBase | None = None) -> None:
        self.state: Any = None
        self._saved: bytes | None = None  # the state as last committed (or being committed)
        self._last_commit: asyncio.Future[None] | None = None
        #: Durable timers and cron entries: `await self.schedule.after(5, "method", ...)`.
        self.schedule = Schedule(self)
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

    # -- references ---------------------------------------------------------------

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
        for record in await self.system.store.load_timers(self.kind, self.key):
            self.schedule.track(record)  # a missed fire is due at once: it runs once

    def may_sleep(self) -> bool:
        return True  # no client connections yet: only activity keeps an actor awake

    def can_hibernate(self) -> bool:
        return self._last_commit is None or self._last_commit.done()

    async def save(self, reason: str) -> None:
        try:
            await self.on_sleep()
        finally:
            self._persist()
            await self.system.committer.flush()

    def handle(self, message: Any) -> Any:
        if type(message) is CallAction:
            return self._call(message)
        if type(message) is TimerFired and message.name.startswith(TIMER_PREFIX):
            return self._fire_due(message.name[len(TIMER_PREFIX):])
        if type(message) is TimersDue:
            return self._fire_due(None)
        log.warning("%s %r: unexpected message %r", self.kind, self.key, message)
        return None

    def is_request(self, message: Any) -> bool:
        return isinstance(message, CallAction | TimersDue)

    def reject(self, message: Any, error: BaseException) -> None:
        if isinstance(message, CallAction) and not message.reply.done():
            message.reply.set_exception(error)

    def after_drain(self) -> None:
        self.maybe_arm_idle()

    async def _call(self, message: CallAction) -> None:
        reply = message.reply
        try:
            method = self._actions.get(message.name)
            if method is None:
                raise UnknownAction(f"{self.kind} has no action {message.name!r}")
            bind(method, self, message.name, message.args, message.kwargs)
            result = method(self, *message.args, **message.kwargs)
            if inspect.isawaitable(result):
                result = await result
            commit = self._persist()
        except Exception as exc:
            self._rollback()
            if not isinstance(exc, ActionError):
                log.exception("%s %r: action %s failed", self.kind, self.key, message.name)
                exc = InternalActionError(f"action {message.name!r} failed")
            if not reply.done():
                reply.set_exception(exc)
            return
        # Acknowledge only once the state this result depends on is durable.
        commit = commit or self._last_commit
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

    async def _fire(self, record: TimerRecord) -> None:
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
            self._last_commit = self.system.committer.submit([op])

    def _persist(self) -> asyncio.Future[None] | None:
        """Submit the state if it changed since the last write; returns that commit."""
        try:
            data = pack(self.state)
        except (TypeError, ValueError, OverflowError) as exc:
            raise StateNotSerializable(f"state is not msgpack-serializable: {exc}") from None
        if data == self._saved:
            return None
        self._saved = data
        commit = self.system.committer.submit([PutActorState(self.kind, self.key, data)])

        def failed_write_is_retried(fut: asyncio.Future[None]) -> None:
            if fut.exception() is not None and self._saved is data:
                self._saved = None  # the next call writes the state again

        commit.add_done_callback(failed_write_is_retried)
        self._last_commit = commit
        return commit

    def _rollback(self) -> None:
        """Put the state back as last saved (or fresh): a failed call changes nothing."""
        self.state = unpack(self._saved) if self._saved is not None else self.initial_state()


def _settle(reply: asyncio.Future[Any], result: Any, commit: asyncio.Future[None] | None):
    if reply.done():
        return
    error = commit.exception() if commit is not None else None
    if error is not None:
        reply.set_exception(error)
    else:
        reply.set_result(result)


class ActorRef:
    """A handle on actor (kind, key), live or hibernated: calling it wakes it."""

    def __init__(self, system: ActorSystem, kind: type[Actor] | str, key: str, *,
                 caller: Actor | None = None, timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.system = system
        self.cls = system.registry.resolve(kind) if isinstance(kind, str) else kind
        self.key = key
        self.caller = caller
        self.timeout = timeout

    async def call(self, action: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run `action` on the actor and return its result once its state is durable.

        Raises ActionError (or a subclass: UnknownAction, InvalidArguments,
        CallTimeout) for the caller's errors and InternalActionError for the callee's.
        """
        if self.caller is not None and type(self.caller) is self.cls \
                and self.caller.key == self.key:
            raise ActionError("an actor cannot call its own actions through a reference "
                              "(it handles one message at a time); call the method directly",
                              code="self_call")
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.system.post(self.cls, self.key, CallAction(action, args, kwargs, reply))
        try:
            return await asyncio.wait_for(reply, self.timeout)
        except TimeoutError:
            raise CallTimeout(f"{self.cls.kind}:{self.key} did not answer {action!r} "
                              f"within {self.timeout} s") from None
