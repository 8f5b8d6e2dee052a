"""Forwarding: messages for an actor another process owns, carried over Redis.

A message for an actor owned elsewhere is published to the owner's channel,
`collab:node:<id>` (cluster/bus.py), in its wire form (runtime/travels.py): a
request (an action, a queue send, a workflow start...) or a relayed client's
message (a document join or update, an actor connection; runtime/relay.py).
The owner rebuilds it, posts it to its own instance, and publishes the answer,
if the message has one, back to the asker's channel, where it settles the
waiting future. A client socket travels as its id; the owner stands in for it
with a RemotePeer (runtime/fanout.py).

Pub/sub delivers at most once: a message published to an owner that is not
listening is tried here once (PUBLISH counts the listeners: nobody got it). One
that was delivered to an owner that then dies is answered `owner_unreachable`
as soon as its channel is seen without a listener (counted every third of a
liveness TTL), not after the caller's timeout: it may or may not have run, so
it is not run again here; the caller retries, and the next try takes the actor
over (cluster/placement.py).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from collab.cluster.bus import Bus
from collab.cluster.fanout import RemotePeer, RemotePeers
from collab.errors import CloseCode, CollabError, error_for
from collab.protocol.codec import pack, unpack
from collab.runtime import travels
from collab.runtime.actions import ActionError

if TYPE_CHECKING:
    from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)

class OwnerUnreachable(CollabError):
    """The process that owns the actor did not answer (it may be dying): try again;
    another process takes the actor over within a liveness TTL."""

    code = "owner_unreachable"
    status = 503
    close_code = CloseCode.TRY_AGAIN_LATER


class NotForwardable(CollabError):
    code = "owned_elsewhere"
    status = 503


def error_from(code: str, message: str) -> CollabError:
    """The exception an answer from another process stands for: the registered class
    of its code, or an ActionError with the code an actor chose."""
    return error_for(code, message, default=ActionError)


class Forwarder:
    def __init__(self, system: ActorSystem, bus: Bus, node: str) -> None:
        self.system = system
        self.bus = bus
        self.node = node
        self.remote_peers = RemotePeers(system, bus)
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        #: Requests waiting for an answer, by the process they were sent to.
        self._pending: dict[str, set[int]] = {}
        self._from_afar: set[asyncio.Future[Any]] = set()  # replies another process waits for
        self._rerouted: set[asyncio.Future[Any]] = set()  # sent back here once after a failure
        #: Packed messages queued this loop turn, and their unheard callbacks, by process.
        self._outgoing: dict[str, tuple[list[bytes], list[Callable[[str], None]]]] = {}
        self.forwarded = 0
        self.served = 0

    async def subscribe(self) -> None:
        """Listen on this process's channel (before the bus starts)."""
        await self.bus.subscribe(self.bus.node_channel(self.node), self._received)

    def from_afar(self, message: Any) -> bool:
        """True for a message another process sent here: it is never sent on again."""
        reply = getattr(message, "reply", None)
        return (reply is not None and reply in self._from_afar) \
            or type(travels.peer_of(message)) is RemotePeer

    # -- sending ----------------------------------------------------------------

    def forward(self, owner: str, kind: str, key: str, message: Any) -> bool:
        """Send a request to `owner`; False if it cannot travel (then handle it here).
        If the owner turns out not to listen, the request is tried here once."""
        reply = getattr(message, "reply", None)
        if reply is None or owner == self.node or reply in self._from_afar \
                or reply in self._rerouted or travels.travel_of(message) is None \
                or travels.peer_of(message) is not None:
            return False  # forwarded once only: no ping-pong while ownership moves

        def unheard(why: str) -> None:
            self._reroute(kind, key, message, why)

        self.send(owner, kind, key, message, unheard)
        return True

    def send(self, owner: str, kind: str, key: str, message: Any,
             unheard: Callable[[str], None]) -> None:
        """Publish `message` to `owner`; call `unheard(why)` if nobody received it."""
        op, fields = travels.encode(message)
        envelope: dict[str, Any] = {"from": self.node, "kind": kind, "key": key, "op": op,
                                    "f": fields}
        reply = getattr(message, "reply", None)
        if reply is not None:
            request_id = next(self._ids)
            envelope["rid"] = request_id
            self._waiting[request_id] = reply
            self._pending.setdefault(owner, set()).add(request_id)
            reply.add_done_callback(lambda _: self._settled(owner, request_id))
        peer = travels.peer_of(message)
        if peer is not None:
            envelope["peer"] = peer.id
            envelope["ack"] = peer.echo_ack
        self.forwarded += 1
        if not self.bus.connected:
            # An answer could not reach us: fail now rather than wait for a timeout.
            asyncio.get_running_loop().call_soon(unheard, "Redis is unreachable from here")
            return
        self._post(owner, pack(envelope), unheard)

    def _settled(self, owner: str, request_id: int) -> None:
        self._waiting.pop(request_id, None)
        pending = self._pending.get(owner)
        if pending is not None:
            pending.discard(request_id)
            if not pending:
                del self._pending[owner]

    def _owed_here(self, reply: asyncio.Future[Any]) -> None:
        for pending in self._pending.values():
            for request_id in [rid for rid in pending if self._waiting.get(rid) is reply]:
                pending.discard(request_id)

    def pending_channels(self) -> set[str]:
        """The channels of the processes that owe this one an answer."""
        return {self.bus.node_channel(node) for node in self._pending}

    def owner_gone(self, channel: str) -> None:
        """The process behind `channel` has no listener: what it owes us will not come."""
        for node in [node for node in self._pending if self.bus.node_channel(node) == channel]:
            self.system.ownership.placement.forget_owner_node(node)  # type: ignore[attr-defined]
            for request_id in list(self._pending.get(node, ())):
                reply = self._waiting.get(request_id)
                if reply is not None and not reply.done():
                    reply.set_exception(OwnerUnreachable(
                        f"process {node} stopped answering; the outcome is unknown, try "
                        "again shortly"))

    def send_control(self, owner: str, kind: str, key: str, op: str, **fields: Any) -> None:
        """A relay's notice to the owner, with no answer and no message class."""
        self._post(owner, pack({"from": self.node, "kind": kind, "key": key, "op": op,
                                "f": fields}))

    def _post(self, node: str, item: bytes,
              unheard: Callable[[str], None] | None = None) -> None:
        """Queue one packed message for process `node`. What a loop turn queued for
        one process travels as one publish (a list), in order: a relay's burst of
        client messages costs one Redis message, not one each."""
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        items, unheards = self._outgoing.setdefault(node, ([], []))
        items.append(item)
        if unheard is not None:
            unheards.append(unheard)

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, {}
        for node, (items, unheards) in outgoing.items():
            received = self.bus.publish(self.bus.node_channel(node), pack(items),
                                        count=bool(unheards))
            if received is not None:
                received.add_done_callback(lambda fut, waiting=unheards: _check(fut, waiting))

    def _reroute(self, kind: str, key: str, message: Any, why: str) -> None:
        reply = message.reply
        if reply.done():
            return
        # The owner we believed in is gone (it stopped, or died): forget it and let
        # this process try the actor itself, once; a lease still held by the dead
        # owner makes that fail fast too, and the caller retries later.
        self.system.ownership.placement.forget_owner(kind, key)  # type: ignore[attr-defined]
        if reply not in self._rerouted:
            self._rerouted.add(reply)
            self._owed_here(reply)  # nobody got it: the owner owes us nothing for it
            reply.add_done_callback(self._rerouted.discard)
            try:
                self.system.post(self.system.registry.resolve(kind), key, message)
                return
            except CollabError as exc:
                why = exc.message
        reply.set_exception(NotForwardable(f"could not reach the owning process: {why}"))

    # -- receiving -------------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        for item in unpack(data):
            try:
                self._handle(unpack(item))
            except Exception:  # one bad message must not drop the rest of its batch
                log.exception("bad message on %s", self.bus.node_channel(self.node))

    def _handle(self, message: dict[str, Any]) -> None:
        if "answer" in message:
            self._answered(message)
            return
        self.served += 1
        asker, kind, key, op = message["from"], message["kind"], message["key"], message["op"]
        if op == "relay.leave":
            self.remote_peers.leave(kind, key, asker, message["f"]["peers"])
            return
        reply: asyncio.Future[Any] | None = None
        if "rid" in message:
            rid = message["rid"]
            reply = asyncio.get_running_loop().create_future()
            reply.add_done_callback(lambda fut: self._post(asker, _answer(rid, fut)))
            self._from_afar.add(reply)
            reply.add_done_callback(self._from_afar.discard)
        peer = None
        if "peer" in message:
            peer = self.remote_peers.get(kind, key, asker, message["peer"], message["ack"])
        try:
            cls = self.system.registry.resolve(kind)
            request = travels.decode(op, message["f"], peer=peer, reply=reply, node=asker)
            if peer is not None and travels.travel_of(request).closes:
                self.remote_peers.drop(peer)
            self.system.post(cls, key, request)
        except (CollabError, ValueError) as exc:
            if reply is None:
                log.warning("dropped a message from %s for %s:%s: %s", asker, kind, key, exc)
            elif not reply.done():
                reply.set_exception(exc if isinstance(exc, CollabError)
                                    else ActionError(str(exc), code="bad_request"))

    def _answered(self, message: dict[str, Any]) -> None:
        future = self._waiting.pop(message["answer"], None)
        if future is None or future.done():
            return
        if message["ok"]:
            future.set_result(message["result"])
        else:
            future.set_exception(error_from(message["code"], message["message"]))


def _check(received: asyncio.Future[int], unheard: list[Callable[[str], None]]) -> None:
    if not received.result():
        for callback in unheard:
            callback("it is not listening (it may have died; its lease will expire)")


def _answer(rid: int, reply: asyncio.Future[Any]) -> bytes:
    if reply.cancelled():
        return pack({"answer": rid, "ok": False, "code": "cancelled", "message": "cancelled"})
    error = reply.exception()
    if error is None:
        try:
            return pack({"answer": rid, "ok": True, "result": reply.result()})
        except (TypeError, ValueError) as exc:
            return pack({"answer": rid, "ok": False, "code": "result_not_serializable",
                         "message": str(exc)})
    code = error.code if isinstance(error, CollabError) else "internal"
    text = error.message if isinstance(error, CollabError) else "internal error"
    return pack({"answer": rid, "ok": False, "code": code, "message": text})
