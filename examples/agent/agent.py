"""An agent that co-edits with people: it listens to a chat room and, when someone
writes `/summarize` or `/todo`, reads the document of the same name, asks a model,
and types the answer into the document as a visible collaborator (a name and a
caret in every editor), then says so in the chat.

    collab serve --app examples.agent:registry

Each command runs as a durable workflow (runtime/workflows.py): reading the
document, the model's answer, the typing and the chat reply are recorded steps, so
a run interrupted by kill -9 resumes where it was, and its typing carries on from
the last chunk that landed without writing one twice (writing.py).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pycrdt import Text

import collab
from examples.agent.chat import AGENT_LOOK, AGENT_USER, command_of, done, on_it
from examples.agent.models import MODEL_TIMEOUT, load_model
from examples.agent.writing import TEXT, answer_block, chunks_of, type_next


class Agent(collab.Actor):
    kind = "agent"

    #: Seconds between typed chunks (0 types the whole answer at once).
    TYPING_DELAY = float(os.environ.get("COLLAB_AGENT_TYPING_DELAY", "0.05"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model = load_model()

    def initial_state(self) -> dict[str, Any]:
        return {"started": []}  # room seqs whose command has a run (newest 100)

    @collab.watch_room("*")
    async def heard(self, note: dict[str, Any]) -> None:
        """A message in the room this agent serves (its key): start a run for a
        command. A note may come twice (at least once): the second is ignored here,
        and a second run would write nothing (see `type_answer`)."""
        message = note["message"]
        command = command_of(message["body"])
        if command is None or message["user"] == AGENT_USER:
            return
        if message["seq"] in self.state["started"]:
            return
        self.state["started"] = [*self.state["started"][-99:], message["seq"]]
        await self.start_workflow("answer", note["room"], message["seq"], message["user"],
                                  command)

    @collab.workflow
    async def answer(self, ctx: Any, room: str, seq: int, user: str, command: str) -> str:
        await ctx.step("ack", self.say, room, f"agent-{seq}-ack", on_it(command, user))
        text = await ctx.step("read", self.read_text, room)
        reply = await ctx.step("think", self.model, command, text, timeout=MODEL_TIMEOUT)
        await ctx.step("write", self.type_answer, room, seq, answer_block(command, user, reply))
        await ctx.step("done", self.say, room, f"agent-{seq}-done", done(command, user))
        return reply

    async def say(self, room: str, client_id: str, body: str) -> int:
        """Post to the room; the client_id makes a repeated post a no-op."""
        sent = await self.actor("room", room).call("send", client_id, body, user=AGENT_USER)
        return sent["seq"]

    async def read_text(self, doc: str) -> str:
        copy = await self.document(doc).read()
        return str(copy.get(TEXT, type=Text))

    async def type_answer(self, doc: str, seq: int, block: str) -> int:
        """Type `block` at the end of the document, a chunk per update, with a caret
        others see. Resumable: where it got to is in the document (writing.py)."""
        ref = self.document(doc)
        chunks = chunks_of(block)
        try:
            while True:
                async with ref.transact() as copy:
                    caret = type_next(copy, str(seq), chunks)
                if caret is None:
                    return len(chunks)
                await ref.set_presence({"user": AGENT_LOOK,
                                        "cursor": {"anchor": caret, "head": caret}})
                if self.TYPING_DELAY:
                    await asyncio.sleep(self.TYPING_DELAY)
        finally:
            await ref.set_presence(None)


registry = collab.Registry(Agent)
