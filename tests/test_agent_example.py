"""The agent example (examples/agent) against real server processes: `/summarize`
and `/todo` in a room make the agent type its answer into the document of the same
name as a visible collaborator (a name and a caret in awareness) and say so in the
chat; a run killed with kill -9 mid-typing resumes after the restart and writes
nothing twice; the OpenAI-compatible provider is tried against a loopback server."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from pycrdt import Doc, Text

from collab.protocol import ywire
from examples.agent import models
from examples.agent.bot import serve
from examples.agent.chat import command_of
from examples.agent.writing import chunks_of
from tests.serverproc import ServerProcess
from tests.waits import until
from tests.yclient import YClient

APP = ("--app", "examples.agent:registry")
NOTES = ("We met on Monday to plan the launch. The launch moves to March because the venue"
         " is booked. Marketing wants a new video. TODO: book the venue\n"
         "We should email the press before Friday.\n")


async def seed(session, srv: ServerProcess, doc: str, text: str) -> None:
    copy = Doc()
    copy.get("codemirror", type=Text).insert(0, text)
    resp = await session.post(f"{srv.http_url}/api/docs/{doc}/update", data=copy.get_update())
    assert resp.status == 200, await resp.text()


async def text_of(session, srv: ServerProcess, doc: str) -> str:
    async with session.get(f"{srv.http_url}/api/docs/{doc}?format=json&text=codemirror") as r:
        return (await r.json())["text"]["codemirror"]


async def say(session, srv: ServerProcess, room: str, client_id: str, body: str) -> None:
    resp = await session.post(f"{srv.http_url}/api/actors/room/{room}/actions/send",
                              json={"args": [client_id, body], "kwargs": {"user": "ann"}})
    assert resp.status == 200, await resp.text()


async def agent_says(session, srv: ServerProcess, room: str) -> list[str]:
    async with session.get(f"{srv.http_url}/api/rooms/{room}/messages?limit=200") as resp:
        return [m["body"] for m in (await resp.json())["messages"] if m["user"] == "agent"]


async def answer(command: str, text: str, title: str) -> str:
    return f"\n\n{title} (asked by ann):\n{await models.local(command, text)}\n"


def agent_with_caret(message: ywire.Message) -> bool:
    if not isinstance(message, ywire.AwarenessMessage):
        return False
    for entry in ywire.decode_awareness(message.payload):
        state = json.loads(entry.state)
        if state and state["user"]["name"] == "Agent" and "anchor" in state.get("cursor", {}):
            return True
    return False


async def test_summarize_and_todo_are_typed_in_by_a_visible_collaborator(tmp_path, session):
    srv = ServerProcess(tmp_path / "agent.db", args=APP,
                        env={"COLLAB_AGENT_TYPING_DELAY": "0.02"}).start()
    try:
        await seed(session, srv, "plan", NOTES)
        watcher = await YClient.connect(session, srv.http_url, "plan")
        seen_agent = asyncio.create_task(watcher.recv_until(agent_with_caret))
        await say(session, srv, "plan", "c-1", "/summarize")
        summary = await answer("summarize", NOTES, "Summary")
        assert "We met on Monday" in summary and "words." in summary
        await until(lambda: text_of_is(session, srv, "plan", NOTES + summary))
        await asyncio.wait_for(seen_agent, 5)  # it showed its name and caret while typing
        await until(lambda: said_count(session, srv, "plan", 2))

        await say(session, srv, "plan", "c-2", "/todo please")
        todo = await answer("todo", NOTES + summary, "To do")
        assert "- [ ] book the venue" in todo and "- [ ] email the press before Friday" in todo
        await until(lambda: text_of_is(session, srv, "plan", NOTES + summary + todo))
        await until(lambda: said_count(session, srv, "plan", 4))
        assert await agent_says(session, srv, "plan") == [
            "On it: /summarize for ann.", "Summary is in the document, ann.",
            "On it: /todo for ann.", "To do is in the document, ann."]
        await say(session, srv, "plan", "c-3", "/unknown and plain chat")
        await asyncio.sleep(0.5)
        assert len(await agent_says(session, srv, "plan")) == 4
    finally:
        srv.stop()


async def text_of_is(session, srv: ServerProcess, doc: str, expected: str) -> bool:
    return await text_of(session, srv, doc) == expected


async def said_count(session, srv: ServerProcess, room: str, count: int) -> bool:
    return len(await agent_says(session, srv, room)) >= count


async def test_a_run_killed_mid_typing_resumes_and_writes_nothing_twice(tmp_path, session):
    env = {"COLLAB_AGENT_TYPING_DELAY": "0.15"}
    srv = ServerProcess(tmp_path / "kill.db", args=APP, env=env).start()
    try:
        await seed(session, srv, "memo", NOTES)
        summary = await answer("summarize", NOTES, "Summary")
        assert len(chunks_of(summary)) > 20  # several seconds of typing

        async def partly_typed() -> bool:
            text = await text_of(session, srv, "memo")
            return len(NOTES) + 10 < len(text) < len(NOTES + summary)

        await say(session, srv, "memo", "k-1", "/summarize")
        await until(partly_typed)
        srv.kill()
        srv = ServerProcess(tmp_path / "kill.db", args=APP, env=env).start()
        await until(lambda: text_of_is(session, srv, "memo", NOTES + summary))
        await until(lambda: said_count(session, srv, "memo", 2))
        await asyncio.sleep(1.0)  # nothing more comes: the answer is in once
        assert await text_of(session, srv, "memo") == NOTES + summary
        assert await agent_says(session, srv, "memo") == [
            "On it: /summarize for ann.", "Summary is in the document, ann."]
    finally:
        srv.stop()


def test_commands_chunks_and_the_local_model():
    assert command_of("/summarize") == "summarize"
    assert command_of("  /todo now") == "todo"
    assert command_of("/todos") is None and command_of("summarize") is None
    block = "\n\nSummary:\nTwo  words\n"
    assert "".join(chunks_of(block)) == block
    assert asyncio.run(models.local("summarize", "")) == "The document is empty."
    assert asyncio.run(models.local("todo", "nothing to do here")) == "No open items."
    assert asyncio.run(models.local("todo", "- [ ] ship it\nTODO: test")) == (
        "- [ ] ship it\n- [ ] test")


async def test_the_openai_provider_speaks_the_chat_completions_api(monkeypatch):
    asked: list[dict] = []

    async def completions(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer sk-test":
            return web.json_response({"error": "no key"}, status=401)
        asked.append(await request.json())
        return web.json_response({"choices": [{"message": {"content": " A short summary. "}}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_MODEL", "tiny")
        assert models.load_model("openai") is models.openai
        assert await models.openai("summarize", "The text.") == "A short summary."
        assert asked[0]["model"] == "tiny"
        assert asked[0]["messages"][1] == {"role": "user", "content": "The text."}
        monkeypatch.setenv("OPENAI_API_KEY", "wrong")
        with pytest.raises(RuntimeError, match="401"):
            await models.openai("todo", "x")
        monkeypatch.delenv("OPENAI_API_KEY")
        with pytest.raises(RuntimeError, match="OPENAI_API_KEY"):
            await models.openai("todo", "x")
    finally:
        await runner.cleanup()
    with pytest.raises(ValueError):
        models.load_model("nonsense")


async def test_the_bot_answers_from_its_own_process_through_the_python_client(
        tmp_path, session):
    """examples/agent/bot.py: the same agent joining over /ws with collab.client
    (here a task of the test's process; the server is a process of its own, with no
    app: the bot needs nothing on the server)."""
    srv = ServerProcess(tmp_path / "bot.db").start()
    ready = asyncio.Event()
    bot = asyncio.create_task(serve(srv.http_url.replace("http", "ws") + "/ws", "desk",
                                    ready=ready))
    try:
        await seed(session, srv, "desk", NOTES)
        await asyncio.wait_for(ready.wait(), 10)
        watcher = await YClient.connect(session, srv.http_url, "desk")
        seen_agent = asyncio.create_task(watcher.recv_until(agent_with_caret))
        await say(session, srv, "desk", "b-1", "/todo")
        todo = await answer("todo", NOTES, "To do")
        await until(lambda: text_of_is(session, srv, "desk", NOTES + todo))
        await asyncio.wait_for(seen_agent, 5)
        await until(lambda: said_count(session, srv, "desk", 2))
        assert await agent_says(session, srv, "desk") == [
            "On it: /todo for ann.", "To do is in the document, ann."]
    finally:
        bot.cancel()
        await asyncio.gather(bot, return_exceptions=True)
        srv.stop()
