"""An actor system in the test process on a real SQLite file, stoppable and restartable:
for tests that drive actors directly, without a server process."""

from __future__ import annotations

from collab.cluster import client as redis_client
from collab.config import Settings
from collab.runtime import cluster
from collab.runtime.registry import Registry
from collab.runtime.system import ActorSystem
from collab.storage import open_store
from collab.storage.commit import GroupCommitter


class Runtime:
    def __init__(self, path, registry: Registry, idle_timeout: float = 30.0, *,
                 redis_url: str | None = None, lease_ttl: float = 10.0) -> None:
        self.path = path
        self.registry = registry
        self.redis_url = redis_url
        self.settings = Settings(database_url=f"sqlite:///{path}", idle_timeout=idle_timeout,
                                 lease_ttl=lease_ttl)

    async def start(self) -> ActorSystem:
        self.store = open_store(self.settings)
        await self.store.open()
        self.committer = GroupCommitter(self.store)
        self.committer.start()
        self.system = ActorSystem(self.settings, self.store, self.committer, self.registry)
        if self.redis_url is not None:  # one of several processes sharing the store
            self.redis = redis_client.connect(self.redis_url)
            await cluster.join(self.system, self.redis)
        self.system.timer_waker.start()
        return self.system

    async def stop(self) -> None:
        await self.system.stop_all()
        await cluster.leave(self.system)
        if self.redis_url is not None:
            await self.redis.aclose()
        await self.committer.close()
        await self.store.close()
