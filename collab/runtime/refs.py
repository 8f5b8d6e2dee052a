"""References to actors: `ActorRef` (call an action, send to a queue, start a
workflow, ask anything with a timeout), `QueueRef`, and `Route` (a socket's way to
one actor, kept between messages). Requests go through `actions.ask`, the one way
to send an actor a request and bound the wait."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collab.protocol.text import InvalidText, check_column
from collab.runtime.actions import DEFAULT_CALL_TIMEOUT, ActionError, CallAction, ask
from collab.runtime.queues import (
    QueueInspect,
    QueueRedrive,
    QueueSend,
    QueueSendMany,
    encode_message,
)
from collab.runtime.travels import travel_of
from collab.runtime.workflows import WorkflowStart, WorkflowStatus

if TYPE_CHECKING:
    from collab.runtime.actor import Actor
    from collab.runtime.system import ActorSystem

#: Characters of an actor key named from code (`self.actor(Kind, key)`); keys from
#: clients follow the stricter name pattern (gateway/names.py, 128 characters).
MAX_KEY_CHARS = 512


class ActorRef:
    """A handle on actor (kind, key), live or hibernated: calling it wakes it."""

    def __init__(self, system: ActorSystem, kind: type[Actor] | str, key: str, *,
                 caller: Actor | None = None, timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.system = system
        self.cls = system.registry.resolve(kind) if isinstance(kind, str) else kind
        if not isinstance(key, str):
            raise ActionError("an actor key must be a string", code="invalid_key")
        try:  # it becomes a stored key: text every store can hold
            check_column(key, "an actor key", MAX_KEY_CHARS)
        except InvalidText as exc:
            raise ActionError(exc.message, code="invalid_key") from None
        self.key = key
        self.caller = caller
        self.timeout = timeout

    async def start_workflow(self, name: str, /, *args: Any) -> str:
        """Start a run of workflow `name`; returns its id once the run is recorded."""
        return await self.ask(lambda reply: WorkflowStart(name, args, reply),
                              f"a start of workflow {name!r}")

    async def workflow_status(self, run_id: str) -> dict[str, Any]:
        """{"id", "name", "status" (running|sleeping|done|failed), "steps", "result", "error"}"""
        return await self.ask(lambda reply: WorkflowStatus(run_id, reply), "a status query")

    def queue(self, name: str) -> QueueRef:
        """The actor's durable queue `name`: `await ref.queue("jobs").send(message)`."""
        return QueueRef(self, name)

    async def ask(self, make_message: Any, what: str) -> Any:
        """Post `make_message(reply)` to the actor and wait (bounded) for the reply."""
        return await ask(self.system, self.cls, self.key, make_message, what, self.timeout)

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
        return await self.ask(lambda reply: CallAction(action, args, kwargs, reply),
                              repr(action))


class QueueRef:
    """One durable queue of one actor."""

    def __init__(self, actor: ActorRef, name: str) -> None:
        self.actor = actor
        self.name = name

    async def send(self, message: Any) -> int:
        """Append `message` (msgpack-serializable, up to 64 KiB); returns its sequence
        number once it is committed. Raises UnknownQueue, QueueFull, MessageTooLarge."""
        body = encode_message(message)
        return await self.actor.ask(lambda reply: QueueSend(self.name, body, reply),
                                    f"a send to queue {self.name!r}")

    async def send_many(self, messages: list[Any]) -> list[int]:
        """Append `messages` in order, all in one commit (all or none: the queue must
        have room for every one); returns their sequence numbers once committed."""
        bodies = [encode_message(message) for message in messages]
        if not bodies:
            return []
        return await self.actor.ask(lambda reply: QueueSendMany(self.name, bodies, reply),
                                    f"a send to queue {self.name!r}")

    async def inspect(self) -> dict[str, Any]:
        """{"pending": n, "dead": [{"seq", "message", "attempts", "error", ...}]}"""
        return await self.actor.ask(lambda reply: QueueInspect(self.name, reply), "inspect")

    async def redrive(self) -> int:
        """Move the dead letters back to the end of the queue; returns how many."""
        return await self.actor.ask(lambda reply: QueueRedrive(self.name, reply), "redrive")


class Route:
    """One socket's way to one actor: the live instance here, or the relay to the
    process that owns it, found again whenever the one it used stops taking
    messages (a failed load that turned into a relay, a relay whose owner went
    away). Posting through it skips the system's lookup for every message."""

    __slots__ = ("cls", "key", "system", "target")

    def __init__(self, system: ActorSystem, cls: type, key: str) -> None:
        self.system = system
        self.cls = cls
        self.key = key
        self.target: Any = None

    def post(self, message: Any) -> None:
        target = self.target
        if target is not None and target.post(message):
            return
        travel = travel_of(message)
        if travel is not None and travel.closes:
            # Leaving: only an instance or relay that is there now can care; never
            # wake an actor just to say goodbye to it.
            self.target = self.system.present(self.cls, self.key)
            if self.target is not None:
                self.target.post(message)
            return
        self.target = self.system.post(self.cls, self.key, message)
