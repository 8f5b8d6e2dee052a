"""The `collab` command: address selection, flags over env, migrate, config errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import aiohttp
import pytest
from pycrdt import Doc, Text

from collab.config import ConfigError, Settings
from collab.storage.schema import LATEST_VERSION
from tests.serverproc import TIMEOUT, ServerProcess


def run_collab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", "DATABASE_URL")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "collab", *args], capture_output=True,
                          text=True, env=full_env, timeout=TIMEOUT)


def test_settings_defaults_and_heroku_port():
    assert Settings.from_env({}).host == "127.0.0.1"
    assert Settings.from_env({}).port == 1234
    heroku = Settings.from_env({"PORT": "5000"})
    assert (heroku.host, heroku.port) == ("0.0.0.0", 5000)
    assert Settings.from_env({"PORT": "5000", "HOST": "::1"}).host == "::1"
    assert Settings.from_env({"PORT": "5000"}, port=7000, host="127.0.0.2").port == 7000
    assert Settings.from_env({"DATABASE_URL": "sqlite:///x.db"}).database_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    "env",
    [{"PORT": "http"}, {"COLLAB_IDLE_TIMEOUT": "-1"}, {"COLLAB_SQLITE_SYNCHRONOUS": "SOMETIMES"},
     {"COLLAB_REDIS_PREFIX": "two words"}, {"COLLAB_REDIS_PREFIX": "x" * 65},
     {"COLLAB_DATABASE_POOL_SIZE": "0"}, {"COLLAB_EVENT_LOOP": "twisted"}],
)
def test_bad_settings_are_named(env):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert next(iter(env)).removeprefix("COLLAB_").lower().split("_")[0] in str(info.value).lower()


def test_serve_with_port_env_binds_every_interface(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "collab", "serve", "--database-url", f"sqlite:///{tmp_path}/p.db"],
        env={**__import__("os").environ, "PORT": "0"}, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("collab serving on http://0.0.0.0:")
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)


@pytest.mark.parametrize("choice, loop", [(None, "uvloop"), ("auto", "uvloop"),
                                          ("uvloop", "uvloop"), ("asyncio", "asyncio")])
async def test_serve_runs_on_the_event_loop_asked_for(tmp_path, choice, loop):
    srv = ServerProcess(tmp_path / "l.db")
    srv.env.pop("COLLAB_EVENT_LOOP", None)
    if choice is not None:
        srv.env["COLLAB_EVENT_LOOP"] = choice
    srv.start()
    try:
        assert srv.ready_line.endswith(f"event loop: {loop})"), srv.ready_line
        doc = Doc()
        doc["body"] = Text("on " + loop)
        async with aiohttp.ClientSession() as session:  # and it serves: a write, a read
            resp = await session.post(f"{srv.http_url}/api/docs/loop/update",
                                      data=doc.get_update())
            assert (await resp.json())["committed"] is True
            resp = await session.get(f"{srv.http_url}/api/docs/loop?format=json&text=body")
            assert (await resp.json())["text"]["body"] == "on " + loop
    finally:
        assert srv.stop() == 0


def test_flag_wins_over_env(tmp_path):
    srv = ServerProcess(tmp_path / "f.db", env={"DATABASE_URL": "sqlite:////nonexistent/x.db",
                                                "HOST": "0.0.0.0"}).start()
    try:
        assert (tmp_path / "f.db").exists()
    finally:
        assert srv.stop() == 0


def test_migrate_creates_versioned_schema(tmp_path):
    db = tmp_path / "m.db"
    result = run_collab("migrate", "--database-url", f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    assert f"version {LATEST_VERSION}" in result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT MAX(version) FROM collab_schema").fetchone()[0] \
            == LATEST_VERSION
    again = run_collab("migrate", env={"DATABASE_URL": f"sqlite:///{db}"})
    assert again.returncode == 0 and f"version {LATEST_VERSION}" in again.stdout


def test_config_error_exit_code():
    result = run_collab("serve", env={"PORT": "not-a-port"})
    assert result.returncode == 2 and "PORT" in result.stderr


def test_unsupported_database_url():
    result = run_collab("migrate", "--database-url", "mysql://x")
    assert result.returncode == 2 and "unsupported DATABASE_URL" in result.stderr


def test_sigint_stops_cleanly(tmp_path):
    srv = ServerProcess(tmp_path / "i.db").start()
    assert srv.stop(sig=2) == 0


def _missing_database_url() -> str:
    """The test Postgres, with a database name that does not exist on it."""
    from urllib.parse import urlsplit, urlunsplit

    from tests.conftest import TEST_DATABASE_URL

    return urlunsplit(urlsplit(TEST_DATABASE_URL)._replace(path="/collab_no_such_database"))


@pytest.mark.parametrize(("url", "why"), [
    (None, 'database "collab_no_such_database" does not exist'),
    # Nothing listens there: ECONNREFUSED (asyncio says "Connect call failed", uvloop
    # "Connection refused").
    ("postgresql://postgres@127.0.0.1:1/db", "[Errno 111]"),
])
def test_serve_without_its_postgres_says_why_in_one_line(url, why):
    result = run_collab("serve", "--port", "0", "--database-url", url or _missing_database_url(),
                        env={"COLLAB_SECRET": "s" * 32})  # no dev-mode warning to step over
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "CRITICAL" in line and "cannot connect to Postgres at 127.0.0.1:" in line
    assert why in line
    assert result.stdout == ""  # never said it was serving


@pytest.mark.parametrize("workers", [None, "2"])
def test_serve_on_a_port_in_use_says_so_and_exits(tmp_path, workers):
    import socket
    import time

    from tests.test_workers import REDIS_URL

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = ("--workers", workers) if workers else ()
        env = {"COLLAB_SECRET": "s" * 32, **({"REDIS_URL": REDIS_URL} if workers else {})}
        started = time.monotonic()
        result = run_collab("serve", "--port", str(port), *extra, "--database-url",
                            f"sqlite:///{tmp_path}/taken.db", env=env)
        took = time.monotonic() - started
    print(f"exited with {result.returncode} after {took:.2f} s")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "CRITICAL" in line and f"cannot listen on 127.0.0.1:{port}: " in line
    assert "Address already in use" in line
    assert result.stdout == ""


def test_workers_that_cannot_start_stop_the_server():
    """With its store unreachable, no worker can start: the parent stops them all and
    exits 1 instead of restarting them forever."""
    from tests.test_workers import REDIS_URL

    result = run_collab("serve", "--port", "0", "--workers", "2", "--database-url",
                        "postgresql://postgres@127.0.0.1:1/db",
                        env={"COLLAB_SECRET": "s" * 32, "REDIS_URL": REDIS_URL})
    assert result.returncode == 1
    assert "could not start (exit status 1, 3 times): stopping" in result.stderr
    assert "cannot start: cannot connect to Postgres at 127.0.0.1:1/db" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
