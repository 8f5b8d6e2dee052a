"""One process's runtime, assembled: its store, group commit, actor system and, with a
Redis URL, its place among several processes. The server (gateway/app.py) and the
tests start and stop it the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collab.config import Settings
from collab.runtime.budget import MemoryBudget
from collab.runtime.registry import Registry
from collab.runtime.system import ActorSystem
from collab.storage import open_store
from collab.storage.base import Store
from collab.storage.commit import CommitObserver, GroupCommitter

if TYPE_CHECKING:
    from collab.cluster.membership import Cluster


class Runtime:
    """`await start()` opens everything in order; `await stop()` saves every actor and
    closes everything in reverse. Between the two, `system` takes requests."""

    def __init__(self, settings: Settings, registry: Registry | None = None, *,
                 on_commit: CommitObserver | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.on_commit = on_commit
        self.store: Store
        self.committer: GroupCommitter
        self.system: ActorSystem
        #: This process's place among several (None when it is alone).
        self.cluster: Cluster | None = None

    async def start(self) -> ActorSystem:
        self.store = open_store(self.settings)
        await self.store.open()
        self.committer = GroupCommitter(self.store, on_commit=self.on_commit)
        self.committer.start()
        self.system = ActorSystem(self.settings, self.store, self.committer, self.registry)
        if self.settings.redis_url:  # one of several processes sharing the store
            # Imported only here: the Redis client is 7 MiB of a process that runs alone.
            from collab.cluster import client as redis_client
            from collab.cluster.membership import Cluster

            redis = redis_client.connect(self.settings.redis_url,
                                         verify_tls=self.settings.redis_verify_tls)
            namespace = redis_client.namespace(self.settings.redis_url,
                                               self.settings.redis_prefix)
            self.cluster = await Cluster.join(self.system, redis, namespace)
        if self.settings.memory_budget:  # before any actor loads: it counts them all
            self.system.budget = MemoryBudget(self.system, self.settings.memory_budget)
            self.system.budget.start()
        self.system.timer_waker.start()
        return self.system

    async def stop(self) -> None:
        if self.system.budget is not None:
            await self.system.budget.stop()
        await self.system.stop_all("shutdown")
        if self.cluster is not None:
            await self.cluster.leave()
            await self.cluster.redis.aclose()
            self.cluster = None
        await self.committer.close()
        await self.store.close()
