"""CollabClient: one WebSocket to collab's `/ws`, shared by every document, room and
actor handle made from it, as client-js's CollabClient.

It owns the connection (connection.py) and routes what arrives to its targets;
the targets own what must happen on each new socket (subscribe, connect, catch
up). A target has `_on_connected()` (a socket opened), `_on_disconnected()` (it
dropped) and `_on_client_closed()` (the client is closed for good): SyncedDoc,
ActorHandle and Room.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pycrdt

from collab.client.actor import ActorHandle
from collab.client.backoff import BASE_DELAY, MAX_DELAY
from collab.client.connection import (
    CONNECT_TIMEOUT,
    CloseInfo,
    Connection,
    Status,
    TokenTransport,
)
from collab.client.doc import SyncedDoc
from collab.client.emitter import Changes, Emitter
from collab.client.errors import CollabError, closed_error
from collab.client.names import check_name
from collab.client.outbox import Outbox
from collab.client.room import Room
from collab.client.tokens import TokenFunction, TokenSource

TOKEN_TRANSPORTS = ("message", "query")


class CollabClient(Emitter):
    """A connection to a collab server's native endpoint, reconnecting until closed.

    Events (`on(name, callback)` or `stream(name)`): `status` (connecting,
    connected, disconnected), `close` (a CloseInfo per socket that ended) and
    `error` (what has no caller to raise to: a refused token, a failed token
    function, an actor that refused a connection, an unreadable frame).
    """

    def __init__(self, url: str, *, token: str | TokenFunction | None = None,
                 token_transport: TokenTransport = "message",
                 params: dict[str, str] | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT,
                 base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY,
                 session: aiohttp.ClientSession | None = None) -> None:
        """
        Args:
            url: the server's native endpoint, e.g. `ws://127.0.0.1:1234/ws`.
            token: credentials: a string, or a function (plain or async) returning
                one, called again only after the server refused it (close 4401).
            token_transport: `message` (the socket's first frame, out of URLs and
                logs) or `query` (the `token` query parameter).
            params: more query parameters for the socket URL.
            connect_timeout: seconds a socket may take to open and be accepted.
            base_delay, max_delay: the reconnect backoff bounds, in seconds.
            session: an aiohttp session to use (else the client makes and closes one).

        Nothing connects until the client is used (`async with`, `start()`, or the
        first `doc`, `room` or `actor`), since that needs a running event loop.
        """
        super().__init__()
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"the server URL must start with ws:// or wss:// (got {url!r})")
        if token_transport not in TOKEN_TRANSPORTS:
            raise ValueError(f"token_transport must be 'message' or 'query' "
                             f"(got {token_transport!r})")
        self.url = url
        self._connection = Connection(
            url, self, token=TokenSource(token), token_transport=token_transport,
            params=dict(params or {}), connect_timeout=connect_timeout,
            base_delay=base_delay, max_delay=max_delay, session=session)
        self._docs: dict[str, SyncedDoc] = {}
        self._actors: dict[tuple[str, str], ActorHandle] = {}
        self._closed = False
        self._changes = Changes()

    async def __aenter__(self) -> CollabClient:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the public API ----------------------------------------------------------------

    @property
    def status(self) -> Status:
        return self._connection.status

    def start(self) -> None:
        """Begin connecting; the client then reconnects by itself until `close()`."""
        self._check_usable()
        self._connection.start()

    async def wait_connected(self) -> None:
        """Wait until a socket is open and accepted (raises `closed` if the client
        is closed first). Bound it with `asyncio.timeout` if the server may be down."""
        self.start()
        await self._changes.until(self._connected_or_closed)

    async def doc(self, name: str, ydoc: pycrdt.Doc | None = None, *,
                  wait: bool = True) -> SyncedDoc:
        """Share `ydoc` (a new pycrdt Doc if None) as the server document `name`.

        With `wait` (the default), returns once the doc holds what the server has
        (the first sync); raises CollabError if the server refuses the document
        (`forbidden`, `invalid_name`, ...). One SyncedDoc per name per client: close
        it before opening the name again.
        """
        self._check_usable()
        check_name(name, "document name")
        if name in self._docs:
            raise ValueError(f"document {name!r} is already open on this client; "
                             "close its SyncedDoc first")
        self.start()
        doc = SyncedDoc(self, name, pycrdt.Doc() if ydoc is None else ydoc)
        self._docs[name] = doc
        if self._connection.is_open:
            doc._on_connected()
        if wait:
            try:
                await doc.wait_first_sync()
            except BaseException:
                await doc.close()
                raise
        return doc

    async def room(self, name: str, user: str | None = None, *, wait: bool = True) -> Room:
        """Join the chat room `name` as `user` (with auth on, leave it out: the
        user is the token's). With `wait`, returns once joined; raises CollabError
        if the room refuses (`invalid_user`, `forbidden`)."""
        room = self._add_actor(Room(self, name, user=user))
        if wait:
            await room.ready()
        return room

    def actor(self, type: str, key: str, *, params: dict[str, Any] | None = None,
              connect: bool = True) -> ActorHandle:
        """A handle on the actor `type`/`key`. With `connect` (the default) this
        socket connects to it at once and again after every reconnect, with
        `params`, so the handle receives its events; calls wait for that
        connection. With `connect=False` calls go without a connection (no events).
        """
        return self._add_actor(ActorHandle(self, type, key, params=params or {},
                                           connect=connect))

    async def close(self) -> None:
        """Close for good: documents stop syncing, rooms and actors are left,
        pending requests fail with code `closed`, no more reconnects."""
        if self._closed:
            return
        self._closed = True
        for target in [*self._docs.values(), *self._actors.values()]:
            target._on_client_closed()
        self._docs.clear()
        self._actors.clear()
        await self._connection.close()
        self._changes.notify()
        self._end_events()

    # -- for documents and handles ---------------------------------------------------

    def _is_open(self) -> bool:
        return self._connection.is_open

    def _request(self, message: dict[str, Any]) -> asyncio.Future[Any]:
        return self._connection.request(message)

    def _notify(self, message: dict[str, Any]) -> None:
        self._connection.notify(message)

    def _outbox(self) -> Outbox:
        return Outbox(self._connection)

    def _retry_delay(self, attempt: int) -> float:
        return self._connection.retry_delay(attempt)

    def _forget_doc(self, doc: SyncedDoc) -> None:
        if self._docs.get(doc.name) is doc:
            del self._docs[doc.name]

    def _forget_actor(self, handle: ActorHandle) -> None:
        if self._actors.get((handle.type, handle.key)) is handle:
            del self._actors[handle.type, handle.key]

    # -- from the connection (connection.Handler) --------------------------------------

    def _on_socket_open(self) -> None:
        for target in [*self._docs.values(), *self._actors.values()]:
            target._on_connected()

    def _on_socket_closed(self) -> None:
        for target in [*self._docs.values(), *self._actors.values()]:
            target._on_disconnected()

    def _on_event(self, message: dict[str, Any]) -> None:
        kind = message.get("event")
        if kind in ("doc.update", "doc.awareness", "doc.deleted"):
            doc = self._docs.get(message.get("doc"))  # type: ignore[arg-type]
            if doc is None:
                return
            if kind == "doc.update":
                doc._receive_update(message.get("update"))
            elif kind == "doc.awareness":
                doc._receive_awareness(message.get("update"))
            else:
                doc._receive_deleted(message.get("epoch"))
        elif kind == "actor.event":
            handle = self._actors.get((message.get("actor"), message.get("key")))  # type: ignore[arg-type]
            if handle is not None:
                handle._receive_event(message.get("name"), message.get("data"))
        # Events this client does not know (from a newer server) are ignored.

    def _on_status(self, status: Status) -> None:
        self._changes.notify()
        self._emit("status", status)

    def _on_close(self, info: CloseInfo) -> None:
        self._emit("close", info)

    def _report(self, error: BaseException) -> None:
        self._emit("error", error)

    # -- helpers -----------------------------------------------------------------------

    def _connected_or_closed(self) -> bool:
        if self._closed:
            raise closed_error("the client")
        return self.status == "connected"

    def _check_usable(self) -> None:
        if self._closed:
            raise CollabError("closed", "this CollabClient is closed; create a new one")

    def _add_actor(self, handle: ActorHandle) -> Any:
        self._check_usable()
        ident = (handle.type, handle.key)
        if ident in self._actors:
            raise ValueError(f"{handle.type} {handle.key!r} is already open on this client; "
                             "disconnect its handle first")
        self.start()
        self._actors[ident] = handle
        if self._connection.is_open:
            handle._on_connected()
        return handle
