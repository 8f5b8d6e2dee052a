"""Events of a client, document or actor handle, two ways: callbacks (`on`) and
async iterators (`stream`), plus `Changes`, a wake-up for code waiting until a
condition on the handle's state holds.

A callback may be a plain function or a coroutine function (run as a task). One
that raises is logged and does not stop the others. A stream buffers what it
has not read yet and ends when its handle is closed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

log = logging.getLogger("collab.client")

Callback = Callable[..., Any]


class Event(NamedTuple):
    """One event of a stream opened on several names: its name and its value."""

    name: str
    data: Any


class Emitter:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Callback]] = {}
        self._streams: list[EventStream] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, name: str, callback: Callback) -> Callable[[], None]:
        """Call `callback(value)` on every `name` event; returns a function that
        stops it."""
        self._listeners.setdefault(name, []).append(callback)

        def off() -> None:
            listeners = self._listeners.get(name, [])
            if callback in listeners:
                listeners.remove(callback)
        return off

    def stream(self, *names: str, named: bool = False) -> EventStream:
        """An async iterator over the events `names` (every event if none), from now
        on: their values, or with `named`, `Event(name, value)` pairs. It ends when
        the handle closes; `async with` (or `close()`) stops it earlier."""
        stream = EventStream(self, frozenset(names), named)
        self._streams.append(stream)
        return stream

    def _emit(self, name: str, value: Any = None) -> None:
        for stream in self._streams:
            stream._offer(name, value)
        listeners = list(self._listeners.get(name, ()))
        if not listeners and name == "error":
            log.warning("collab client error (no 'error' listener): %s", value)
        for callback in listeners:
            try:
                result = callback(value)
                if inspect.isawaitable(result):
                    self._spawn(result).add_done_callback(self._callback_done)
            except Exception:
                log.exception("a %r listener failed", name)

    def _spawn(self, awaitable: Any) -> asyncio.Task[Any]:
        """Run `awaitable` as a task this object keeps a reference to until it ends
        (the event loop alone keeps only weak ones)."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("a listener failed", exc_info=task.exception())

    def _end_events(self) -> None:
        """The handle is closed: streams end once drained, callbacks are dropped."""
        for stream in self._streams:
            stream._end()
        self._streams.clear()
        self._listeners.clear()

    def _forget_stream(self, stream: EventStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)


class EventStream:
    """Made by `Emitter.stream`: `async for value in stream`."""

    def __init__(self, emitter: Emitter, names: frozenset[str], named: bool) -> None:
        self._emitter = emitter
        self._names = names
        self._named = named
        self._buffer: deque[Any] = deque()
        self._ended = False
        self._wakeup = Changes()

    def _offer(self, name: str, value: Any) -> None:
        if not self._ended and (not self._names or name in self._names):
            self._buffer.append(Event(name, value) if self._named else value)
            self._wakeup.notify()

    def _end(self) -> None:
        self._ended = True
        self._wakeup.notify()

    def close(self) -> None:
        """Stop receiving; what was buffered is dropped."""
        self._end()
        self._buffer.clear()
        self._emitter._forget_stream(self)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Any:
        await self._wakeup.until(lambda: self._buffer or self._ended)
        if self._buffer:
            return self._buffer.popleft()
        raise StopAsyncIteration

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Changes:
    """Something changed: code waiting in `until(check)` looks again. Every waiter
    rechecks on every change, so a condition can combine any state."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def until(self, check: Callable[[], Any]) -> Any:
        """Wait until `check()` is truthy; returns its value. `check` may raise to
        stop waiting with an error."""
        while not (result := check()):
            if self._event is None:
                self._event = asyncio.Event()
            await self._event.wait()
        return result
