"""Shared fixtures: real server processes on port 0 with their own SQLite files, an
HTTP client session, and Postgres schemas of their own for the Postgres tests."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest

from collab.config import redact_url
from tests.serverproc import ServerProcess

#: The Postgres the tests use (CI and this machine run one). Every test gets a
#: schema of its own in it and drops it afterwards.
TEST_DATABASE_URL = os.environ.get("COLLAB_TEST_DATABASE_URL",
                                   "postgresql://postgres@127.0.0.1:5432/test")
#: Seconds to wait for Postgres to accept a connection before the test fails.
PG_CONNECT_TIMEOUT = 10.0


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


def with_search_path(url: str, schema: str) -> str:
    """`url` with its sessions' search_path set to `schema` (libpq `options`)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["options"] = f"{query.get('options', '')} -csearch_path={schema}".strip()
    return urlunsplit(parts._replace(query=urlencode(query)))


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh schema in the test database; yields a URL whose sessions use it, and
    drops it with everything in it on exit. Fails the test if Postgres is down."""
    try:
        admin = await asyncpg.connect(TEST_DATABASE_URL, timeout=PG_CONNECT_TIMEOUT)
    except (OSError, asyncpg.PostgresError) as exc:
        admin, error = None, exc
    if admin is None:  # failed outside the `except`, so the report is this message alone
        pytest.fail(f"Postgres is not reachable at {redact_url(TEST_DATABASE_URL)} ({error}); "
                    "the Postgres tests need it: start it or set COLLAB_TEST_DATABASE_URL",
                    pytrace=False)
    schema = f"t_{secrets.token_hex(6)}"
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
        yield with_search_path(TEST_DATABASE_URL, schema)
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await admin.close()


@pytest.fixture
def pg_schema():
    """`async with pg_schema() as url:` a Postgres schema of the test's own."""
    return postgres_schema


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A Postgres URL whose schema is the test's own (dropped at teardown)."""
    async with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
async def store_url(request, tmp_path, pg_schema):
    """A store URL of the test's own, once for SQLite and once for Postgres."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/shared.db"
    else:
        async with pg_schema() as url:
            yield url
