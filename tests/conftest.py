"""Shared fixtures: real server processes on port 0 with their own SQLite files, and
an HTTP client session."""

from __future__ import annotations

import aiohttp
import pytest

from tests.serverproc import ServerProcess


@pytest.fixture
def server_factory(tmp_path):
    """Start servers on demand; every one is stopped at teardown."""
    started: list[ServerProcess] = []

    def start(name: str = "collab", env: dict[str, str] | None = None, args: tuple = ()):
        proc = ServerProcess(tmp_path / f"{name}.db", env=env, args=args).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def server(server_factory):
    return server_factory()


@pytest.fixture
async def session():
    """An aiohttp client session for HTTP and WebSocket calls to test servers."""
    async with aiohttp.ClientSession() as s:
        yield s
