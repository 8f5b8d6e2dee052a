"""What every test module shares: the kind of each module (its pytest marker), real
server processes on port 0 with their own SQLite files, an in-process runtime, an
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
from collab.runtime.registry import Registry
from tests import inproc
from tests.serverproc import ServerProcess

#: The kind of every test module: its marker, so that `pytest -m unit` runs one kind.
#: unit     pure code in this process: decoders, codecs, auth, errors, commit logic
#: runtime  actors in this process on a real store (SQLite, Postgres, Redis)
#: server   real `collab serve` processes driven over HTTP and WebSockets, stock clients
#: fault    a fault injected under a real server (kill -9, a held lock, a full disk,
#:          Postgres or Redis cut), then what was acknowledged is counted
#: browser  the demo in headless Chromium
KINDS = {
    "unit": """test_auth test_awareness test_commit test_errors test_fanout test_fuzz_decoders
        test_hocuspocus_codec test_inspection test_msgpack_json test_python_client_units
        test_readme_figures test_registry test_restore
        test_text test_versions_book test_writes test_wsframe test_ydoc test_yupdate
        test_yvalues test_ywire""",
    "runtime": """test_actors test_document_actor test_fuzz_actors test_leases
        test_placement test_queues test_room test_runtime test_schedule test_store
        test_workflows""",
    "server": """test_actions test_actors_http test_admin_actors test_admin_permissions
        test_agent_example
        test_auth_gateway test_awareness_live test_backpressure test_cli test_cli_actors
        test_cli_docs
        test_client_js test_client_js_package test_cluster_clients test_deploy test_docs_api
        test_docs_examples
        test_docs_manage test_docs_versions test_document_lifecycle test_drain
        test_fuzz_endpoint test_fuzz_http test_fuzz_writes test_hibernation
        test_hibernation_clients test_hocuspocus
        test_http_body
        test_inband_auth
        test_interop_node test_interop_pycrdt test_limits test_logs test_memory_budget
        test_memory_budget_clients
        test_metrics test_native
        test_native_fuzz test_preauth test_protocol_doc test_python_client test_ratelimit
        test_readme_yjs_clients test_readyz test_reconnect_storm test_revocations
        test_room_limits test_rooms_live test_room_watches test_server_edits test_sockets
        test_webhooks test_websocket test_workers test_yjs_endpoint""",
    "fault": """test_cluster test_durability test_fault_first_load test_fault_holes
        test_fault_postgres test_fault_reload test_postgres_server""",
    "browser": "test_demo test_demo_agent test_demo_tiptap",
}
KIND_OF = {module: kind for kind, modules in KINDS.items() for module in modules.split()}


def pytest_configure(config):
    for kind in KINDS:
        config.addinivalue_line("markers", f"{kind}: a test of kind {kind} (tests/conftest.py)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        kind = KIND_OF.get(module)
        if kind is None:
            raise pytest.UsageError(f"tests/{module}.py has no kind: add it to KINDS in "
                                    "tests/conftest.py")
        item.add_marker(kind)

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
def actor_registry() -> Registry:
    """The actor types of the `runtime` fixture; a module overrides it with its own."""
    from tests.apps.counter import registry

    return registry


@pytest.fixture
def actor_idle_timeout() -> float:
    """Seconds before an idle actor of the `runtime` fixture hibernates (short, so that
    tests see hibernation); a module overrides it to keep actors loaded."""
    return 0.2


@pytest.fixture
async def runtime_factory(tmp_path):
    """`runtime_factory(registry, name, ...)`: an in-process runtime on its own SQLite
    file (tests/inproc.py), not started; every one still running is stopped at teardown."""
    made: list[inproc.Runtime] = []

    def make(registry: Registry, name: str = "actors", **settings) -> inproc.Runtime:
        rt = inproc.Runtime(tmp_path / f"{name}.db", registry, **settings)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        await rt.stop()


@pytest.fixture
async def runtime(runtime_factory, actor_registry, actor_idle_timeout) -> inproc.Runtime:
    """A started in-process runtime serving `actor_registry`."""
    rt = runtime_factory(actor_registry, idle_timeout=actor_idle_timeout)
    await rt.start()
    return rt


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
