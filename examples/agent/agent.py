"""An agent that co-edits with people: it listens to a chat room and, when someone
writes `/summarize` or `/todo`, reads the document of the same name, asks a model,
and types the answer into the document as a visible collaborator (a name and a
caret in every editor), then says so in the chat.

    collab serve --app examples.agent:registry

Each command runs as a durable workflow (runtime/workflows.py): reading the
document, the model's answer, the typing and the chat reply are recorded steps, so
a run interrupted by kill -9 resumes where it was. The typing is idempotent: each
chunk goes in together with a progress record in the document itself (the
`agent` map: how many chunks are in, and a sticky position after the last), in
one update, so a resumed run carries on from the last chunk that landed and never
writes one twice.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

from pycrdt import Assoc, Doc, Map, StickyIndex, Text

import collab
from examples.agent.models import COMMANDS, MODEL_TIMEOUT, load_model

#: The chat user the agent posts as, and how editors show it.
AGENT_USER = "agent"
AGENT_LOOK = {"name": "Agent", "color": "#7c3aed", "colorLight": "#7c3aed33"}
#: Headings of the answers it types.
TITLES = {"summarize": "Summary", "todo": "To do"}
_COMMAND = re.compile(r"^/(\w+)\b")
_CHUNK = re.compile(r"\s*\S+|\s+")
#: The document's progress map: one entry per command message, by room seq.
PROGRESS = "agent"


def command_of(body: str) -> str | None:
    """The command a chat message asks for (`/summarize`, `/todo`), if any."""
    match = _COMMAND.match(body.strip())
    return match.group(1) if match and match.group(1) in COMMANDS else None


def chunks_of(block: str) -> list[str]:
    """The pieces the agent types one at a time: a word and the space before it."""
    return _CHUNK.findall(block)


class Agent(collab.Actor):
    kind = "agent"

    #: The shared text it reads and writes: y-codemirror's default, as in the demo.
    TEXT = "codemirror"
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
        await ctx.step("ack", self.say, room, f"agent-{seq}-ack",
                       f"On it: /{command} for {user}.")
        text = await ctx.step("read", self.read_text, room)
        reply = await ctx.step("think", self.model, command, text, timeout=MODEL_TIMEOUT)
        block = f"\n\n{TITLES[command]} (asked by {user}):\n{reply}\n"
        await ctx.step("write", self.type_answer, room, seq, block)
        await ctx.step("done", self.say, room, f"agent-{seq}-done",
                       f"{TITLES[command]} is in the document, {user}.")
        return reply

    async def say(self, room: str, client_id: str, body: str) -> int:
        """Post to the room; the client_id makes a repeated post a no-op."""
        sent = await self.actor("room", room).call("send", client_id, body, user=AGENT_USER)
        return sent["seq"]

    async def read_text(self, doc: str) -> str:
        copy = await self.document(doc).read()
        return str(copy.get(self.TEXT, type=Text))

    async def type_answer(self, doc: str, seq: int, block: str) -> int:
        """Type `block` at the end of the document, a chunk per update, with a caret
        others see. Resumable: where it got to is in the document (PROGRESS)."""
        ref = self.document(doc)
        chunks = chunks_of(block)
        try:
            while True:
                async with ref.transact() as copy:
                    caret = self._type_next(copy, str(seq), chunks)
                if caret is None:
                    return len(chunks)
                await ref.set_presence({"user": AGENT_LOOK,
                                        "cursor": {"anchor": caret, "head": caret}})
                if self.TYPING_DELAY:
                    await asyncio.sleep(self.TYPING_DELAY)
        finally:
            await ref.set_presence(None)

    def _type_next(self, copy: Doc, entry: str, chunks: list[str]) -> dict | None:
        """Insert the next chunk and its progress record into `copy` (one update);
        returns the caret after it as a relative position (JSON), or None when every
        chunk is in."""
        text = copy.get(self.TEXT, type=Text)
        progress = copy.get(PROGRESS, type=Map)
        done = progress.get(entry)
        if done is None:
            written, at = 0, len(text)
        else:
            written = int(done["written"])
            at = StickyIndex.decode(bytes.fromhex(done["at"]), text).get_index()
        if written >= len(chunks):
            return None
        chunk = chunks[written]
        text.insert(at, chunk)
        caret = text.sticky_index(at + len(chunk), Assoc.BEFORE)
        progress[entry] = {"written": written + 1, "at": caret.encode().hex()}
        return caret.to_json()


registry = collab.Registry(Agent)
