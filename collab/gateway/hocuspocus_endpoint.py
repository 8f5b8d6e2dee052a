"""`/` (a WebSocket upgrade) and `/hocuspocus`: the Hocuspocus protocol, for
`@hocuspocus/provider` (Tiptap). One socket, many documents, each behind its key.

Each document on a socket authenticates apart (its Auth message, the same tokens
and hook as `/yjs` and `/ws`) and is then a `Channel`: the Peer its Document actor
sees, exactly as a `/yjs` socket, so sync, awareness and query-awareness are the
Document's own. Its updates go as `PeerUpdate`s, answered after their commit:
that answer is the SyncStatus. Bad bytes close the socket with the errors
module's code; a document's trouble (a refused update, the document deleted)
closes that document alone with a Close message. docs/protocol.md, "The
Hocuspocus endpoint", is the reference.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from aiohttp import WSMsgType, hdrs, web

from collab.actors.document import (
    DELETED_EVENT,
    STATELESS_EVENT,
    BroadcastStateless,
    Document,
    Inbound,
    Join,
    Leave,
    PeerUpdate,
)
from collab.auth import Principal
from collab.errors import (
    BadRequest,
    CloseCode,
    Forbidden,
    RemoteProtocolError,
    ShuttingDown,
    UnsupportedMessage,
    close_code_for,
)
from collab.gateway.access import require
from collab.gateway.app_keys import GATEKEEPER, LOADS, REGISTRY, SETTINGS, SYSTEM, TRAFFIC
from collab.gateway.names import parse_doc_name
from collab.gateway.preauth import Unauthenticated
from collab.gateway.ratelimit import Loads, RateLimit, Throttle, refused
from collab.gateway.socket_peer import SocketPeer, sync_allowance
from collab.gateway.traffic import HOCUSPOCUS_KINDS, INVALID, YJS_KINDS
from collab.gateway.upgrade import serve_socket
from collab.gateway.user_rules import CLOSED
from collab.gateway.websocket import WebSocket
from collab.protocol import hocuspocus as hp
from collab.protocol import ywire
from collab.protocol.native import Outgoing, YjsOut
from collab.protocol.wsframe import binary_frame
from collab.runtime.actions import ask, bound
from collab.runtime.refs import Route
from collab.runtime.stateless import HOOK_TIMEOUT, StatelessMessage

log = logging.getLogger(__name__)

#: Seconds without a frame to a socket after which it is sent a Ping (providers since
#: 4.0 answer it), so the provider's 30 s message timeout never fires on a quiet but
#: healthy socket; checked every KEEPALIVE_CHECK seconds (so at most 20 s of silence).
KEEPALIVE_IDLE = 15.0
KEEPALIVE_CHECK = 5.0
#: Older providers know no Ping: after this many seconds without a frame, their own
#: awareness renewal (every 15 s) is echoed back to them, a no-op that counts as a
#: message (Hocuspocus's server echoes every awareness update to its sender).
ECHO_IDLE = 5.0
#: Close codes that end the whole socket when a document's peer is closed with them:
#: the server's trouble (restarting, overloaded, a bug), the token, the rate; the
#: provider reconnects and syncs every document again. Any other code closes that
#: one document with a Close message.
SOCKET_CODES = frozenset((CloseCode.SERVICE_RESTART, CloseCode.TRY_AGAIN_LATER,
                          CloseCode.INTERNAL_ERROR, CloseCode.UNAUTHORIZED,
                          CloseCode.RATE_LIMITED, CloseCode.ABNORMAL_CLOSURE))

_PING_FRAME = binary_frame(hp.serialize(hp.Ping()))
_PONG_FRAME = binary_frame(hp.serialize(hp.Pong()))


class HocuspocusSocket(SocketPeer):
    """A Hocuspocus socket: one WebSocket, the documents on it are its Channels. It
    remembers when it last wrote, for the keep-alive."""

    __slots__ = ("last_sent",)

    def __init__(self, ws: WebSocket, request: web.Request,
                 max_outbound_bytes: int, traffic: Any) -> None:
        super().__init__(ws, request, max_outbound_bytes, traffic)
        self.last_sent = time.monotonic()

    def send_frame(self, frame: bytes, kind: str, asked: bool = False) -> None:
        self.last_sent = time.monotonic()
        super().send_frame(frame, kind, asked)


class Channel:
    """One document on a Hocuspocus socket, as its Document actor sees it (a Peer):
    what it is sent goes out behind the document's key; closing it closes that
    document alone (a Close message), unless the code is the socket's (SOCKET_CODES)."""

    #: Its updates are answered one by one after their commit (the SyncStatus).
    echo_ack = False

    __slots__ = ("conn", "doc", "forget", "id", "key", "limits", "principal", "read_only",
                 "route", "shut")

    def __init__(self, conn: HocuspocusSocket, key: str, doc: str, number: int,
                 principal: Principal, route: Route,
                 forget: Callable[[Channel], None]) -> None:
        self.conn = conn
        self.key = key
        self.doc = doc
        self.id = f"{conn.id}.{number}"
        self.principal = principal
        self.route = route
        self.forget = forget  # the session drops it (and tells its Document)
        self.limits: Any = None  # the administrator's limits `read_only` was worked out for
        self.read_only = True
        self.shut = False

    def __repr__(self) -> str:
        return f"<Channel {self.id}>"

    @property
    def closed(self) -> bool:
        return self.shut or self.conn.closed

    def writable(self) -> bool:
        """Whether its token lets it change the document, under the administrator's
        limits now (they may be lowered while the socket is open)."""
        limits = self.conn.principal.limits
        if limits is not self.limits:
            self.limits = limits
            principal = dataclasses.replace(self.principal, limits=limits)
            self.read_only = not principal.can_write("docs", self.doc)
        return not self.read_only

    def send(self, message: hp.Message) -> None:
        """Write one message for this document."""
        if self.shut:
            return
        frame = binary_frame(hp.serialize(hp.Frame(self.key, message)))
        self.conn.send_frame(frame, HOCUSPOCUS_KINDS[type(message)])

    def send_yjs(self, out: YjsOut) -> None:
        if not self.shut:
            self.conn.send_frame(out.keyed_frame(self.key), YJS_KINDS[type(out.message)])

    def send_sync(self, out: YjsOut) -> None:
        if not self.shut:
            self.conn.send_frame(out.keyed_frame(self.key), YJS_KINDS[type(out.message)],
                                 asked=True)

    def send_out(self, out: Outgoing) -> None:
        """The Document's events: a stateless message, or its deletion (closes it)."""
        event = out.message.get("event")
        if event == STATELESS_EVENT:
            self.send(hp.Stateless(out.message["payload"]))
        elif event == DELETED_EVENT:
            self.close(CloseCode.DOCUMENT_DELETED, "document deleted")

    def close(self, code: int, reason: str) -> None:
        if code in SOCKET_CODES:
            self.conn.close(code, reason)
            return
        if self.shut:
            return
        # "<code> <reason>": the code /yjs would close with (4410: deleted, 1007: bad
        # update, 4413: over the quota...), for applications that tell them apart.
        self.send(hp.Close(f"{code} {reason}"[:hp.MAX_TEXT_CHARS]))
        self.shut = True
        self.forget(self)


class Session:
    """The documents of one Hocuspocus socket, and what it may still do."""

    def __init__(self, conn: HocuspocusSocket, request: web.Request,
                 unauthenticated: Unauthenticated | None, limit: RateLimit) -> None:
        app = request.app
        self.conn = conn
        #: Kept for an auth hook only, which may read its headers and cookies for each
        #: document: without one, the request's head is not kept for the socket's life.
        self.request = request if app[GATEKEEPER].hook is not None else None
        self.unauthenticated = unauthenticated
        self.limit = limit
        self.settings = app[SETTINGS]
        self.system = app[SYSTEM]
        self.registry = app[REGISTRY]
        self.gatekeeper = app[GATEKEEPER]
        self.traffic = conn.traffic
        self.loads = Loads(self.settings, app[LOADS], conn.remote)
        self.channels: dict[str, Channel] = {}  # by key
        self.opened = 0  # channels opened, for their ids
        self.awareness = Throttle(self.settings.max_awareness_per_second)
        #: Whether a provider on it announced its version: those (4.0 and later) answer
        #: Pings. Older ones get their awareness echoed instead.
        self.pings = False
        self._timers: list[asyncio.TimerHandle] = []
        self._keepalive = asyncio.ensure_future(self._keep_alive())
        conn.may_keep = self.may_keep
        conn.asked_allowance = sync_allowance(self.settings.max_document_bytes)
        if unauthenticated is not None:  # a document must authenticate in time
            self._timers.append(asyncio.get_running_loop().call_later(
                self.settings.auth_timeout, self._deadline))

    # -- frames in ------------------------------------------------------------------

    async def receive(self, data: bytes) -> None:
        """Handle one binary frame; bad bytes close the socket."""
        try:
            frame = hp.parse(data)
        except RemoteProtocolError as exc:
            await self.refuse(exc, len(data))
            return
        message = frame if not isinstance(frame, hp.Frame) else frame.message
        self.traffic.count_received(HOCUSPOCUS_KINDS.get(type(message), INVALID), len(data))
        if isinstance(frame, hp.Ping):
            self.conn.send_frame(_PONG_FRAME, "pong")
            return
        if isinstance(frame, hp.Pong):
            return
        kind = type(message)
        if kind is hp.Auth:
            await self._authenticate(frame.key, frame.document, message)
            return
        if kind is hp.Authenticated or kind is hp.PermissionDenied or kind is hp.SyncStatus:
            await self.refuse(UnsupportedMessage(f"{kind.__name__} is sent by servers, not "
                                                  "clients"), 0)
            return
        channel = self.channels.get(frame.key)
        if channel is None:
            # Not (or no longer) open on this socket: a provider sends its sync and
            # awareness right behind its Auth, whether that is refused or not.
            return
        if kind is hp.Close:
            self._forget(channel)
        elif kind is hp.Stateless:
            await self._stateless(channel, message.payload)
        elif kind is ywire.SyncUpdate or kind is ywire.SyncStep2:
            self._update(channel, message.update)
        elif kind is ywire.AwarenessMessage:
            self._awareness(channel, message)
        else:  # sync step 1, query awareness: answered by the document as on /yjs
            channel.route.post(Inbound(channel, message))

    async def refuse(self, exc: RemoteProtocolError, size: int) -> None:
        """Close the socket for bad input (`size` bytes of it, uncounted so far)."""
        if size:
            self.traffic.count_received(INVALID, size)
        log.info("hocuspocus: closing %s: %s", self.conn.id, exc.message)
        await self.conn.aclose(close_code_for(exc), exc.message)

    def _update(self, channel: Channel, update: bytes) -> None:
        """A change (an update, or the step 2 of a sync): applied, and answered with a
        SyncStatus once committed; refused with SyncStatus false on a read-only token."""
        if not channel.writable():
            applied = update == ywire.EMPTY_UPDATE  # "nothing new": a reader's step 2
            if not applied:
                log.info("doc %r: refused a change from read-only user %r on %s", channel.doc,
                         channel.principal.user, channel.id)
            channel.send(hp.SyncStatus(applied))
            return
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def saved(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled():
                return
            error = fut.exception()
            if error is None:
                channel.send(hp.SyncStatus(True))
                return
            log.info("doc %r: closing %s: %s", channel.doc, channel.id, error)
            channel.close(close_code_for(error), getattr(error, "message", "internal error"))

        reply.add_done_callback(saved)
        channel.route.post(PeerUpdate(channel, update, reply))
        bound(reply, Document.kind, channel.doc, "an update")

    def _awareness(self, channel: Channel, message: ywire.AwarenessMessage) -> None:
        if not self.pings and time.monotonic() - self.conn.last_sent >= ECHO_IDLE:
            channel.send_yjs(YjsOut(channel.doc, message))  # keep-alive for old providers
        post = channel.route.post
        if self.awareness.take(channel.key):
            post(Inbound(channel, message))
        else:  # past the awareness rate: the latest per document goes when the budget allows
            self.awareness.hold(channel.key, lambda: post(Inbound(channel, message)))

    # -- documents opening and closing ------------------------------------------------

    async def _authenticate(self, key: str, doc: str, auth: hp.Auth) -> None:
        """Open document `doc` under `key` for the token in `auth`, answering
        Authenticated with its scope, or PermissionDenied with the reason."""
        if auth.version is not None:
            self.pings = True
        old = self.channels.get(key)
        if old is not None:  # authenticating again: it starts over
            self._forget(old)
        try:
            name = parse_doc_name(doc)
            if len(self.channels) >= self.settings.max_subscriptions > 0:
                raise Forbidden(f"this socket already holds {self.settings.max_subscriptions} "
                                "documents, the server's limit (COLLAB_MAX_SUBSCRIPTIONS)")
            since = time.time()
            principal = await self._principal(auth.token)
            require(principal, "docs", name, write=False)
            self._same_user(principal)
        except BadRequest as exc:  # Unauthorized, Forbidden, invalid_name
            self._deny(key, exc.message)
            return
        except Exception:
            log.exception("%s: the auth hook failed", self.conn.id)
            self._deny(key, "authentication failed")
            return
        if self.conn.closed or not self._admit(principal, since):
            return
        if not self._waking(name):
            return
        self.opened += 1
        channel = Channel(self.conn, key, name, self.opened, principal,
                          Route(self.system, Document, name), self._forget)
        self.channels[key] = channel
        channel.send(hp.Authenticated(hp.READ_WRITE if channel.writable() else hp.READ_ONLY))
        try:
            channel.route.post(Join(channel))  # the document sends its step 1 and who is here
        except ShuttingDown:
            self.conn.close(CloseCode.SERVICE_RESTART, "server restarting")

    async def _principal(self, token: str) -> Principal:
        """Who `token` speaks for (raises Unauthorized or Forbidden): the same check
        as every endpoint. Without a token, the socket's own credentials (a `?token=`
        in its URL, a cookie the hook accepts); in development mode, anyone."""
        gatekeeper = self.gatekeeper
        if not gatekeeper.enabled:
            return self.conn.principal
        if not token and self.unauthenticated is None:
            return self.conn.principal
        return await gatekeeper.authenticate(token or None, self.request)

    def _same_user(self, principal: Principal) -> None:
        """Raises Forbidden if the socket already acts for another user: revocations and
        administrators' limits apply per socket, so one socket speaks for one user."""
        if self._admitted and principal.user != self.conn.principal.user:
            raise Forbidden(f"this socket speaks for user {self.conn.principal.user!r}: "
                            f"open another socket (HocuspocusProviderWebsocket) for "
                            f"{principal.user!r}")

    @property
    def _admitted(self) -> bool:
        return self.unauthenticated is None or not self.unauthenticated.waiting

    def _admit(self, principal: Principal, since: float) -> bool:
        """The socket acts for `principal` from its first document on (its token's expiry
        and the administrator's rules cover the socket); False if a rule closed it."""
        if self._admitted:
            self._expire_by(principal.expires_at)
            return True
        conn = self.conn
        conn.admit(principal, since)
        if self.gatekeeper.rules.settle(conn) == CLOSED:  # an administrator's change meanwhile
            return False
        assert self.unauthenticated is not None
        self.unauthenticated.admitted(self.settings.max_message_bytes)
        for timer in self._timers:  # the deadline to authenticate
            timer.cancel()
        self._timers.clear()
        return True

    def _expire_by(self, expires_at: float | None) -> None:
        """A document's token expires at `expires_at`: the socket closes then (4401) if
        it has not already, so the provider reconnects with fresh tokens."""
        if expires_at is None:
            return
        delay = max(0.0, expires_at - time.time())
        self._timers.append(asyncio.get_running_loop().call_later(
            delay, self.conn.close, CloseCode.UNAUTHORIZED, "token expired"))

    def _deny(self, key: str, reason: str) -> None:
        log.info("%s: permission denied: %s", self.conn.id, reason)
        frame = binary_frame(hp.serialize(hp.Frame(key, hp.PermissionDenied(
            reason[:hp.MAX_TEXT_CHARS]))))
        self.conn.send_frame(frame, "auth")

    def _waking(self, name: str) -> bool:
        """Count waking document `name` if it is not loaded here against the socket's
        and its address's budgets; False (and the socket closing with 4429) past them
        for longer than the grace."""
        if self.system.present(Document, name) is not None:
            return True
        self.limit.owe(self.loads.charge())
        if self.loads.flooding():
            log.info("%s: waking documents past its budget for %g s, closing with 4429",
                     self.conn.id, self.loads.grace)
            self.conn.close(CloseCode.RATE_LIMITED, "waking too many documents: slow down")
            return False
        return True

    def _forget(self, channel: Channel) -> None:
        """The channel is closed (by the client, or by its document): leave it."""
        if self.channels.get(channel.key) is channel:
            del self.channels[channel.key]
        channel.shut = True
        self.awareness.discard(channel.key)
        channel.route.post(Leave(channel))

    def may_keep(self, principal: Principal) -> bool:
        """Whether the socket may go on under `principal`'s limits (an administrator
        lowered them): it must still read every document it holds."""
        try:
            for channel in self.channels.values():
                require(dataclasses.replace(channel.principal, limits=principal.limits),
                        "docs", channel.doc, write=False)
        except Forbidden:
            return False
        return True

    # -- stateless messages -------------------------------------------------------------

    async def _stateless(self, channel: Channel, payload: str) -> None:
        """Run the application's hooks for this document (runtime/stateless.py), one
        after the other; the socket is not read meanwhile."""
        hooks = self.registry.stateless_hooks_for(channel.doc)
        if not hooks:
            return
        system, doc = self.system, channel.doc

        def broadcast(text: str) -> asyncio.Future[Any]:
            return ask(system, Document, doc, lambda reply: BroadcastStateless(text, reply),
                       "a stateless broadcast")

        message = StatelessMessage(doc, payload, channel.principal.user, channel.writable(),
                                   lambda text: channel.send(hp.Stateless(text)), broadcast)
        for hook in hooks:
            try:
                async with asyncio.timeout(HOOK_TIMEOUT):
                    result = hook(message)
                    if inspect.isawaitable(result):
                        await result
            except Exception:
                log.exception("doc %r: the stateless hook %s failed", doc,
                              getattr(hook, "__qualname__", hook))

    # -- keep-alive and the end -----------------------------------------------------------

    async def _keep_alive(self) -> None:
        while not self.conn.closed:
            await asyncio.sleep(KEEPALIVE_CHECK)
            if self.pings and time.monotonic() - self.conn.last_sent >= KEEPALIVE_IDLE:
                self.conn.send_frame(_PING_FRAME, "ping")

    def _deadline(self) -> None:
        reason = f"no document authenticated within {self.settings.auth_timeout:g} s"
        log.info("%s: closing with 4401: %s", self.conn.id, reason)
        self.conn.close(CloseCode.UNAUTHORIZED, reason)

    def close(self) -> None:
        """The socket is gone: leave every document."""
        self._keepalive.cancel()
        for timer in self._timers:
            timer.cancel()
        self.awareness.close()
        for channel in list(self.channels.values()):
            self._forget(channel)


async def hocuspocus_socket(request: web.Request) -> web.StreamResponse:
    return await serve_socket(request, HocuspocusSocket, "hocuspocus",
                              request.app[TRAFFIC].hocuspocus, partial(_serve, request),
                              in_band_auth=True)


async def _serve(request: web.Request, conn: HocuspocusSocket,
                 unauthenticated: Unauthenticated | None) -> None:
    """One Hocuspocus socket, to its end."""
    limit = RateLimit(request.app[SETTINGS])
    session = Session(conn, request, unauthenticated, limit)
    del request  # the session keeps it if an auth hook may need it
    try:
        async for msg in conn.ws:
            if msg.type is WSMsgType.BINARY:
                if await refused(limit, conn, len(msg.data)):
                    break
                await session.receive(msg.data)
            elif msg.type is WSMsgType.TEXT:
                await session.refuse(UnsupportedMessage(
                    "text frames are not part of the Hocuspocus protocol"), len(msg.data))
            if conn.closed:
                break
            if unauthenticated is not None and unauthenticated.waiting:
                unauthenticated.read_one_more()  # no document yet: the next message
    finally:
        session.close()


def upgrade_or(page: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
    """A handler for `/`: a WebSocket upgrade speaks Hocuspocus (so a provider's `url`
    is just the server's address), any other GET is `page`."""
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
            return await hocuspocus_socket(request)
        return await page(request)
    return handler
