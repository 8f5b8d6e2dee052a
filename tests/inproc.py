"""An actor system in the test process on a real SQLite file, stoppable and restartable:
for tests that drive actors directly, without a server process. It is the runtime
the server assembles (collab/assembly.py), with test-sized settings."""

from __future__ import annotations

from collab import assembly
from collab.config import Settings
from collab.runtime.registry import Registry


class Runtime(assembly.Runtime):
    def __init__(self, path, registry: Registry | None, **settings) -> None:
        """`settings`: any of Settings' fields (idle_timeout, redis_url, compact_rows,
        ...); the rest keep their defaults."""
        super().__init__(Settings(database_url=f"sqlite:///{path}", **settings), registry)
        self.path = path
        self.running = False

    async def start(self):
        system = await super().start()
        self.running = True
        return system

    async def stop(self) -> None:
        """Stop, if running (a test may stop it itself, to restart it)."""
        if self.running:
            self.running = False
            await super().stop()
