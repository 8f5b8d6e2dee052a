"""The socket under a CollabClient: opening it (with the token), request ids and
their answers, and reconnecting with backoff until the client is closed.

One socket at a time. Each gets a fresh id counter and a writer task fed by a
queue, so requests made from synchronous code (a pycrdt observer) go out in the
order they were made. Frames are routed to the `Handler` (the client): events,
failed notifications, and the socket's life (opened, admitted, closed).
Credentials go in the socket's first message (`{"op": "auth", "token"}`,
docs/protocol.md section 1), pipelined with whatever the targets send next, or in
the `token` query parameter.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp
from yarl import URL

from collab.client.backoff import backoff_delay
from collab.client.errors import DISCONNECTED, CollabError, closed_error
from collab.client.frames import decode_message, encode_message
from collab.client.outbox import Entry, Outbox
from collab.client.tokens import TokenSource

Status = Literal["connecting", "connected", "disconnected"]
TokenTransport = Literal["message", "query"]

#: The server refused the token, or it expired: ask the token function again.
CLOSE_UNAUTHORIZED = 4401
#: Our own report for a socket that ended without a close frame (RFC 6455 7.4.1).
CLOSE_ABNORMAL = 1006
CLOSE_NORMAL = 1000
#: Error codes answering a refused auth message; the server closes the socket after them.
AUTH_REFUSALS = frozenset({"unauthorized", "forbidden"})
#: HTTP statuses refusing the upgrade, as the error codes the server's JSON body carries.
HANDSHAKE_REFUSALS = {401: "unauthorized", 403: "forbidden", 429: "too_many_connections"}
#: Bytes of the largest message we accept: a subscribe answer carries a whole
#: document, which the server allows up to 64 MiB (COLLAB_MAX_DOCUMENT_BYTES), plus
#: room for the envelope. aiohttp's own default (4 MiB) would drop big documents.
MAX_MESSAGE_BYTES = 80 * 1024 * 1024
#: Seconds between our pings: a socket whose server vanished without closing
#: (a dead NAT, a host gone) is noticed within 1.5 times this, not at a TCP timeout.
HEARTBEAT = 20.0
#: Seconds a socket may take to open and, with a token in the auth message, be
#: accepted, before it is abandoned and retried (client-js's connectTimeout).
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How one socket ended: the close code and reason (1006 when it broke or never
    came up), and whether it had opened."""

    code: int
    reason: str
    opened: bool


class Handler(Protocol):
    """What the connection tells the client."""

    def _on_socket_open(self) -> None: ...
    def _on_socket_closed(self) -> None: ...
    def _on_event(self, message: dict[str, Any]) -> None: ...
    def _on_status(self, status: Status) -> None: ...
    def _on_close(self, info: CloseInfo) -> None: ...
    def _report(self, error: BaseException) -> None: ...


class Connection:
    def __init__(self, url: str, handler: Handler, *, token: TokenSource,
                 token_transport: TokenTransport, params: dict[str, str],
                 connect_timeout: float, base_delay: float, max_delay: float,
                 session: aiohttp.ClientSession | None) -> None:
        self.url = URL(url)
        self._handler = handler
        self._token = token
        self._token_transport = token_transport
        self._params = params
        self._connect_timeout = connect_timeout
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._session = session
        self._own_session = session is None

        self.status: Status = "disconnected"
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._outgoing: asyncio.Queue[bytes] | None = None
        self._ids: Callable[[], int] = itertools.count(1).__next__
        #: Requests sent on the current socket and not answered yet, by id.
        self._in_flight: dict[int, tuple[Entry, Outbox | None]] = {}
        #: Consecutive connections that ended without the server answering anything.
        self._failed_attempts = 0
        self._abandoned = False
        #: Closes started from synchronous code, kept until they end.
        self._closing: set[asyncio.Task[Any]] = set()

    # -- for the client and its targets -------------------------------------------

    @property
    def is_open(self) -> bool:
        """Requests can be sent now: the socket is open (the server may still be
        checking its auth message; requests behind it wait on the server)."""
        return self._ws is not None and not self._ws.closed and not self._closed

    def start(self) -> None:
        """Begin connecting (and reconnecting, until `close`). Needs a running loop."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def request(self, message: dict[str, Any]) -> asyncio.Future[Any]:
        """Send `message` now; the future gets its result or a CollabError:
        `disconnected` at once when there is no socket, or if it drops first."""
        future = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(closed_error("the client"))
        elif not self.is_open:
            future.set_exception(CollabError(DISCONNECTED, "not connected to the server"))
        else:
            self.transmit(Entry(message, future), None)
        return future

    def notify(self, message: dict[str, Any]) -> None:
        """Send a message that expects no answer (only failures are answered);
        dropped when offline."""
        if self.is_open and self._outgoing is not None:
            self._outgoing.put_nowait(encode_message(message))

    def transmit(self, entry: Entry, outbox: Outbox | None) -> None:
        """Send one request on the open socket, under a fresh id. A message
        MessagePack cannot carry fails its entry at once (TypeError)."""
        assert self._outgoing is not None
        request_id = self._ids()
        try:
            frame = encode_message({"id": request_id, **entry.message})
        except (TypeError, ValueError) as exc:
            if not entry.future.done():
                entry.future.set_exception(exc)
            return
        self._in_flight[request_id] = (entry, outbox)
        self._outgoing.put_nowait(frame)

    def retry_delay(self, attempt: int) -> float:
        """Seconds before retry number `attempt` of anything (the client's bounds)."""
        return backoff_delay(attempt, self._base_delay, self._max_delay)

    async def close(self) -> None:
        """Close for good: pending requests fail with `closed`, no more reconnects."""
        if self._closed:
            return
        self._closed = True
        self._fail_in_flight(closed_error("the client"), resend=False)
        ws, task = self._ws, self._task
        if ws is not None:
            with contextlib.suppress(Exception):  # closing a broken socket may fail: it is gone
                await ws.close(code=CLOSE_NORMAL, message=b"client closed")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_session and self._session is not None:
            await self._session.close()
        self._set_status("disconnected")

    # -- the connection loop ---------------------------------------------------------

    async def _run(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        while not self._closed:
            await self._connect_once()
            if self._closed:
                return
            # The count resets whenever a server answers, so the first retry after
            # a working socket dropped (a 1012 restart) comes within base_delay.
            await asyncio.sleep(self.retry_delay(self._failed_attempts))
            self._failed_attempts += 1

    async def _connect_once(self) -> None:
        """One socket, from opening to its end (reported to the handler)."""
        self._set_status("connecting")
        try:
            token = await self._token.get()
        except Exception as exc:  # the application's token function failed: retry later
            self._handler._report(exc)
            self._set_status("disconnected")
            return
        ws = await self._open(token if self._token_transport == "query" else None)
        if ws is None:
            return
        self._ws, self._outgoing, self._abandoned = ws, asyncio.Queue(), False
        self._ids = itertools.count(1).__next__
        writer = asyncio.get_running_loop().create_task(self._write(ws, self._outgoing))
        timer = asyncio.get_running_loop().call_later(self._connect_timeout, self._abandon, ws)
        try:
            if token is not None and self._token_transport == "message":
                ignored = asyncio.get_running_loop().create_future()
                self.transmit(Entry({"op": "auth", "token": token}, ignored, auth=True), None)
            else:
                self._admitted()
            self._handler._on_socket_open()
            code, reason = await self._read(ws)
        finally:
            timer.cancel()
            writer.cancel()
        if self._closed:
            return
        self._ws, self._outgoing = None, None
        self._fail_in_flight(CollabError(
            DISCONNECTED, "the connection to the server was lost before the answer came"),
            resend=True)
        self._handler._on_socket_closed()
        if code == CLOSE_UNAUTHORIZED:
            self._token.invalidate()
        if self._abandoned:
            code, reason = CLOSE_ABNORMAL, "connect timeout"
        self._handler._on_close(CloseInfo(code, reason, True))
        self._set_status("disconnected")

    async def _open(self, query_token: str | None) -> aiohttp.ClientWebSocketResponse | None:
        """The upgraded socket, or None (reported as a close that never opened)."""
        url = self.url.update_query(self._params)
        if query_token is not None:
            url = url.update_query(token=query_token)
        assert self._session is not None
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await self._session.ws_connect(
                    url, autoping=True, heartbeat=HEARTBEAT, max_msg_size=MAX_MESSAGE_BYTES)
        except aiohttp.WSServerHandshakeError as exc:
            code = HANDSHAKE_REFUSALS.get(exc.status)
            if code is not None:
                if code == "unauthorized":
                    self._token.invalidate()
                self._handler._report(CollabError(
                    code, f"the server refused the connection (HTTP {exc.status})"))
            reason = f"HTTP {exc.status}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self._handler._on_close(CloseInfo(CLOSE_ABNORMAL, reason, False))
        self._set_status("disconnected")
        return None

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
        """Route frames until the socket ends; returns its close code and reason."""
        reason = ""
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.BINARY or msg.type is aiohttp.WSMsgType.TEXT:
                try:
                    self._on_frame(msg.data)
                except Exception as exc:
                    # A message of an unexpected shape (or a bug in a target) must
                    # not end the reader: the socket and every other target carry on.
                    self._handler._report(exc)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                reason = msg.extra or ""
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                              aiohttp.WSMsgType.ERROR):
                break
            if ws.closed:
                break
        return ws.close_code or CLOSE_ABNORMAL, str(reason)

    async def _write(self, ws: aiohttp.ClientWebSocketResponse,
                     outgoing: asyncio.Queue[bytes]) -> None:
        while True:
            frame = await outgoing.get()
            try:
                await ws.send_bytes(frame)
            except Exception:  # the socket broke under us: end it, the reader reports it
                with contextlib.suppress(Exception):
                    await ws.close()
                return

    def _abandon(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """The connect timeout passed before the server let the socket in (an auth
        answer that never came): give up on it so the backoff loop carries on."""
        if self._ws is ws and self.status == "connecting":
            self._abandoned = True
            self._close_later(ws)

    def _close_later(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        task = asyncio.get_running_loop().create_task(ws.close(code=CLOSE_NORMAL))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _admitted(self) -> None:
        self._set_status("connected")

    # -- frames ------------------------------------------------------------------------

    def _on_frame(self, data: bytes | str) -> None:
        try:
            message = decode_message(data)
        except CollabError as exc:
            self._handler._report(exc)
            return
        if "event" in message:
            self._handler._on_event(message)
        elif message.get("id") is None:
            # A notification (doc.awareness) failed: nobody awaits it.
            self._handler._report(CollabError.from_response(message.get("error")))
        else:
            self._on_response(message)

    def _on_response(self, message: dict[str, Any]) -> None:
        pending = self._in_flight.pop(message["id"], None)
        if pending is None:
            return
        entry, outbox = pending
        if entry.auth:
            self._on_auth_answer(message)
            return
        self._failed_attempts = 0  # a server answered: this connection works
        if message.get("ok") is True:
            if not entry.future.done():
                entry.future.set_result(message.get("result"))
            return
        error = CollabError.from_response(message.get("error"))
        retryable = error.code == "rate_limited" or error.transient
        if entry.resend and retryable and outbox is not None and not outbox.disposed:
            outbox.retry_later([entry])
        elif not entry.future.done():
            entry.future.set_exception(error)

    def _on_auth_answer(self, message: dict[str, Any]) -> None:
        """A refusal (`unauthorized`, or `forbidden` from the server's hook) is
        reported; the server closes the socket next (4401 / 4403)."""
        error = None if message.get("ok") is True else CollabError.from_response(
            message.get("error"))
        # already_authenticated: the socket was let in already (by a cookie the
        # server's hook accepted, say).
        if error is None or error.code == "already_authenticated":
            self._failed_attempts = 0
            self._admitted()
            return
        self._handler._report(error)
        if error.code not in AUTH_REFUSALS and self._ws is not None:
            # Not a refusal the server closes on (a server without auth messages):
            # give up on this socket ourselves.
            self._close_later(self._ws)

    def _fail_in_flight(self, error: CollabError, *, resend: bool) -> None:
        """The socket is gone: requests waiting for an answer get `error`, except
        resendable ones (with `resend`), which go back to their outbox."""
        in_flight, self._in_flight = self._in_flight, {}
        requeued: dict[Outbox, list[Entry]] = {}
        for entry, outbox in in_flight.values():
            if entry.auth:
                continue  # nobody awaits the auth message's answer
            if resend and entry.resend and outbox is not None and not outbox.disposed:
                requeued.setdefault(outbox, []).append(entry)
            elif not entry.future.done():
                entry.future.set_exception(error)
        for outbox, entries in requeued.items():
            outbox.requeue(entries)

    def _set_status(self, status: Status) -> None:
        if status == "connected" and self._closed:
            return
        if self.status != status:
            self.status = status
            self._handler._on_status(status)

