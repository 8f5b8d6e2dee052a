"""The process's Redis pub/sub: one subscriber connection for every channel, one
ordered publisher.

Everything a process sends to other processes (forwarded requests, answers,
an owner's broadcasts) goes through `publish`, which pipelines what queued up
in one loop turn onto one connection: messages leave in the order they were
published, which is what lets receivers number them and spot gaps. Incoming
messages are dispatched by channel to handlers. When Redis drops the
subscriber connection, it is opened again with capped, jittered exponential
backoff, every channel is subscribed again, and the `on_reconnect` callbacks
run (messages published meanwhile are lost: receivers resync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

log = logging.getLogger(__name__)

#: Seconds `start` waits for the first subscription before serving anyway.
START_TIMEOUT = 5.0
#: Longest pause between two attempts to resubscribe after Redis dropped us.
MAX_BACKOFF = 5.0
#: Seconds `stop` waits for the tasks it cancelled.
STOP_TIMEOUT = 2.0

Handler = Callable[[bytes], None]


class Bus:
    def __init__(self, redis: Redis, namespace: str = "collab") -> None:
        self.redis = redis
        #: The first part of every channel: one deployment's (cluster/client.py).
        self.namespace = namespace
        self._handlers: dict[str, Handler] = {}
        self._confirmed: dict[str, asyncio.Event] = {}
        self._pubsub: Any = None  # the live subscriber, while connected
        self._outbox: list[tuple[str, bytes, asyncio.Future[int] | None]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self._reconnect_callbacks: list[Callable[[], None]] = []
        self.connected = False
        #: Loop time the subscriber connection was lost, while it is.
        self.down_since: float | None = None
        self.published = 0
        self._stopping = False

    def channel(self, name: str) -> str:
        """Channel `name` of this deployment."""
        return f"{self.namespace}:{name}"

    def node_channel(self, node: str) -> str:
        """Where requests for process `node` go; subscribed while the process lives."""
        return self.channel(f"node:{node}")

    def actor_channel(self, kind: str, key: str) -> str:
        """Where the owner of actor (kind, key) publishes for the relays of other
        processes (cluster/fanout.py)."""
        return self.channel(f"actor:{kind}:{key}")

    async def start(self) -> None:
        """Start listening and publishing; waits (bounded) for the first subscription.
        Subscribe at least one channel first. Redis may still be down: then it keeps
        trying in the background."""
        self._tasks = [asyncio.create_task(self._listen(), name="bus-listen"),
                       asyncio.create_task(self._publish_forever(), name="bus-publish")]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_TIMEOUT):
                await self._ready.wait()

    async def stop(self) -> None:
        self._stopping = True  # redis-py may swallow a cancellation mid-command
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Run `callback` each time the subscriber connection is back after a loss."""
        self._reconnect_callbacks.append(callback)

    # -- subscribing ------------------------------------------------------------

    async def subscribe(self, channel: str, handler: Handler) -> None:
        """Deliver `channel`'s messages to `handler`; returns once Redis confirmed
        the subscription (or at once while Redis is away: it is made on reconnect)."""
        self._handlers[channel] = handler
        confirmed = self._confirmed[channel] = asyncio.Event()
        pubsub = self._pubsub
        if pubsub is None:
            return
        try:
            await pubsub.subscribe(channel)
            async with asyncio.timeout(START_TIMEOUT):
                await confirmed.wait()
        except Exception as exc:  # the listen loop subscribes again when it reconnects
            log.warning("could not subscribe to %s yet: %s", channel, exc)

    def unsubscribe(self, channel: str) -> None:
        self._handlers.pop(channel, None)
        self._confirmed.pop(channel, None)
        pubsub = self._pubsub
        if pubsub is not None:
            self._spawn(pubsub.unsubscribe(channel))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("bus command failed: %s", task.exception())

    async def _listen(self) -> None:
        failures = 0
        first = True
        while not self._stopping:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(*self._handlers)
                self._pubsub = pubsub
                self.connected = True
                self.down_since = None
                failures = 0
                self._ready.set()
                if not first:
                    log.info("Redis pub/sub is back: %d channels subscribed again",
                             len(self._handlers))
                    for callback in self._reconnect_callbacks:
                        try:
                            callback()
                        except Exception:
                            log.exception("reconnect callback failed")
                first = False
                async for item in pubsub.listen():
                    self._dispatch(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                delay = random.uniform(0, min(MAX_BACKOFF, 0.1 * 2 ** failures))
                log.warning("Redis pub/sub lost (%s); subscribing again in %.2f s", exc, delay)
                self._pubsub = None
                self.connected = False
                if self.down_since is None:
                    self.down_since = asyncio.get_running_loop().time()
                await asyncio.sleep(delay)
            finally:
                self._pubsub = None
                self.connected = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, item: dict[str, Any]) -> None:
        kind = item.get("type")
        channel = item.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        if kind == "message":
            handler = self._handlers.get(channel)
            if handler is None:
                return
            try:
                handler(item["data"])
            except Exception:
                log.exception("bad message on %s", channel)
        elif kind == "subscribe":
            confirmed = self._confirmed.get(channel)
            if confirmed is not None:
                confirmed.set()

    # -- publishing ---------------------------------------------------------------

    def publish(self, channel: str, payload: bytes, *, count: bool = False
                ) -> asyncio.Future[int] | None:
        """Queue `payload` for `channel`, after everything published before it. With
        `count`, returns a future of how many subscribers received it (0 on error)."""
        future = asyncio.get_running_loop().create_future() if count else None
        self._outbox.append((channel, payload, future))
        self._wake.set()
        return future

    async def _publish_forever(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            batch, self._outbox = self._outbox, []
            if not batch:
                continue
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for channel, payload, _ in batch:
                        pipe.publish(channel, payload)
                    counts = await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not publish %d messages: %s", len(batch), exc)
                counts = [0] * len(batch)
            self.published += len(batch)
            for (_, _, future), received in zip(batch, counts, strict=True):
                if future is not None and not future.done():
                    future.set_result(received if isinstance(received, int) else 0)

    # -- who listens ----------------------------------------------------------------

    async def listeners(self, channels: list[str]) -> dict[str, int]:
        """How many subscribers each channel has right now (PUBSUB NUMSUB)."""
        if not channels:
            return {}
        reply = await self.redis.pubsub_numsub(*channels)
        return {(name.decode() if isinstance(name, bytes) else name): count
                for name, count in reply}

    async def watch(self, interval: float, channels: Callable[[], set[str]],
                    gone: Callable[[str], None]) -> None:
        """Every `interval`, count the subscribers of `channels()`; call `gone(channel)`
        for one seen with none twice in a row (once could be a resubscribe in flight)."""
        empty_once: set[str] = set()
        while True:
            await asyncio.sleep(interval)
            wanted = sorted(channels())
            if not wanted or not self.connected:
                empty_once.clear()
                continue
            try:
                counts = await self.listeners(wanted)
            except Exception as exc:
                log.debug("cannot count subscribers: %s", exc)
                continue
            empty = {name for name, count in counts.items() if count == 0}
            for name in empty & empty_once:
                try:
                    gone(name)
                except Exception:
                    log.exception("watch callback failed for %s", name)
            empty_once = empty - empty_once
