"""Room watches against real server processes: `@collab.watch_room` hears each new
message of the rooms it matches, in order and once stored; a hook may call back into
the room it watches while more messages arrive (the notes go out beside the room's
mailbox, runtime/notify.py); a message stored just before kill -9 is told after the
restart (at least once)."""

from __future__ import annotations

from tests.serverproc import ServerProcess
from tests.waits import until

APP = ("--app", "tests.apps.echo:registry")


async def send(session, srv: ServerProcess, room: str, client_id: str, body: str) -> int:
    resp = await session.post(f"{srv.http_url}/api/actors/room/{room}/actions/send",
                              json={"args": [client_id, body], "kwargs": {"user": "ann"}})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["result"]["seq"]


async def heard(session, srv: ServerProcess, room: str) -> list:
    resp = await session.post(f"{srv.http_url}/api/actors/echo/{room}/actions/heard_so_far",
                              json={})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["result"]


async def history(session, srv: ServerProcess, room: str) -> list:
    async with session.get(f"{srv.http_url}/api/rooms/{room}/messages?limit=200") as resp:
        return [(m["user"], m["body"]) for m in (await resp.json())["messages"]]


async def test_a_watcher_hears_every_message_in_order_and_answers_in_the_room(
        tmp_path, session):
    srv = ServerProcess(tmp_path / "echo.db", args=APP).start()
    try:
        for n in range(20):  # faster than the watcher answers: it calls the room meanwhile
            await send(session, srv, "echo/a", f"m-{n}", f"!{n}")
        await send(session, srv, "other", "x", "!not watched")

        async def all_heard() -> bool:
            return len(await heard(session, srv, "echo/a")) >= 40

        await until(all_heard)
        told = await heard(session, srv, "echo/a")
        seqs = [seq for _, seq, _, _ in told]
        assert seqs == list(range(1, 41))  # each once, in order: its own answers too
        assert {room for room, _, _, _ in told} == {"echo/a"}
        said = await history(session, srv, "echo/a")
        assert [body for user, body in said if user == "echo"] == [str(n) for n in range(20)]
        assert await heard(session, srv, "other") == []
    finally:
        srv.stop()


async def test_a_message_stored_before_kill_9_is_told_after_the_restart(tmp_path, session):
    srv = ServerProcess(tmp_path / "crash.db", args=APP).start()
    try:
        seqs = [await send(session, srv, "echo/b", f"c-{n}", f"plain {n}") for n in range(5)]
        srv.kill()  # right after the answers: the watcher may not have heard them yet
        srv = ServerProcess(tmp_path / "crash.db", args=APP).start()
        # Nothing touches the room: its stored watch timer wakes it after the restart.

        async def all_heard() -> bool:
            return {seq for _, seq, _, _ in await heard(session, srv, "echo/b")} >= set(seqs)

        await until(all_heard)
        bodies = {body for _, _, _, body in await heard(session, srv, "echo/b")}
        assert bodies == {f"plain {n}" for n in range(5)}
    finally:
        srv.stop()
