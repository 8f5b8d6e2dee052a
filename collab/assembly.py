"""One process's runtime, assembled: its store, group commit, actor system and, with a
Redis URL, its place among several processes. The server (gateway/app.py) and the
tests start and stop it the same way."""

from __future__ import annotations

from collab.cluster import client as redis_client
from collab.config import Settings
from collab.runtime import cluster
from collab.runtime.registry import Registry
from collab.runtime.system import ActorSystem
from collab.storage import open_store
from collab.storage.base import Store
from collab.storage.commit import CommitObserver, GroupCommitter


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
        self._redis = None

    async def start(self) -> ActorSystem:
        self.store = open_store(self.settings)
        await self.store.open()
        self.committer = GroupCommitter(self.store, on_commit=self.on_commit)
        self.committer.start()
        self.system = ActorSystem(self.settings, self.store, self.committer, self.registry)
        if self.settings.redis_url:  # one of several processes sharing the store
            self._redis = redis_client.connect(self.settings.redis_url,
                                               verify_tls=self.settings.redis_verify_tls)
            await cluster.join(self.system, self._redis)
        self.system.timer_waker.start()
        return self.system

    async def stop(self) -> None:
        await self.system.stop_all("shutdown")
        await cluster.leave(self.system)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        await self.committer.close()
        await self.store.close()
