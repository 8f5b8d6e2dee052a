"""Deploying to Heroku: the Procfile and app.json name commands collab has, the
Python version matches the package's, a plain (non-editable) `pip install .` gives
a working server, a dyno on SQLite warns loudly, and a TLS Redis with a
self-signed certificate (Heroku Redis) works when told not to verify it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import aiohttp
import pytest

from collab.config import Settings, deployment_warnings
from tests.serverproc import ServerProcess
from tests.waits import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"collab serving on (http://\S+:\d+)")


def collab_help(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "collab", *args, "--help"],
                            capture_output=True, text=True, timeout=TIMEOUT, check=True)
    return result.stdout


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def test_procfile_runs_collab_commands_that_exist():
    entries = procfile()
    assert entries == {"web": "collab serve", "release": "collab migrate"}
    commands = re.search(r"\{([\w,]+)\}", collab_help()).group(1).split(",")
    for command in entries.values():
        program, subcommand, *flags = command.split()
        assert program == "collab" and subcommand in commands
        usage = collab_help(subcommand)
        assert all(flag in usage for flag in flags if flag.startswith("--"))
    # `web` binds $PORT on every interface without flags: Heroku sets PORT.
    heroku = Settings.from_env({"PORT": "5000"})
    assert (heroku.host, heroku.port) == ("0.0.0.0", 5000)


def test_app_json_declares_heroku_add_ons_and_secret():
    app = json.loads((ROOT / "app.json").read_text())
    assert {"url": "heroku/python"} in app["buildpacks"]
    plans = {addon["plan"].split(":")[0] for addon in app["addons"]}
    assert plans == {"heroku-postgresql", "heroku-redis"}
    assert app["env"]["COLLAB_SECRET"]["generator"] == "secret"
    # Heroku Redis's certificate is self-signed: without this, cluster mode cannot start.
    assert app["env"]["COLLAB_REDIS_VERIFY_TLS"]["value"] == "false"
    for name, spec in app["env"].items():
        assert spec.get("description"), f"{name} needs a description"
        if "value" in spec:
            Settings.from_env({name: spec["value"]})  # a value collab accepts


def test_python_version_and_requirements_match_the_package():
    version = (ROOT / ".python-version").read_text().strip()
    assert version == "3.11"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={version}"
    assert any(d.startswith("prometheus-client") for d in project["dependencies"])
    requirements = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert requirements == ["."]  # the project itself, not editable


def test_plain_install_serves(tmp_path):
    """`pip install .` as Heroku's build does it (not editable, build isolation), into a
    directory of its own; the server then runs from there and nothing else, package
    data (the demo page at `/`) included."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*cache",
        ".hypothesis", "tests", "bench", "client-js", "demo", "*.db"))
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    shutil.rmtree(source)  # whatever runs now can only come from the install
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("PORT", None)
    env.pop("DATABASE_URL", None)
    where = subprocess.run([sys.executable, "-c", "import collab; print(collab.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT, check=True)
    assert Path(where.stdout.strip()).is_relative_to(target)
    proc = subprocess.Popen(
        [sys.executable, "-m", "collab", "serve", "--port", "0", "--database-url",
         f"sqlite:///{tmp_path}/installed.db"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = READY.search(line)
        assert match, f"no ready line: {line!r} {proc.stderr.read() if not line else ''}"
        port = int(match.group(1).rsplit(":", 1)[1])
        for path in ("/healthz", "/readyz", "/metrics", "/"):
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
                sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                status_line = sock.recv(64).decode().split("\r\n")[0]
            assert status_line.split()[1] == "200", (path, status_line)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=TIMEOUT)
    assert code == 0


# -- a dyno with SQLite ------------------------------------------------------------

def test_dyno_with_sqlite_is_warned_about():
    assert deployment_warnings(Settings.from_env({})) == []
    assert deployment_warnings(Settings.from_env(
        {"DYNO": "web.1", "DATABASE_URL": "postgres://u:p@h/db"})) == []
    [warning] = deployment_warnings(Settings.from_env({"DYNO": "web.1"}))
    assert "wiped" in warning and "Heroku Postgres" in warning and "DATABASE_URL" in warning


def test_dyno_with_sqlite_warns_at_serve_and_migrate(tmp_path):
    srv = ServerProcess(tmp_path / "dyno.db", env={"DYNO": "web.1"}).start()
    assert srv.stop() == 0
    assert re.search(r" WARNING collab: running on Heroku \(DYNO=web\.1\) with a SQLite store",
                     srv.log())
    result = subprocess.run(
        [sys.executable, "-m", "collab", "migrate", "--database-url",
         f"sqlite:///{tmp_path}/release.db"], env={**os.environ, "DYNO": "release.1"},
        capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0
    assert "WARNING collab: running on Heroku (DYNO=release.1)" in result.stderr
    quiet = ServerProcess(tmp_path / "local.db").start()  # no DYNO: no warning
    assert quiet.stop() == 0
    assert "running on Heroku" not in quiet.log()


# -- Heroku Redis: TLS with a self-signed certificate --------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def tls_redis(tmp_path):
    """A private redis-server that speaks only TLS, with a fresh self-signed certificate;
    yields its rediss:// URL."""
    openssl, redis = shutil.which("openssl"), shutil.which("redis-server")
    if openssl is None or redis is None:
        pytest.fail("this test needs openssl and redis-server (Debian packages)")
    cert, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=collab-test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=TIMEOUT)
    port = free_port()
    proc = subprocess.Popen(
        [redis, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.02)
    yield f"rediss://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait(timeout=TIMEOUT)


@pytest.mark.parametrize(("verify", "ready"), [("false", True), ("true", False)])
async def test_self_signed_tls_redis(tmp_path, tls_redis, verify, ready):
    srv = ServerProcess(tmp_path / f"tls-{verify}.db",
                        env={"REDIS_URL": tls_redis, "COLLAB_REDIS_VERIFY_TLS": verify}).start()
    try:
        async with aiohttp.ClientSession() as session:
            resp = await session.get(f"{srv.http_url}/readyz")
            body = await resp.json()
        if ready:
            assert resp.status == 200 and body["checks"]["redis"] == "ok"
        else:  # verified against the system's CAs, which never signed it
            assert resp.status == 503 and body["checks"]["redis"] == "error"
    finally:
        assert srv.stop() == 0
    if not ready:  # why, for the operator: in the log, not in the answer
        [failure] = [line for line in srv.log().splitlines() if "the redis check failed" in line]
        assert "certificate" in failure.lower()
