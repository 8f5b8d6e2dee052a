"""The HTTP actor API against a real server running `--app tests.apps.counter:registry`:
JSON and msgpack calls, every error with its status and code, and state that
survives kill -9 once a result was acknowledged."""

from __future__ import annotations

import aiohttp
import msgpack
import pytest

from tests.serverproc import ServerProcess

APP = ("--app", "tests.apps.counter:registry")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("actors") / "collab.db", args=APP).start()
    yield proc
    proc.stop()


def action_url(srv: ServerProcess, kind: str, key: str, action: str) -> str:
    return f"{srv.http_url}/api/actors/{kind}/{key}/actions/{action}"


async def test_json_call(srv, session):
    url = action_url(srv, "counter", "json", "increment")
    resp = await session.post(url, json={"args": [2]})
    assert resp.status == 200 and await resp.json() == {"result": 2}
    resp = await session.post(url, json={"kwargs": {"by": 3}})
    assert (await resp.json())["result"] == 5
    resp = await session.post(url)  # no body: no arguments
    assert (await resp.json())["result"] == 6


async def test_msgpack_call(srv, session):
    resp = await session.post(action_url(srv, "counter", "mp", "increment"),
                              data=msgpack.packb({"args": [7]}),
                              headers={"Content-Type": "application/msgpack"})
    assert resp.content_type == "application/msgpack"
    assert msgpack.unpackb(await resp.read()) == {"result": 7}


async def test_actor_to_actor_over_http(srv, session):
    resp = await session.post(action_url(srv, "tally", "t", "add_to"),
                              json={"args": [["x", "y"], 4]})
    assert (await resp.json())["result"] == 8


@pytest.mark.parametrize(
    ("kind", "key", "action", "body", "status", "code"),
    [
        ("nosuch", "k", "increment", {}, 404, "unknown_actor_type"),
        ("counter", "k", "nosuch", {}, 404, "unknown_action"),
        ("counter", "k", "increment", {"args": [1, 2, 3]}, 400, "invalid_arguments"),
        ("counter", "k", "increment", {"kwargs": {"step": 1}}, 400, "invalid_arguments"),
        ("counter", "k", "increment", {"args": "1"}, 400, "invalid_body"),
        ("counter", "k", "increment", {"extra": 1}, 400, "invalid_body"),
        ("counter", "k", "fail_after_change", {}, 400, "refused"),
        ("counter", "k", "crash", {}, 500, "internal"),
        ("counter", "k", "store_unserializable", {}, 400, "state_not_serializable"),
        ("counter", "bad key", "get", {}, 400, "invalid_name"),
    ],
)
async def test_errors(srv, session, kind, key, action, body, status, code):
    resp = await session.post(action_url(srv, kind, key, action), json=body)
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code
    # The actor keeps working after any of these.
    resp = await session.post(action_url(srv, "counter", "k", "get"))
    assert resp.status == 200


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(b"{not json", "application/json"), (b"\xc1", "application/msgpack"),
     (b"[1, 2]", "application/json")],
)
async def test_malformed_bodies(srv, session, data, content_type):
    resp = await session.post(action_url(srv, "counter", "k", "get"), data=data,
                              headers={"Content-Type": content_type})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_body"


async def test_acknowledged_state_survives_kill_9(tmp_path):
    db = tmp_path / "kill.db"
    srv = ServerProcess(db, args=APP).start()
    async with aiohttp.ClientSession() as session:
        for i in range(1, 51):
            resp = await session.post(action_url(srv, "counter", "k9", "increment"))
            assert (await resp.json())["result"] == i
        srv.kill()
        srv = ServerProcess(db, args=APP).start()
        resp = await session.post(action_url(srv, "counter", "k9", "get"))
        state = (await resp.json())["result"]
    srv.stop()
    assert state["count"] == 50 and state["created"] == 1


def test_bad_app_spec_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="cannot import"):
        ServerProcess(tmp_path / "x.db", args=("--app", "no.such.module:registry")).start()


async def test_timer_survives_kill_9(tmp_path):
    """A timer acknowledged before kill -9 fires after the restart, exactly as stored."""
    from tests.waits import until

    db = tmp_path / "timer.db"
    srv = ServerProcess(db, args=APP).start()
    async with aiohttp.ClientSession() as session:
        resp = await session.post(action_url(srv, "reminder", "k9", "remind_in"),
                                  json={"args": [0.5, "after the crash"]})
        timer_id = (await resp.json())["result"]
        srv.kill()
        srv = ServerProcess(db, args=APP).start()

        async def woken_by_its_timer() -> bool:  # nobody calls it: the waker loads it
            health = await (await session.get(f"{srv.http_url}/healthz")).json()
            return health["loads"] >= 1

        await until(woken_by_its_timer)

        async def rang() -> bool:
            resp = await session.post(action_url(srv, "reminder", "k9", "fired"))
            return (await resp.json())["result"] == [["after the crash", timer_id]]

        await until(rang)
    srv.stop()


def queue_url(srv: ServerProcess, kind: str, key: str, queue: str) -> str:
    return f"{srv.http_url}/api/actors/{kind}/{key}/queues/{queue}"


async def test_queue_over_http(srv, session):
    from tests.waits import until

    url = queue_url(srv, "worker", "h", "jobs")
    for n in range(3):
        resp = await session.post(url, json={"n": n})
        assert await resp.json() == {"queued": True, "seq": n + 1}
    resp = await session.post(url, data=msgpack.packb({"n": 3}),
                              headers={"Content-Type": "application/msgpack"})
    assert msgpack.unpackb(await resp.read()) == {"queued": True, "seq": 4}

    async def all_done() -> bool:
        resp = await session.post(action_url(srv, "worker", "h", "done"))
        return (await resp.json())["result"] == [0, 1, 2, 3]

    await until(all_done)
    assert await (await session.get(url)).json() == {"pending": 0, "dead": []}
    resp = await session.post(f"{url}/redrive")
    assert await resp.json() == {"redriven": 0}


@pytest.mark.parametrize(
    ("queue", "data", "status", "code"),
    [("nope", b'{"n": 1}', 404, "unknown_queue"), ("jobs", b"", 400, "invalid_body"),
     ("jobs", b"{bad", 400, "invalid_body"),
     ("jobs", b'"' + b"x" * 70000 + b'"', 413, "message_too_large")],
)
async def test_queue_errors(srv, session, queue, data, status, code):
    resp = await session.post(queue_url(srv, "worker", "e", queue), data=data,
                              headers={"Content-Type": "application/json"})
    assert resp.status == status and (await resp.json())["error"]["code"] == code


async def test_queued_messages_survive_kill_9(tmp_path):
    from tests.waits import until

    db = tmp_path / "queue.db"
    srv = ServerProcess(db, args=APP).start()
    async with aiohttp.ClientSession() as session:
        await session.post(action_url(srv, "patient_worker", "k9", "fail_next"),
                           json={"args": [1]})
        for n in range(5):
            resp = await session.post(queue_url(srv, "patient_worker", "k9", "jobs"),
                                      json={"n": n})
            assert resp.status == 200
        srv.kill()  # the first delivery failed; its retry was 0.5 s away
        srv = ServerProcess(db, args=APP).start()

        async def all_done() -> bool:
            resp = await session.post(action_url(srv, "patient_worker", "k9", "done"))
            return (await resp.json())["result"] == [0, 1, 2, 3, 4]

        await until(all_done)
    srv.stop()


async def test_workflow_interrupted_by_kill_9_resumes_without_rerunning_steps(tmp_path):
    from tests.waits import until

    db, log = tmp_path / "wf.db", tmp_path / "tools.log"
    srv = ServerProcess(db, args=APP).start()
    base = f"{srv.http_url}/api/actors/agent/k9/workflows"
    async with aiohttp.ClientSession() as session:
        resp = await session.post(f"{base}/research", json={"args": [str(log), 0.0, 1.0]})
        run_id = (await resp.json())["id"]
        await until(lambda: log.exists() and "slow-start" in log.read_text())
        srv.kill()  # in the middle of the slow step
        srv = ServerProcess(db, args=APP).start()
        base = f"{srv.http_url}/api/actors/agent/k9/workflows"
        # Nobody calls the actor: the run's recovery timer wakes it and it resumes.
        await until(lambda: "slow-end" in log.read_text())

        async def done() -> bool:
            resp = await session.get(f"{base}/{run_id}")
            return (await resp.json())["status"] == "done"

        await until(done)
        status = await (await session.get(f"{base}/{run_id}")).json()
        resp = await session.get(f"{base}/no-such-run")
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_workflow"
        resp = await session.post(f"{base}/nope", json={})
        assert resp.status == 404
    srv.stop()
    assert status["result"] == "done GATHER"
    steps = log.read_text().split()
    # Completed steps ran once; only the interrupted one ran again.
    assert steps.count("gather") == 1 and steps.count("flaky") == 3
    assert steps.count("slow-start") == 2 and steps.count("slow-end") == 1
