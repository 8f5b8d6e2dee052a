"""ActorHandle: calls to one actor (type and key) and, when connected, its events
(docs/protocol.md section 6), as client-js's actor.js.

A connecting handle sends `actor.connect` as soon as a socket is open, and again
on every new socket. Calls wait in the handle's outbox until the connection is
made, because the server attributes a call to the connection (a room's author,
say) only once `actor.connect` has been answered. Calls made offline are sent
after the reconnect; calls in flight when the socket drops fail with code
`disconnected`, since whether they ran is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from collab.client.emitter import Emitter, EventStream
from collab.client.errors import CollabError, closed_error, lost_connection
from collab.client.names import check_actor_type, check_name

if TYPE_CHECKING:
    from collab.client.client import CollabClient


class ActorHandle(Emitter):
    """Made by `CollabClient.actor`. Events are the actor's own, by name:
    `on("changed", callback)`, or `async for event in handle.events()`."""

    def __init__(self, client: CollabClient, type: str, key: str, *,
                 params: dict[str, Any], connect: bool) -> None:
        super().__init__()
        check_actor_type(type)
        check_name(key, "actor key")
        if not isinstance(params, dict):
            raise TypeError("params must be a dict")
        self.client = client
        self.type = type
        self.key = key
        self.params = params
        self._connects = connect
        #: True while the current socket is connected to the actor.
        self.connected = False
        self._outbox = client._outbox()
        self._connect_run = 0
        self._connect_failures = 0
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Nobody has to await it: mark its failure as seen (it is also reported).
        self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def ready(self) -> None:
        """Wait until the first connection is made (at once for `connect=False`);
        raises the actor's refusal (e.g. `invalid_user`, `unknown_actor_type`),
        after which the handle is closed."""
        await asyncio.shield(self._ready)

    async def call(self, action: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run `action` with positional `args` and named `kwargs`; returns its result
        once the actor's state is committed. Raises CollabError with the server's
        code (`unknown_action`, `invalid_arguments`, the actor's own codes), or
        `disconnected` if the socket dropped before the answer."""
        if not isinstance(action, str) or not action:
            raise ValueError("action must be a non-empty string")
        message: dict[str, Any] = {"op": "actor.call", "actor": self.type, "key": self.key,
                                   "action": action, "args": list(args)}
        if kwargs:
            message["kwargs"] = kwargs
        return await self._outbox.request(message)

    async def enqueue(self, queue: str, message: Any) -> dict[str, Any]:
        """Append `message` to the actor's durable queue `queue`; returns `{"seq"}`
        once committed."""
        return await self._outbox.request({"op": "actor.queue", "actor": self.type,
                                           "key": self.key, "queue": queue,
                                           "message": message})

    def events(self, *names: str) -> EventStream:
        """The actor's events from now on (those named, or all), as `Event(name,
        data)`; the stream ends when the handle closes."""
        return self.stream(*names, named=True)

    async def disconnect(self) -> None:
        """End the connection (a `connect=False` handle just closes). Waiting calls
        fail with code `closed`; calls in flight still get their answers."""
        if self._closed:
            return
        was_connected = self.connected
        self._close(closed_error(f"{self.type} {self.key!r}"))
        if was_connected:
            await self._send_disconnect()

    # -- called by the client ------------------------------------------------------------

    def _on_connected(self) -> None:
        if self._connects:
            self._spawn(self._connect())
        else:
            self._outbox.open()
            if not self._ready.done():
                self._ready.set_result(None)

    def _on_disconnected(self) -> None:
        self._connect_run += 1
        self.connected = False
        self._outbox.close()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _on_client_closed(self) -> None:
        self._close(closed_error("the client"))

    def _receive_event(self, name: str, data: Any) -> None:
        self._emit(name, data)

    async def _after_connect(self) -> None:
        """Runs after each connection is made and before waiting calls are sent (a
        Room catches up on missed messages here). May raise `disconnected`; the
        next socket runs it again."""

    # -- connecting ------------------------------------------------------------------------

    async def _connect(self) -> None:
        run = self._connect_run = self._connect_run + 1
        error: CollabError | None = None
        try:
            await self.client._request({"op": "actor.connect", "actor": self.type,
                                        "key": self.key, "params": self.params})
        except CollabError as exc:
            # A connect that timed out on the server may have connected us after all.
            if exc.code != "already_connected":
                error = exc
        if self._closed and error is None:
            await self._send_disconnect()  # disconnect() came while connecting
            return
        if run != self._connect_run or self._closed:
            return
        if error is not None:
            if lost_connection(error):
                return  # the next socket tries again
            if error.transient:
                self._retry_connect_later()
            else:
                # Refused for good: waiting calls cannot succeed either.
                self.client._report(error)
                self._close(error)
            return
        self._connect_failures = 0
        self.connected = True
        try:
            await self._after_connect()
        except CollabError as exc:
            if run != self._connect_run or self._closed or lost_connection(exc):
                return
            self.client._report(exc)
        if run != self._connect_run or self._closed:
            return
        self._outbox.open()
        if not self._ready.done():
            self._ready.set_result(None)

    def _retry_connect_later(self) -> None:
        def retry() -> None:
            self._retry = None
            if self.client._is_open() and not self._closed:
                self._spawn(self._connect())

        delay = self.client._retry_delay(self._connect_failures)
        self._connect_failures += 1
        self._retry = asyncio.get_running_loop().call_later(delay, retry)

    async def _send_disconnect(self) -> None:
        # Not connected any more (the socket dropped): nothing left to end.
        with contextlib.suppress(CollabError):
            await self.client._request({"op": "actor.disconnect", "actor": self.type,
                                        "key": self.key})

    def _close(self, error: CollabError) -> None:
        self._closed = True
        self._connect_run += 1
        self.connected = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._outbox.dispose(error)
        if not self._ready.done():
            self._ready.set_exception(error)
        self.client._forget_actor(self)
        self._end_events()
