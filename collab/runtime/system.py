"""The actor system: get-or-create by (kind, key), single-flight loading, stop-all.

At most one live instance exists per (kind, key) in this process. A new
instance created while its predecessor is still saving waits for it, so a
wake-up never reads the store before the last sleep has committed. It also
keeps the process-wide counts operators read (`loads`, `compactions`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, TypeVar

from collab.config import Settings
from collab.errors import ShuttingDown
from collab.runtime.mailbox import ActorBase, Stop
from collab.runtime.ownership import HERE, Ownership
from collab.runtime.registry import Registry
from collab.runtime.waker import TimerWaker
from collab.storage.base import Store
from collab.storage.commit import GroupCommitter

A = TypeVar("A", bound=ActorBase)


class ActorSystem:
    def __init__(self, settings: Settings, store: Store, committer: GroupCommitter,
                 registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry or Registry()
        self.store = store
        self.committer = committer
        self._live: dict[tuple[type[ActorBase], str], ActorBase] = {}
        self._stopping: dict[tuple[type[ActorBase], str], ActorBase] = {}
        #: Activations since start: every instance created, by a request or a due timer.
        self.loads = 0
        #: Document logs folded into snapshots since start.
        self.compactions = 0
        self.documents_deleted = 0  # incarnations ended (deleted or replaced)
        #: CRDTs unloaded while clients stayed connected, and loaded again since.
        self.documents_unloaded = 0
        self.documents_reloaded = 0
        self.versions_made = 0  # document versions stored: named, automatic, before restores
        self.restores = 0  # versions restored
        #: Awareness entries documents ignored since start, by reason: "foreign" (a
        #: client id another connection holds), "crowded" (past a document's bounds).
        self.awareness_ignored = {"foreign": 0, "crowded": 0}
        self.closing = False
        #: COLLAB_MEMORY_BUDGET's keeper (runtime/budget.py), when there is a budget.
        self.budget: Any = None
        self.timer_waker = TimerWaker(self)
        #: Where actors live: here, unless several processes share the store and
        #: collab/cluster plugged in its own (runtime/ownership.py).
        self.ownership = Ownership()

    def get(self, kind: type[A], key: str) -> A:
        """The live instance of (kind, key), created (and loading) if absent.
        Raises ShuttingDown once `stop_all` has begun."""
        ident = (kind, key)
        actor = self._live.get(ident)
        if actor is None:
            if self.closing:
                raise ShuttingDown("the server is shutting down")
            actor = kind(key, self, predecessor=self._stopping.get(ident))
            self._live[ident] = actor
            self.loads += 1
        return actor  # type: ignore[return-value]

    def live(self, kind: type[A], key: str) -> A | None:
        """The live instance of (kind, key) if it is loaded, without waking it."""
        return self._live.get((kind, key))  # type: ignore[return-value]

    def post(self, kind: type[A], key: str, message: Any) -> Any:
        """Deliver `message` to the live instance, creating it if needed; returns it.
        If another process owns the actor, the ownership layer carries the message
        there and this returns what it handed it to."""
        if (kind, key) not in self._live:
            elsewhere = self.ownership.route(kind, key, message)
            if elsewhere is not HERE:
                return elsewhere
        while True:
            actor = self.get(kind, key)
            if actor.post(message):
                return actor

    def present(self, kind: type[ActorBase], key: str) -> Any:
        """The live instance of (kind, key), or this process's stand-in for it when
        another process owns it, if any."""
        actor = self._live.get((kind, key))
        return actor if actor is not None else self.ownership.present(kind, key)

    def forget(self, actor: ActorBase) -> None:
        """Called by an actor that starts draining: new requests get a fresh instance."""
        ident = (type(actor), actor.key)
        if self._live.get(ident) is actor:
            del self._live[ident]
        self._stopping[ident] = actor

    def reap(self, actor: ActorBase) -> None:
        """Called by an actor once it has stopped: it no longer holds memory."""
        ident = (type(actor), actor.key)
        if self._stopping.get(ident) is actor:
            del self._stopping[ident]
        if self.budget is not None:
            self.budget.forget(actor)

    @property
    def loaded_count(self) -> int:
        """Instances in memory: live ones plus those still saving."""
        return len(self._live) + len(self._stopping)

    def loaded(self) -> Iterator[ActorBase]:
        """Every instance in memory (live or still saving), for reading counts; the
        caller must not await while iterating."""
        yield from self._live.values()
        yield from self._stopping.values()

    def refuse_new(self) -> None:
        """Create no actor from now on (ShuttingDown); the loaded ones carry on until
        `stop_all`. The first step of a graceful shutdown."""
        self.closing = True

    async def stop_all(self, reason: str = "shutdown") -> None:
        """Ask every actor to save and unload; returns when all have stopped.
        No actor is created after this starts."""
        self.closing = True
        await self.timer_waker.stop()
        actors = list(self._live.values()) + list(self._stopping.values())
        for actor in actors:
            actor.post(Stop(reason))
        await asyncio.gather(*(actor.wait_stopped() for actor in actors))
