"""`/ws`: the native protocol. One socket, many documents and actors.

Each frame is one request (msgpack in binary frames, JSON in text frames,
see protocol/native.py); each request is checked here, handed to its actor as
a mailbox message, and answered in the frame format it came in, when the actor
replies. Events (document updates, awareness, actor events) go out in the
format of the client's first frame. A bad request gets an error response and
nothing else: the socket, its subscriptions and the actors carry on. A request
the client's token does not grant gets a `forbidden` error and changes nothing.
docs/protocol.md is the reference for everything here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from aiohttp import WSMsgType, web

from collab.actors.document import Document, Leave, PeerAwareness, PeerUpdate, Subscribe
from collab.actors.room import Room
from collab.auth import Principal
from collab.errors import CloseCode, CollabError, Forbidden
from collab.gateway.access import require
from collab.gateway.app_keys import LOADS, SETTINGS, SYSTEM, TRAFFIC
from collab.gateway.inband_auth import AUTH_OP, authenticate_in_band
from collab.gateway.names import parse_key
from collab.gateway.preauth import Unauthenticated
from collab.gateway.ratelimit import Loads, RateLimit, Throttle, refused
from collab.gateway.socket_peer import SocketPeer, sync_allowance
from collab.gateway.traffic import ERROR, INVALID, OTHER, RESPONSE, EndpointTraffic
from collab.gateway.upgrade import serve_socket
from collab.gateway.websocket import WebSocket
from collab.protocol import native
from collab.protocol.native import Outgoing, YjsOut
from collab.runtime.actions import CallAction, RateLimited, bound, check_depth
from collab.runtime.actor import Actor
from collab.runtime.connections import Connect, Disconnect
from collab.runtime.queues import QueueSend, encode_message
from collab.runtime.refs import Route
from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)


class InvalidRequest(CollabError):
    """A well-formed message whose op is unknown or whose fields are wrong."""

    code = "bad_request"


class NativeSocketPeer(SocketPeer):
    """A `/ws` socket: the Peer of its documents and actor connections."""

    echo_ack = False  # each doc.update has its own answer, sent after the commit

    __slots__ = ("binary",)

    def __init__(self, ws: WebSocket, request: web.Request,
                 max_outbound_bytes: int, traffic: EndpointTraffic) -> None:
        super().__init__(ws, request, max_outbound_bytes, traffic)
        #: Events go out as msgpack (True) or JSON (False): the client's first frame decides.
        self.binary = True

    def send_out(self, out: Outgoing, binary: bool | None = None, asked: bool = False) -> None:
        """Write `out` (in the socket's event format unless `binary` says); `asked`: the
        client asked for it to sync (SocketPeer.send_frame)."""
        try:
            frame = out.frame(self.binary if binary is None else binary)
        except (TypeError, ValueError) as exc:
            log.warning("%s: cannot encode %r: %s", self.id, out, exc)
            return
        message = out.message
        kind = message.get("event") or (RESPONSE if message.get("ok") else ERROR)
        self.send_frame(frame, kind if kind in self._sent else OTHER, asked)

    def send_yjs(self, out: YjsOut) -> None:
        self.send_out(out.native())

    def send_sync(self, out: YjsOut) -> None:
        self.send_out(out.native(), asked=True)


def _field(message: dict[str, Any], name: str, kind: type | tuple[type, ...], *,
           required: bool = True) -> Any:
    value = message.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f'"{message["op"]}" needs "{name}"')
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise InvalidRequest(f'"{name}" must be {_TYPE_NAMES.get(names, names)}')
    return value


_TYPE_NAMES = {"str": "a string", "bytes": "bytes (base64 in JSON)", "dict": "a map",
               "list": "a list", "int": "an integer"}


class Session:
    """The state of one `/ws` socket: its subscriptions and actor connections."""

    def __init__(self, conn: NativeSocketPeer, system: ActorSystem, limit: RateLimit,
                 loads: Loads, *, first_frame: bool = True) -> None:
        self.conn = conn
        self.system = system
        self.limit = limit  # what the socket may send: paced past it
        self.loads = loads  # what actors it may wake
        self.traffic = conn.traffic
        self.docs: dict[str, Route] = {}  # subscribed documents, by name
        self.actors: set[tuple[type[Actor], str]] = set()  # actors connected (or connecting) to
        self.max_subscriptions = system.settings.max_subscriptions
        self.awareness = Throttle(system.settings.max_awareness_per_second)
        self.first_frame = first_frame
        conn.may_keep = self.may_keep
        conn.asked_allowance = sync_allowance(system.settings.max_document_bytes)
        #: What actors meter this socket's calls against (a room's write rate), whether
        #: or not it is connected to them; unique across processes.
        node = system.ownership.node
        self.caller = f"ws:{node}/{conn.id}" if node else f"ws:{conn.id}"

    def may_keep(self, principal: Principal) -> bool:
        """Whether `principal` may still read every document and actor this socket
        holds (an administrator lowering a live socket's permissions)."""
        try:
            for name in self.docs:
                require(principal, "docs", name, write=False)
            for cls, key in self.actors:
                _authorize_actor(principal, cls, key, write=False)
        except Forbidden:
            return False
        return True

    def _waking(self, cls: type[Actor], key: str) -> None:
        """A request for actor (cls, key): if it is not loaded here, count the wake-up
        against the socket's and its address's budgets; past either, nothing more is
        read from the socket for a while (COLLAB_MAX_LOADS_PER_SECOND). One past them
        for longer than the grace is closed with 4429 and this request refused."""
        if self.system.present(cls, key) is not None:
            return
        self.limit.owe(self.loads.charge())
        if self.loads.flooding():
            log.info("%s: waking actors past its budget for %g s, closing with 4429",
                     self.conn.id, self.loads.grace)
            self.conn.close(CloseCode.RATE_LIMITED, "waking too many actors: slow down")
            raise RateLimited("this socket wakes too many documents and actors per "
                              "second (COLLAB_MAX_LOADS_PER_SECOND)")

    def _make_room(self) -> None:
        """Raises too_many_subscriptions when one more document or actor would pass
        the socket's limit (COLLAB_MAX_SUBSCRIPTIONS)."""
        if self.max_subscriptions and \
                len(self.docs) + len(self.actors) >= self.max_subscriptions:
            raise InvalidRequest(
                f"this socket already holds {self.max_subscriptions} documents and actors, "
                "the server's limit: unsubscribe or disconnect from one first",
                code="too_many_subscriptions")

    # -- frames in, answers out -----------------------------------------------

    def receive(self, data: bytes | str) -> None:
        binary = isinstance(data, bytes)
        if self.first_frame:
            self.first_frame = False
            self.conn.binary = binary
        try:
            message = native.decode(data)
        except native.MalformedMessage as exc:
            self.traffic.count_received(INVALID, len(data))
            log.info("%s: %s", self.conn.id, exc.message)
            self.answer_error(getattr(exc, "request_id", None), binary, exc)
            return
        request_id = message.get("id")
        handler = OPS.get(message["op"])
        # Only ops in OPS are counted under their name: a client cannot invent labels.
        self.traffic.count_received(message["op"] if handler is not None else INVALID,
                                    len(data))
        try:
            if handler is None:
                raise InvalidRequest(f"unknown op {message['op']!r}; ops are "
                                     f"{', '.join(sorted(OPS))}", code="unknown_op")
            handler(self, message, Reply(self, request_id, binary))
        except CollabError as exc:
            self.answer_error(request_id, binary, exc)

    def answer_error(self, request_id: Any, binary: bool, exc: BaseException) -> None:
        if isinstance(exc, CollabError):
            code, text = exc.code, exc.message
        else:
            log.error("%s: request failed: %r", self.conn.id, exc)
            code, text = "internal", "internal server error"
        self.conn.send_out(native.error(request_id, code, text), binary)

    # -- documents ----------------------------------------------------------------

    def doc_subscribe(self, message: dict[str, Any], reply: Reply) -> None:
        name = parse_key(_field(message, "doc", str), what="document name")
        require(self.conn.principal, "docs", name, write=False)
        if name not in self.docs:
            self._make_room()
        state_vector = _field(message, "sv", bytes, required=False) or b"\x00"
        self._waking(Document, name)
        reply.asked = True  # the document and who is here: never slow consumption
        future = reply.future()
        route = self.docs[name] = Route(self.system, Document, name)
        route.post(Subscribe(self.conn, state_vector, future))
        bound(future, Document.kind, name, "a subscribe")

        def forget_failed(fut: asyncio.Future[Any]) -> None:
            if (fut.cancelled() or fut.exception() is not None) and name in self.docs:
                self.docs.pop(name).post(Leave(self.conn))

        future.add_done_callback(forget_failed)

    def _subscribed(self, message: dict[str, Any]) -> tuple[str, Route]:
        name = _field(message, "doc", str)
        doc = self.docs.get(name)
        if doc is None:
            raise InvalidRequest(f"not subscribed to document {name!r}; send doc.subscribe first",
                                 code="not_subscribed")
        return name, doc

    def doc_update(self, message: dict[str, Any], reply: Reply) -> None:
        name, doc = self._subscribed(message)
        require(self.conn.principal, "docs", name, write=True)
        update = _field(message, "update", bytes)
        reply.post(doc, lambda fut: PeerUpdate(self.conn, update, fut), lambda seq: {"seq": seq})

    def doc_awareness(self, message: dict[str, Any], reply: Reply) -> None:
        name, doc = self._subscribed(message)
        payload = _field(message, "update", bytes)

        def make(fut: asyncio.Future[None]) -> PeerAwareness:
            return PeerAwareness(self.conn, payload, fut)

        if self.awareness.take(name):
            reply.post(doc, make)
        else:  # past the awareness rate: the latest per document goes out later
            self.awareness.hold(name, lambda: Reply(self, None, reply.binary).post(doc, make))
            reply.ok(None)

    def doc_unsubscribe(self, message: dict[str, Any], reply: Reply) -> None:
        name, doc = self._subscribed(message)
        del self.docs[name]
        self.awareness.discard(name)
        doc.post(Leave(self.conn))
        reply.ok(None)

    # -- actors -------------------------------------------------------------------

    def _actor(self, message: dict[str, Any]) -> tuple[type[Actor], str]:
        kind = _field(message, "actor", str)
        key = parse_key(_field(message, "key", str), what="actor key")
        return self.system.registry.resolve(kind), key  # raises UnknownActorType

    def _ask(self, cls: type[Actor], key: str, make: Callable[[asyncio.Future[Any]], Any],
             what: str, reply: Reply,
             transform: Callable[[Any], Any] | None = None) -> asyncio.Future[Any]:
        """Post `make(future)` to actor (cls, key); its answer settles `reply` (bounded)."""
        future = reply.future(transform)
        self.system.post(cls, key, make(future))
        bound(future, cls.kind, key, what)
        return future

    def actor_connect(self, message: dict[str, Any], reply: Reply) -> None:
        cls, key = self._actor(message)
        params = _field(message, "params", dict, required=False) or {}
        check_depth(params, '"params"')
        _authorize_actor(self.conn.principal, cls, key, write=False)
        if cls.kind == Room.kind:
            params = _room_user(self.conn.principal, params, "user", fill=True)

        first = (cls, key) not in self.actors
        if first:
            self._make_room()
            self._waking(cls, key)
            # Counted at once, so connects in flight count against the limit too.
            self.actors.add((cls, key))

        def connected(conn_id: str) -> dict[str, str]:
            return {"conn": conn_id}

        def forget_failed(fut: asyncio.Future[Any]) -> None:
            if first and (fut.cancelled() or fut.exception() is not None):
                self.actors.discard((cls, key))

        principal = self.conn.principal
        user = None if principal.unrestricted else principal.user
        future = self._ask(cls, key, lambda fut: Connect(self.conn, params, fut, user),
                           "a connect", reply, connected)
        future.add_done_callback(forget_failed)

    def actor_disconnect(self, message: dict[str, Any], reply: Reply) -> None:
        cls, key = self._actor(message)
        self.actors.discard((cls, key))
        self._ask(cls, key, lambda fut: Disconnect(self.conn, fut), "a disconnect", reply)

    def actor_call(self, message: dict[str, Any], reply: Reply) -> None:
        cls, key = self._actor(message)
        action = _field(message, "action", str)
        args = _field(message, "args", list, required=False) or []
        kwargs = _field(message, "kwargs", dict, required=False) or {}
        _authorize_actor(self.conn.principal, cls, key,
                         write=action not in getattr(cls, "READ_ACTIONS", ()))
        if cls.kind == Room.kind:
            kwargs = _room_user(self.conn.principal, kwargs, "user=", fill=False)
        peer = self.conn if (cls, key) in self.actors else None
        self._waking(cls, key)
        self._ask(cls, key, lambda fut: CallAction(action, tuple(args), kwargs, fut, peer,
                                                   self.caller), repr(action), reply)

    def actor_queue(self, message: dict[str, Any], reply: Reply) -> None:
        cls, key = self._actor(message)
        queue = _field(message, "queue", str)
        if "message" not in message:
            raise InvalidRequest('"actor.queue" needs "message"')
        _authorize_actor(self.conn.principal, cls, key, write=True)
        check_depth((message["message"],), "the message")
        body = encode_message(message["message"])
        self._waking(cls, key)
        self._ask(cls, key, lambda fut: QueueSend(queue, body, fut), f"a send to {queue!r}",
                  reply, lambda seq: {"seq": seq})

    def ping(self, message: dict[str, Any], reply: Reply) -> None:
        reply.ok(None)

    def auth(self, message: dict[str, Any], reply: Reply) -> None:
        if self.conn.principal.unrestricted:  # development mode: there is nothing to check
            reply.ok({"user": self.conn.principal.user, "expires_at": None})
            return
        raise InvalidRequest("this socket is already authenticated (an auth message is only "
                             "the first frame of a socket opened without a token)",
                             code="already_authenticated")

    # -- the end ------------------------------------------------------------------

    def close(self) -> None:
        """The socket is gone: leave every document, disconnect from every actor."""
        self.awareness.close()
        for doc in self.docs.values():
            doc.post(Leave(self.conn))
        self.docs.clear()
        for kind, key in self.actors:
            Route(self.system, kind, key).post(Disconnect(self.conn))
        self.actors.clear()


def _authorize_actor(principal: Principal, cls: type[Actor], key: str, *, write: bool) -> None:
    """Raises Forbidden unless the token grants this: documents under `docs`, rooms
    under `rooms` (by key), any other actor under `actors` as `<kind>/<key>`."""
    if cls.kind == Document.kind:
        require(principal, "docs", key, write=write)
    elif cls.kind == Room.kind:
        require(principal, "rooms", key, write=write)
    else:
        require(principal, "actors", f"{cls.kind}/{key}", write=write)


def _room_user(principal: Principal, values: dict[str, Any], what: str, *,
               fill: bool) -> dict[str, Any]:
    """`values` (connect params or call kwargs) acting as the token's user: a room's
    `user` must be the token's `sub`, and with `fill` it is set when absent.
    Raises Forbidden for another user. Development mode trusts the client."""
    if principal.unrestricted:
        return values
    user = values.get("user")
    if user is not None and user != principal.user:
        raise Forbidden(f"{what} {user!r} is not the token's user {principal.user!r}")
    return {**values, "user": principal.user} if fill else values


class Reply:
    """Where the answer to one request goes: its id, in its frame format.
    A request without an id is answered only if it fails."""

    __slots__ = ("asked", "binary", "request_id", "session")

    def __init__(self, session: Session, request_id: Any, binary: bool) -> None:
        self.session = session
        self.request_id = request_id
        self.binary = binary
        #: The answer is what the client asked for to sync (SocketPeer.send_frame).
        self.asked = False

    def ok(self, result: Any) -> None:
        if self.request_id is not None:
            self.session.conn.send_out(native.response(self.request_id, result), self.binary,
                                       self.asked)

    def settle(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            self.session.answer_error(self.request_id, self.binary, error)
        elif self.request_id is not None:
            out = native.response(self.request_id, future.result())
            try:
                out.frame(self.binary)
            except (TypeError, ValueError) as exc:
                out = native.error(self.request_id, "result_not_serializable",
                                   f"the result cannot be encoded: {exc}")
            self.session.conn.send_out(out, self.binary, self.asked)

    def future(self, transform: Callable[[Any], Any] | None = None) -> asyncio.Future[Any]:
        """A future for an actor to answer; its result (through `transform`) is sent."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if transform is None:
            future.add_done_callback(self.settle)
        else:
            def done(fut: asyncio.Future[Any]) -> None:
                if fut.cancelled() or fut.exception() is not None:
                    self.settle(fut)
                else:
                    self.ok(transform(fut.result()))
            future.add_done_callback(done)
        return future

    def post(self, route: Route, make: Callable[[asyncio.Future[Any]], Any],
             transform: Callable[[Any], Any] | None = None) -> None:
        """Post `make(future)` to the actor `route` leads to; its answer settles this reply."""
        future = self.future(transform)
        route.post(make(future))
        bound(future, route.cls.kind, route.key, "a document request")


OPS: dict[str, Callable[[Session, dict[str, Any], Reply], None]] = {
    "doc.subscribe": Session.doc_subscribe,
    "doc.update": Session.doc_update,
    "doc.awareness": Session.doc_awareness,
    "doc.unsubscribe": Session.doc_unsubscribe,
    "actor.connect": Session.actor_connect,
    "actor.disconnect": Session.actor_disconnect,
    "actor.call": Session.actor_call,
    "actor.queue": Session.actor_queue,
    "ping": Session.ping,
    AUTH_OP: Session.auth,
}


async def native_socket(request: web.Request) -> web.StreamResponse:
    return await serve_socket(request, NativeSocketPeer, "/ws", request.app[TRAFFIC].native,
                              partial(_serve_native, request), in_band_auth=True)


async def _serve_native(request: web.Request, conn: NativeSocketPeer,
                        unauthenticated: Unauthenticated | None) -> None:
    """One `/ws` socket, from its auth message (when it upgraded without credentials)
    to its end."""
    app = request.app
    limit = RateLimit(app[SETTINGS])
    if unauthenticated is not None and \
            not await authenticate_in_band(conn, unauthenticated, request, limit):
        return
    del request  # only its auth needed the request's head: not kept for the socket's life
    loads = Loads(app[SETTINGS], app[LOADS], conn.remote)
    session = Session(conn, app[SYSTEM], limit, loads, first_frame=unauthenticated is None)
    try:
        async for msg in conn.ws:
            if msg.type is WSMsgType.BINARY or msg.type is WSMsgType.TEXT:
                if await refused(limit, conn, len(msg.data)):
                    break
                session.receive(msg.data)
    finally:
        session.close()
