"""An actor system in the test process on a real SQLite file, stoppable and restartable:
for tests that drive actors directly, without a server process. It is the runtime
the server assembles (collab/assembly.py), with test-sized settings."""

from __future__ import annotations

from collab import assembly
from collab.config import Settings
from collab.runtime.registry import Registry


class Runtime(assembly.Runtime):
    def __init__(self, path, registry: Registry, idle_timeout: float = 30.0, *,
                 redis_url: str | None = None, lease_ttl: float = 10.0) -> None:
        super().__init__(Settings(database_url=f"sqlite:///{path}", idle_timeout=idle_timeout,
                                  lease_ttl=lease_ttl, redis_url=redis_url), registry)
        self.path = path
