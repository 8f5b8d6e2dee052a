"""`collab actors ls|show` with no server running: on a Postgres store written
directly, and the exit status and message of every refusal. (With a server running
on the same SQLite file: tests/test_admin_actors.py.)"""

from __future__ import annotations

import json

import pytest

from collab.config import Settings
from collab.protocol.codec import pack
from collab.storage import open_store
from collab.storage.base import PutActorState, PutQueueMessage, QueueRecord
from tests.test_cli import run_collab


async def test_ls_and_show_on_postgres_without_a_server(pg_url):
    store = open_store(Settings(database_url=pg_url))
    await store.open()
    try:
        await store.write([
            PutActorState("counter", "ann", pack({"count": 3})),
            PutQueueMessage(QueueRecord("worker", "w", "jobs", 1, pack({"n": 1}),
                                        enqueued_at=0.0)),
        ])
    finally:
        await store.close()

    listed = run_collab("actors", "ls", "--database-url", pg_url)
    assert listed.returncode == 0, listed.stderr
    page = json.loads(listed.stdout)
    assert [(a["kind"], a["key"], a["queued"]) for a in page["actors"]] == [
        ("counter", "ann", 0), ("worker", "w", 1)]
    assert page["next"] is None
    only = json.loads(run_collab("actors", "ls", "--kind", "worker",
                                 env={"DATABASE_URL": pg_url}).stdout)
    assert [a["key"] for a in only["actors"]] == ["w"]

    shown = run_collab("actors", "show", "worker", "w", "--database-url", pg_url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["queues"] == {
        "jobs": {"pending": 1, "dead": []}}
    missing = run_collab("actors", "show", "counter", "bob", "--database-url", pg_url)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.strip() == "collab: nothing is stored for actor counter:bob"


@pytest.mark.parametrize(("args", "status", "says"), [
    (("ls", "--kind", "Counter"), 2, "invalid kind 'Counter'"),
    (("ls", "--limit", "0"), 2, "limit must be 1 to 1000"),
    (("ls", "--limit", "1001"), 2, "limit must be 1 to 1000"),
    (("ls", "--after", "counter"), 2, "invalid cursor 'counter'"),
    (("show", "no kind", "k"), 2, "invalid kind 'no kind'"),
    (("ls", "--limit", "many"), 2, "invalid int value"),  # argparse's own refusal
    (("show", "counter"), 2, "the following arguments are required: key"),
])
def test_bad_command_lines_exit_2_and_say_why(tmp_path, args, status, says):
    result = run_collab("actors", *args, "--database-url", f"sqlite:///{tmp_path}/x.db")
    assert result.returncode == status and says in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "x.db").exists()  # refused before the store was opened


def test_a_missing_sqlite_file_is_not_created(tmp_path):
    result = run_collab("actors", "ls", "--database-url", f"sqlite:///{tmp_path}/typo.db")
    assert result.returncode == 1
    assert f"no SQLite database at {tmp_path}/typo.db" in result.stderr
    assert not (tmp_path / "typo.db").exists()


def test_an_unreachable_postgres_exits_1():
    result = run_collab("actors", "ls", "--database-url", "postgres://nobody@127.0.0.1:1/x")
    assert result.returncode == 1 and "cannot connect to Postgres at 127.0.0.1:1/x" in result.stderr
