"""Forwarding: requests for an actor another process owns, carried over Redis.

When a process cannot claim an actor (its lease is held elsewhere), the
requests waiting for it are published to the owner's channel, `collab:node:<id>`;
the owner posts them to its own instance and publishes the answer back to the
asker's channel, where it settles the waiting future. Requests and answers are
msgpack. Pub/sub delivers at most once: a request published to an owner that
is not listening fails at once with `owned_elsewhere` (PUBLISH counts the
listeners), one lost after that ends in the caller's timeout, and the next try
finds the new owner once the dead one's lease has expired. Only request and
answer messages travel this way (actions, queue sends and inspection, workflow
start and status); client connections and documents stay on the process that
owns them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from collab.cluster.leases import PREFIX
from collab.errors import CollabError
from collab.runtime.actions import (
    ActionError,
    CallAction,
    CallTimeout,
    InvalidArguments,
    UnknownAction,
)
from collab.runtime.durable import InternalActionError, pack, unpack
from collab.runtime.queues import (
    MessageTooLarge,
    QueueFull,
    QueueInspect,
    QueueRedrive,
    QueueSend,
    UnknownQueue,
)
from collab.runtime.registry import UnknownActorType
from collab.runtime.workflows import UnknownWorkflow, WorkflowStart, WorkflowStatus

if TYPE_CHECKING:
    from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)

#: Seconds `start` waits for the first subscription before serving anyway.
START_TIMEOUT = 5.0
#: Longest pause between two attempts to resubscribe after Redis dropped us.
MAX_BACKOFF = 5.0

#: Error codes whose exception type callers (the HTTP API) tell apart.
_ERRORS: dict[str, type[CollabError]] = {cls.code: cls for cls in (
    UnknownAction, InvalidArguments, CallTimeout, InternalActionError, UnknownQueue,
    QueueFull, MessageTooLarge, UnknownWorkflow, UnknownActorType)}


class NotForwardable(CollabError):
    code = "owned_elsewhere"


def channel(node: str) -> str:
    return f"{PREFIX}:node:{node}"


def encode_request(message: Any) -> dict[str, Any]:
    """The wire form of a request message (its reply future stays behind)."""
    kind = type(message)
    if kind is CallAction:
        if message.outlet is not None:
            raise NotForwardable("a connected client's call goes to the owning process")
        return {"op": "call", "name": message.name, "args": list(message.args),
                "kwargs": message.kwargs}
    if kind is QueueSend:
        return {"op": "queue.send", "queue": message.queue, "body": message.body}
    if kind is QueueInspect:
        return {"op": "queue.inspect", "queue": message.queue}
    if kind is QueueRedrive:
        return {"op": "queue.redrive", "queue": message.queue}
    if kind is WorkflowStart:
        return {"op": "workflow.start", "name": message.name, "args": list(message.args)}
    if kind is WorkflowStatus:
        return {"op": "workflow.status", "id": message.id}
    raise NotForwardable(f"{kind.__name__} is not forwarded between processes")


def decode_request(request: dict[str, Any], reply: asyncio.Future[Any]) -> Any:
    op = request["op"]
    if op == "call":
        return CallAction(request["name"], tuple(request["args"]), request["kwargs"], reply)
    if op == "queue.send":
        return QueueSend(request["queue"], request["body"], reply)
    if op == "queue.inspect":
        return QueueInspect(request["queue"], reply)
    if op == "queue.redrive":
        return QueueRedrive(request["queue"], reply)
    if op == "workflow.start":
        return WorkflowStart(request["name"], tuple(request["args"]), reply)
    if op == "workflow.status":
        return WorkflowStatus(request["id"], reply)
    raise ValueError(f"unknown forwarded op {op!r}")


def error_from(code: str, message: str) -> CollabError:
    cls = _ERRORS.get(code)
    return cls(message) if cls is not None else ActionError(message, code=code)


class Forwarder:
    def __init__(self, system: ActorSystem, redis: Redis, node: str) -> None:
        self.system = system
        self.redis = redis
        self.node = node
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.forwarded = 0
        self.served = 0
        self._from_afar: set[int] = set()  # ids of requests another process sent us
        self._publishing: set[asyncio.Future[None]] = set()
        self._rerouted: set[int] = set()  # requests sent back here once after a failed forward

    async def start(self) -> None:
        """Start listening; waits (bounded) for the first subscription, so requests
        forwarded to us right after start are heard. Redis may still be down."""
        self._task = asyncio.create_task(self._listen(), name="forwarding")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_TIMEOUT):
                await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def forward(self, owner: str, kind: str, key: str, message: Any) -> bool:
        """Send `message` to `owner`; False if it cannot travel (then reject it here)."""
        reply = getattr(message, "reply", None)
        if reply is None or owner == self.node or id(message) in self._from_afar \
                or id(message) in self._rerouted:
            return False  # forwarded once only: no ping-pong while ownership moves
        try:
            request = encode_request(message)
        except NotForwardable:
            return False
        request_id = next(self._ids)
        self._waiting[request_id] = reply
        reply.add_done_callback(lambda _: self._waiting.pop(request_id, None))
        payload = pack({"from": self.node, "rid": request_id, "kind": kind, "key": key,
                        **request})
        self.forwarded += 1
        self._spawn(self._publish(channel(owner), payload, message, kind, key))
        return True

    def _spawn(self, coro: Any) -> None:
        """Publish in the background, holding the task until it is done."""
        task = asyncio.ensure_future(coro)
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish(self, to: str, payload: bytes, message: Any, kind: str,
                       key: str) -> None:
        reply = message.reply
        try:
            listeners = await self.redis.publish(to, payload)
        except Exception as exc:
            listeners, why = 0, str(exc)
        else:
            why = "it is not listening (it may have died; its lease will expire)"
        if listeners or reply.done():
            return
        # The owner we believed in is gone (it stopped, or died): forget it and let
        # this process try the actor itself, once; a lease still held by the dead
        # owner makes that fail fast too, and the caller retries later.
        if self.system.placement is not None:
            self.system.placement.forget_owner(kind, key)
        if id(message) not in self._rerouted:
            self._rerouted.add(id(message))
            reply.add_done_callback(lambda _: self._rerouted.discard(id(message)))
            try:
                self.system.post(self.system.registry.resolve(kind), key, message)
                return
            except CollabError as exc:
                why = exc.message
        reply.set_exception(NotForwardable(f"could not reach the owning process: {why}"))

    async def _listen(self) -> None:
        """Subscribe to our channel and serve it; after Redis drops us, subscribe
        again with capped, jittered exponential backoff."""
        failures = 0
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(channel(self.node))
                self._ready.set()
                failures = 0
                async for item in pubsub.listen():
                    if item.get("type") != "message":
                        continue
                    try:
                        self._received(unpack(item["data"]))
                    except Exception:
                        log.exception("bad forwarded message")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = random.uniform(0, min(MAX_BACKOFF, 0.1 * 2 ** failures))
                log.warning("forwarding channel lost (%s); resubscribing in %.2f s", exc, delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _received(self, message: dict[str, Any]) -> None:
        if "answer" in message:
            future = self._waiting.pop(message["answer"], None)
            if future is None or future.done():
                return
            if message["ok"]:
                future.set_result(message["result"])
            else:
                future.set_exception(error_from(message["code"], message["message"]))
            return
        self.served += 1
        asker, rid = message["from"], message["rid"]
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        reply.add_done_callback(lambda fut: self._spawn(self._answer(asker, rid, fut)))
        request = decode_request(message, reply)
        self._from_afar.add(id(request))
        reply.add_done_callback(lambda _: self._from_afar.discard(id(request)))
        try:
            cls = self.system.registry.resolve(message["kind"])
            self.system.post(cls, message["key"], request)
        except CollabError as exc:
            reply.set_exception(exc)

    async def _answer(self, asker: str, rid: int, reply: asyncio.Future[Any]) -> None:
        if reply.cancelled():
            return
        error = reply.exception()
        if error is None:
            answer = {"answer": rid, "ok": True, "result": reply.result()}
        else:
            code = error.code if isinstance(error, CollabError) else "internal"
            text = error.message if isinstance(error, CollabError) else "internal error"
            answer = {"answer": rid, "ok": False, "code": code, "message": text}
        try:
            payload = pack(answer)
        except (TypeError, ValueError) as exc:
            payload = pack({"answer": rid, "ok": False, "code": "result_not_serializable",
                            "message": str(exc)})
        await self.redis.publish(channel(asker), payload)
