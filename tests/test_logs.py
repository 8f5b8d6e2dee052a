"""Log output: human-readable lines by default, one JSON object per line with
COLLAB_LOG_FORMAT=json (checked on real server processes), and no credential ever
written: the redaction patterns byte for byte, then a real server's access log
and tracebacks."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import aiohttp
import pytest

from collab.config import ConfigError, Settings
from collab.logs import JsonFormatter, RedactSecrets, Throttled, redact
from tests.serverproc import ServerProcess
from tests.waits import TIMEOUT

APP = ("--app", "tests.apps.counter:registry")
SECRET = "s3cr3t-VALUE"
#: Printed at every start without COLLAB_SECRET (collab/config.py security_warnings).
DEV_MODE_WARNING = "AUTHENTICATION IS OFF"
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) "
                       r"[\w.]+: ")


@pytest.mark.parametrize(("raw", "clean"), [
    ("GET /yjs/doc?token=abc.def HTTP/1.1", "GET /yjs/doc?token=*** HTTP/1.1"),
    ("/ws?room=a&access_token=abc&x=1", "/ws?room=a&access_token=***&x=1"),
    ("ws://h/yjs/d?api_key=k#frag", "ws://h/yjs/d?api_key=***#frag"),
    ("Authorization: Bearer abc.def", "Authorization: ***"),
    ("{'Authorization': 'Basic dXNlcjpwYXNz', 'Accept': '*/*'}",
     "{'Authorization': '***', 'Accept': '*/*'}"),
    ('{"token": "abc", "doc": "d"}', '{"token": "***", "doc": "d"}'),
    ("<MultiDict('token': 'abc')>", "<MultiDict('token': '***')>"),
    ("header bearer abc.def-ghi", "header Bearer ***"),
    ("postgres://app:pa55@db:5432/collab", "postgres://app:***@db:5432/collab"),
    ("Cookie: session=abc; theme=dark", "Cookie: ***"),
    # Nothing secret: left alone.
    ("doc:a: lease token 5 is older than 7", "doc:a: lease token 5 is older than 7"),
    ("GET /yjs/notes?tokens HTTP/1.1", "GET /yjs/notes?tokens HTTP/1.1"),
    ("closing 200 connections (1012 service restart)",
     "closing 200 connections (1012 service restart)"),
])
def test_redact(raw, clean):
    assert redact(raw) == clean


def test_filter_cleans_message_arguments_traceback_and_extras():
    try:
        raise ConnectionError(f"cannot reach wss://host/ws?token={SECRET}")
    except ConnectionError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "fetch %s failed",
                                   (f"http://u:{SECRET}@h/",), sys.exc_info())
    record.first_request_line = f"GET /?token={SECRET} HTTP/1.1"
    record.request_header = {"Authorization": f"Bearer {SECRET}", "Host": "h"}
    assert RedactSecrets().filter(record)
    text = logging.Formatter().format(record)
    assert SECRET not in text and "ConnectionError" in text
    assert record.getMessage() == "fetch http://u:***@h/ failed"
    assert SECRET not in record.first_request_line
    assert record.request_header == {"Authorization": "***", "Host": "h"}


def test_json_formatter_writes_one_object_per_record():
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        record = logging.LogRecord("collab.x", logging.ERROR, __file__, 1, "a\nb %d", (2,),
                                   sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message", "exception"}
    assert entry["level"] == "ERROR" and entry["logger"] == "collab.x"
    assert entry["message"] == "a\nb 2" and "ZeroDivisionError" in entry["exception"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


def test_a_throttled_line_is_written_once_per_interval_then_counts_the_rest(caplog):
    throttled = Throttled(logging.getLogger("collab.test"), interval=3600)
    with caplog.at_level(logging.INFO, logger="collab.test"):
        for n in range(1000):
            throttled.log(logging.WARNING, "accept failed: %s", n)
        assert [r.getMessage() for r in caplog.records] == ["accept failed: 0"]
        throttled._next = 0.0  # the interval has passed
        throttled.log(logging.WARNING, "accept failed: %s", "again")
    assert caplog.records[-1].getMessage() == \
        "accept failed: again (and 999 more like it since the last such line)"


@pytest.mark.parametrize("env", [{"COLLAB_LOG_FORMAT": "xml"}, {"COLLAB_LOG_LEVEL": "LOUD"},
                                 {"COLLAB_ACCESS_LOG": "maybe"}])
def test_bad_log_settings_are_named(env):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert next(iter(env)) in str(info.value)


def test_log_settings_from_env():
    settings = Settings.from_env({"COLLAB_LOG_FORMAT": "JSON", "COLLAB_ACCESS_LOG": "yes"})
    assert (settings.log_format, settings.access_log) == ("json", True)
    assert (Settings().log_format, Settings().access_log) == ("text", False)


async def make_noise(srv: ServerProcess) -> None:
    """Requests that carry credentials in every place a client can put them, and an
    actor crash whose traceback goes to the log."""
    headers = {"Authorization": f"Bearer {SECRET}"}
    async with aiohttp.ClientSession() as session:
        resp = await session.get(f"{srv.http_url}/healthz?token={SECRET}", headers=headers)
        assert resp.status == 200
        ws = await session.ws_connect(f"{srv.http_url}/yjs/doc?token={SECRET}",
                                      headers=headers)
        await ws.receive()
        await ws.close()
        ws = await session.ws_connect(f"{srv.http_url}/ws?access_token={SECRET}")
        await ws.close()
        resp = await session.post(f"{srv.http_url}/api/actors/counter/c/actions/crash")
        assert resp.status == 500


async def test_text_logs_by_default_without_secrets(tmp_path):
    srv = ServerProcess(tmp_path / "text.db", env={"COLLAB_ACCESS_LOG": "1"}, args=APP).start()
    await make_noise(srv)
    assert srv.stop() == 0
    log = srv.log()
    # The first line, after the development-mode warning (no COLLAB_SECRET here).
    lines = [line for line in log.splitlines() if DEV_MODE_WARNING not in line]
    assert lines[0].startswith("collab serving on http://")
    records = [line for line in lines if TEXT_LINE.match(line)]
    assert any("aiohttp.access" in line and "/healthz?token=***" in line for line in records)
    assert any("/yjs/doc?token=***" in line for line in records)
    assert any("/ws?access_token=***" in line for line in records)
    assert "ZeroDivisionError" in log  # the traceback, under its record
    assert SECRET not in log


async def test_json_logs_one_object_per_line_without_secrets(tmp_path):
    srv = ServerProcess(tmp_path / "json.db", env={"COLLAB_ACCESS_LOG": "1",
                                                   "COLLAB_LOG_FORMAT": "json"}, args=APP).start()
    await make_noise(srv)
    assert srv.stop() == 0
    log = srv.log()
    entries = [json.loads(line) for line in log.splitlines()]  # every line, the ready one too
    entries = [e for e in entries if DEV_MODE_WARNING not in e["message"]]
    assert entries[0]["message"].startswith("collab serving on http://")
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry) <= {
            "time", "level", "logger", "message", "exception"}
    access = [e["message"] for e in entries if e["logger"] == "aiohttp.access"]
    assert any("/healthz?token=***" in message for message in access)
    crash = [e for e in entries if "exception" in e]
    assert crash and "ZeroDivisionError" in crash[0]["exception"]
    assert any(e["logger"] == "collab.gateway.drain" and e["message"].startswith("stopped in")
               for e in entries)
    assert SECRET not in log


def test_a_crash_at_start_is_one_redacted_record():
    """Postgres unreachable at start: the process exits 1 with one JSON record saying
    so (no traceback: the reason is known), and the URL's password is not in it."""
    env = {**os.environ, "COLLAB_LOG_FORMAT": "json"}
    result = subprocess.run(
        [sys.executable, "-m", "collab", "serve", "--port", "0", "--database-url",
         f"postgres://app:{SECRET}@127.0.0.1:1/db"], env=env, capture_output=True, text=True,
        timeout=TIMEOUT)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if DEV_MODE_WARNING not in line]
    entry = json.loads(line)
    assert entry["level"] == "CRITICAL" and "exception" not in entry
    assert entry["message"].startswith("cannot start: cannot connect to Postgres at 127.0.0.1:1")
    assert SECRET not in result.stderr
