"""Requests for one target (an actor connection), held until the target is ready
to take them and sent in the order they were made.

An outbox is open while its target is usable on the current socket: an actor
handle opens its outbox once `actor.connect` has been answered, because the
server attributes a call to the connection only after that. While it is closed
(offline, reconnecting) requests wait here. Requests marked `resend` (room sends,
which the server deduplicates by client_id) come back here, in their original
order, when the socket drops before their answer or the server asks to retry
later; all others fail then. The same design as client-js's outbox.js.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collab.client.errors import CollabError

if TYPE_CHECKING:
    from collab.client.connection import Connection

#: Seconds an outbox sends nothing after the server answered `rate_limited` or a
#: passing outage (a room allows bursts of 20 sends, then 10 per second).
RETRY_PAUSE = 1.0


@dataclass(eq=False)
class Entry:
    """One request waiting for its answer: `message` has no id yet (each socket
    gives it a fresh one); `future` gets the result or a CollabError."""

    message: dict[str, Any]
    future: asyncio.Future[Any]
    resend: bool = False
    order: int = 0
    #: The socket's auth message: its answer admits the socket, nobody awaits it.
    auth: bool = False


class Outbox:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._waiting: list[Entry] = []
        self._next_order = 0
        self._open = False
        self._pause: asyncio.TimerHandle | None = None
        self._disposed_with: CollabError | None = None

    @property
    def disposed(self) -> bool:
        return self._disposed_with is not None

    def request(self, message: dict[str, Any], *, resend: bool = False) -> asyncio.Future[Any]:
        """Send `message` (a request without its id) when the target is ready; the
        future gets its result, or a CollabError."""
        future = asyncio.get_running_loop().create_future()
        if self._disposed_with is not None:
            future.set_exception(self._disposed_with)
            return future
        self._waiting.append(Entry(message, future, resend, self._next_order))
        self._next_order += 1
        self.flush()
        return future

    def open(self) -> None:
        self._open = True
        self.flush()

    def close(self) -> None:
        self._open = False

    def flush(self) -> None:
        while (self._open and self._pause is None and self._waiting
               and self._connection.is_open):
            entry = self._waiting.pop(0)
            if not entry.future.done():  # not given up on by its caller (cancelled)
                self._connection.transmit(entry, self)

    def requeue(self, entries: list[Entry]) -> None:
        """Take back requests that must be sent again, keeping the order they were
        made in."""
        self._waiting.extend(entries)
        self._waiting.sort(key=lambda entry: entry.order)

    def retry_later(self, entries: list[Entry]) -> None:
        """Take back `entries` and send nothing for RETRY_PAUSE (the server asked us
        to slow down, or had a passing outage)."""
        self.requeue(entries)
        if self._pause is None:
            self._pause = asyncio.get_running_loop().call_later(RETRY_PAUSE, self._unpause)

    def _unpause(self) -> None:
        self._pause = None
        self.flush()

    def dispose(self, error: CollabError) -> None:
        """Fail everything waiting, and every later request, with `error`."""
        self._disposed_with = error
        self._open = False
        if self._pause is not None:
            self._pause.cancel()
            self._pause = None
        waiting, self._waiting = self._waiting, []
        for entry in waiting:
            if not entry.future.done():
                entry.future.set_exception(error)
