"""Inspecting actors against a real server (`--app tests.apps.ledger:registry`): the
admin API (`GET /api/admin/actors`, `GET /api/admin/actors/<kind>/<key>`) and
`collab actors ls|show` on the same SQLite file show the state, timer, dead letter
and workflow run the actor stored; bad requests get a 4xx with a code; only admin
tokens are admitted."""

from __future__ import annotations

import json
import time

import pytest

from tests.serverproc import ServerProcess
from tests.test_cli import run_collab
from tests.test_revocations import AUTH_ENV, token
from tests.waits import until

APP = ("--app", "tests.apps.ledger:registry")


def bearer(user: str = "ops", *, admin: bool = True) -> dict[str, str]:
    """Authorization for `user`, made now: tokens expire (10 minutes)."""
    return {"Authorization": f"Bearer {token(user, issued=time.time(), admin=admin)}"}


@pytest.fixture
def srv(server_factory) -> ServerProcess:
    """A server of the test's own: what it lists is what the test stored."""
    return server_factory("inspect", env=AUTH_ENV, args=APP)


@pytest.fixture(scope="module")
def shared_srv(tmp_path_factory):
    """One server for the tests that store nothing."""
    proc = ServerProcess(tmp_path_factory.mktemp("inspect") / "collab.db", env=AUTH_ENV,
                         args=APP).start()
    yield proc
    proc.stop()


async def post(session, srv: ServerProcess, path: str, body: dict) -> dict:
    async with session.post(f"{srv.http_url}/api/actors/ledger/{path}", json=body,
                            headers=bearer()) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def get(session, srv: ServerProcess, path: str, headers: dict | None = None
              ) -> tuple[int, dict]:
    async with session.get(f"{srv.http_url}/api/admin/actors{path}",
                           headers=bearer() if headers is None else headers) as r:
        return r.status, await r.json()


async def fill_the_ledger(session, srv: ServerProcess) -> tuple[str, str]:
    """State and a timer on ledger:main, a dead letter in its queue `jobs`, a workflow
    run asleep; state alone on ledger:other. Returns the timer and run ids."""
    timer_id = await post(session, srv, "main/actions/record", {"args": [5]})
    await post(session, srv, "main/queues/jobs", {"n": 1})
    run_id = (await post(session, srv, "main/workflows/settle", {"args": ["acct"]}))["id"]
    await post(session, srv, "other/actions/record", {"args": [7]})

    async def settled() -> bool:
        _, shown = await get(session, srv, "/ledger/main")
        dead = shown["queues"].get("jobs", {}).get("dead", [])
        return len(dead) == 1 and shown["workflows"][0]["status"] == "sleeping"

    await until(settled)
    return timer_id["result"], run_id


async def test_the_admin_api_and_the_cli_show_what_an_actor_stored(srv, session):
    timer_id, run_id = await fill_the_ledger(session, srv)

    status, shown = await get(session, srv, "/ledger/main")
    assert status == 200
    assert shown["state"] == {"entries": [5], "raw": {"$bytes": "AP8="}}
    timer = next(t for t in shown["timers"] if t["id"] == timer_id)
    assert (timer["method"], timer["args"], timer["internal"]) == ("audit", ["hourly"], False)
    assert timer["due"].endswith("Z")
    assert any(t["internal"] and t["id"] == f"workflow:{run_id}" for t in shown["timers"])
    assert shown["queues"]["jobs"]["pending"] == 0
    [dead] = shown["queues"]["jobs"]["dead"]
    assert dead["message"] == {"n": 1} and dead["attempts"] == 1
    assert "cannot settle job 1" in dead["error"]
    [run] = shown["workflows"]
    assert (run["id"], run["name"], run["status"], run["args"]) == (
        run_id, "settle", "sleeping", ["acct"])
    assert run["steps"][0] == {"step": "sum", "result": 42}
    assert run["steps"][1]["sleep"] == "overnight"
    assert run["result"] is None and run["error"] is None

    status, listed = await get(session, srv, "?kind=ledger")
    assert status == 200 and listed["next"] is None
    main, other = listed["actors"]
    assert (main["kind"], main["key"], other["key"]) == ("ledger", "main", "other")
    assert main["state_bytes"] == shown["state_bytes"] and main["timers"] >= 2
    assert (main["queued"], main["dead_letters"]) == (0, 1)
    assert (main["workflows"], main["workflows_active"]) == (1, 1)
    assert (other["timers"], other["dead_letters"], other["workflows"]) == (1, 0, 0)

    # One page at a time: `next` is where the following page starts.
    _, first = await get(session, srv, "?limit=1")
    assert [a["key"] for a in first["actors"]] == ["main"] and first["next"] == "ledger:main"
    _, second = await get(session, srv, f"?limit=1&cursor={first['next']}")
    assert [a["key"] for a in second["actors"]] == ["other"] and second["next"] is None

    # The CLI reads the same file while the server runs, and prints the same JSON.
    url = f"sqlite:///{srv.db_path}"
    cli = run_collab("actors", "show", "ledger", "main", "--database-url", url)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == shown
    cli = run_collab("actors", "ls", "--kind", "ledger", "--database-url", url)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == listed
    cli = run_collab("actors", "ls", "--limit", "1", "--after", "ledger:main",
                     env={"DATABASE_URL": url})
    assert json.loads(cli.stdout) == second
    cli = run_collab("actors", "show", "ledger", "nobody", "--database-url", url)
    assert cli.returncode == 1 and cli.stdout == ""
    assert "nothing is stored for actor ledger:nobody" in cli.stderr


@pytest.mark.parametrize(("path", "status", "code"), [
    ("?limit=0", 400, "invalid_limit"),
    ("?limit=1001", 400, "invalid_limit"),
    ("?limit=ten", 400, "invalid_limit"),
    ("?limit=", 400, "invalid_limit"),
    ("?kind=Ledger", 400, "invalid_kind"),
    ("?cursor=ledger", 400, "invalid_cursor"),
    ("?page=2", 400, "invalid_query"),
    ("/ledger/nobody", 404, "actor_not_found"),
    ("/Ledger/main", 400, "invalid_kind"),
])
async def test_bad_requests_are_refused_with_a_code(shared_srv, session, path, status, code):
    answer_status, answer = await get(session, shared_srv, path)
    assert (answer_status, answer["error"]["code"]) == (status, code)


@pytest.mark.parametrize(("path", "admitted"), [("", 200), ("/ledger/nobody", 404)])
async def test_only_admin_tokens_may_inspect(shared_srv, session, path, admitted):
    status, answer = await get(session, shared_srv, path, headers=bearer("eve", admin=False))
    assert (status, answer["error"]["code"]) == (403, "forbidden")
    status, answer = await get(session, shared_srv, path, headers={})
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    status, _ = await get(session, shared_srv, path)
    assert status == admitted
