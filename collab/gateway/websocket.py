"""An open WebSocket, served by collab itself once aiohttp has done the handshake.

aiohttp keeps a WebSocket inside the request that opened it: the parsed request
head, the request handler with its parser and queue, the connection's task and the
request's, every middleware's frame and the WebSocketResponse all stay in memory
as long as the socket is open (about 8 KiB of a quiet socket, bench/README.md).
`detach` takes the connection over right after the 101: its frames go on being
parsed by the reader aiohttp set up (the C one) into the same queue, but through
`WebSocket`, the connection's protocol from then on, and aiohttp lets the
connection go as if the peer had left. Frames are written straight to the
transport, as SocketPeer already did.

`WebSocket` has the part of WebSocketResponse's interface that the endpoints use,
with the same behaviour: `receive` (pings answered, pongs skipped, the peer's
close answered), iteration, `close` (bounded wait for the peer's close when
nothing else is reading), `closed`, `close_code`, `exception`. Keep-alive is
gateway/keepalive.py's, which reads `heard` and sets `pinged`.

aiohttp (3.14) has no public way to hand a connection over: `detach` uses five of
its private attributes, each named where it is used; tests/test_websocket.py
fails if one of them changes.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import EofStream, WSCloseCode, WSMessage, WSMsgType, web
from aiohttp._websocket.reader import WebSocketReader
from aiohttp.http import WebSocketError

CLOSED_MESSAGE = WSMessage(WSMsgType.CLOSED, None, None)
CLOSING_MESSAGE = WSMessage(WSMsgType.CLOSING, None, None)

#: Payload bytes a control frame (close, ping, pong) may carry (RFC 6455, 5.5).
CONTROL_PAYLOAD_MAX = 125


def control_frame(opcode: WSMsgType, payload: bytes) -> bytes:
    """A control frame as a server sends it: FIN set, unmasked."""
    payload = payload[:CONTROL_PAYLOAD_MAX]
    return bytes((0x80 | opcode, len(payload))) + payload


#: A ping with no payload (keep-alive).
PING_FRAME = control_frame(WSMsgType.PING, b"")


class WebSocket(asyncio.Protocol):
    """One open WebSocket: the connection's protocol (bytes in, parsed into `_queue`
    by `parser`) and the socket its endpoint reads and closes."""

    __slots__ = ("_close_code", "_close_timeout", "_close_wait", "_closed", "_closing",
                 "_exception", "_queue", "_reading_paused", "_waiting", "heard", "parser",
                 "pinged", "transport")

    def __init__(self, transport: asyncio.Transport, queue: Any, parser: Any,
                 close_timeout: float) -> None:
        """`queue` and `parser`: aiohttp's WebSocketDataQueue and WebSocketReader
        feeding it (`parser` may be replaced: gateway/preauth.py puts a reader in
        front of it, then one with another size limit)."""
        self.transport = transport
        self._queue = queue
        self.parser = parser
        self._close_timeout = close_timeout
        self._closed = False  # our close frame is sent, or the connection is gone
        self._closing = False  # the peer's close frame came (or the connection ended)
        self._close_code: int | None = None
        self._exception: BaseException | None = None
        self._waiting = False  # a receive() awaits the queue
        self._close_wait: asyncio.Future[None] | None = None
        self._reading_paused = False  # by the queue's flow control (it reads this name)
        #: Bytes came since the keep-alive's last round; it pinged and awaits them.
        self.heard = True
        self.pinged = False

    # -- the connection's protocol ---------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.heard = True
        # Its answer (the reader gave up, or read a close) needs nothing here: what
        # it found is in the queue, and receive() answers it.
        self.parser.feed_data(data)

    def eof_received(self) -> bool:
        self.parser.feed_eof()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._queue.feed_eof()

    def pause_reading(self) -> None:
        """The queue holds too much unread: stop reading the socket (its flow control)."""
        self._reading_paused = True
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self._reading_paused = False
        self.transport.resume_reading()

    # -- the socket --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_code(self) -> int | None:
        return self._close_code

    def exception(self) -> BaseException | None:
        return self._exception

    def new_reader(self, max_message_bytes: int) -> WebSocketReader:
        """A reader of aiohttp's own into this socket's queue, as ws.prepare sets one
        up (collab never negotiates compression), for messages up to `max_message_bytes`."""
        return WebSocketReader(self._queue, max_message_bytes, compress=False, decode_text=True)

    def ping(self) -> None:
        """Write a ping frame: the client's pong, or anything it sends, is its sign of life."""
        if not self.transport.is_closing():
            self.transport.write(PING_FRAME)

    def abort(self) -> None:
        """End the connection at once, without a close frame."""
        self._closed = True
        self._close_code = WSCloseCode.ABNORMAL_CLOSURE
        self.transport.abort()

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> WSMessage:
        msg = await self.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            raise StopAsyncIteration
        return msg

    async def receive(self) -> WSMessage:
        """The next text or binary message; CLOSE, CLOSING or CLOSED when it ends,
        ERROR (the socket then closed with the error's code) for bad input."""
        while True:
            if self._waiting:
                raise RuntimeError("concurrent call to receive() is not allowed")
            if self._closed:
                return CLOSED_MESSAGE
            if self._closing:
                return CLOSING_MESSAGE
            self._waiting = True
            try:
                msg = await self._queue.read()
            except EofStream:
                self._close_code = WSCloseCode.OK
                await self.close()
                return CLOSED_MESSAGE
            except WebSocketError as exc:
                self._close_code = exc.code
                await self.close(code=exc.code)
                return WSMessage(WSMsgType.ERROR, exc, None)
            except Exception as exc:
                self._exception = exc
                self._closing = True
                self._close_code = WSCloseCode.ABNORMAL_CLOSURE
                await self.close()
                return WSMessage(WSMsgType.ERROR, exc, None)
            finally:
                self._waiting = False
                if self._close_wait is not None and not self._close_wait.done():
                    self._close_wait.set_result(None)
            kind = msg.type
            if kind is WSMsgType.BINARY or kind is WSMsgType.TEXT:
                return msg
            if kind is WSMsgType.CLOSE:
                self._closing = True
                self._close_code = msg.data
                if not self._closed:
                    await self.close()  # answer it (the peer is about to hang up)
            elif kind is WSMsgType.CLOSING:
                self._closing = True
                self._close_code = WSCloseCode.OK
            elif kind is WSMsgType.PING:
                if not self.transport.is_closing():
                    self.transport.write(control_frame(WSMsgType.PONG, msg.data))
                continue
            elif kind is WSMsgType.PONG:
                continue
            return msg

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> bool:
        """Send a close frame with `code` and `message`, then end the connection: at
        once if the peer's close came already or a receive() is reading (it returns
        CLOSING), else once the peer's close comes (at most `close_timeout` s).
        False if it was closed already."""
        if self._closed:
            return False
        self._closed = True
        transport = self.transport
        if transport.is_closing():  # the peer is gone: nobody to tell
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            return True
        transport.write(control_frame(WSMsgType.CLOSE, code.to_bytes(2, "big") + message))
        if self._waiting:  # break the reading receive() out first
            self._close_wait = asyncio.get_running_loop().create_future()
            self._queue.feed_data(CLOSING_MESSAGE, 0)
            await self._close_wait
        if self._closing:
            transport.close()
            return True
        try:
            async with asyncio.timeout(self._close_timeout):
                while True:
                    msg = await self._queue.read()
                    if msg.type is WSMsgType.CLOSE:
                        self._close_code = msg.data
                        transport.close()
                        return True
        except asyncio.CancelledError:
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            transport.close()
            raise
        except Exception as exc:  # no answer in time, the connection ended, bad input
            self._exception = exc
            self._close_code = WSCloseCode.ABNORMAL_CLOSURE
            transport.close()
            return True


class Owner(Protocol):
    """What owns a connection's protocol in front of aiohttp (gateway/sockets.py's
    Guard, when collab's Listener accepted it): it hands the bytes on to `websocket`."""

    def upgraded(self, websocket: asyncio.Protocol) -> None: ...


def detach(request: web.Request, ws: web.WebSocketResponse, close_timeout: float,
           owner: Owner | None) -> WebSocket:
    """Take over the connection of `request`, just upgraded by `ws.prepare`: from now
    on its bytes go to the WebSocket returned (through `owner`, if the connection has
    one), and aiohttp has let it go. The handler then returns `ws`, which writes
    nothing more."""
    transport = request.transport
    handler = request.protocol  # aiohttp's RequestHandler
    assert transport is not None and handler is not None
    # What ws.prepare set up to read the socket (private: WebSocketResponse._reader,
    # its WebSocketDataQueue, and ._parser, the WebSocketReader feeding it).
    queue, parser = ws._reader, ws._parser
    sock = WebSocket(transport, queue, parser, close_timeout)
    queue._protocol = sock  # private, public in the C class: its flow control's target
    if owner is not None:
        owner.upgraded(sock)
    else:  # served by an aiohttp runner of the application's own
        transport.set_protocol(sock)
    # aiohttp lets the connection go as if the peer had left, but must neither close
    # the transport (it forgets it first) nor end the reader (private: the parser it
    # feeds, RequestHandler._payload_parser). Its task ends once the handler returns.
    handler.transport = None
    handler._payload_parser = None
    handler.connection_lost(None)
    ws._closed = True  # private: returned to aiohttp, it must not send a close frame
    return sock
