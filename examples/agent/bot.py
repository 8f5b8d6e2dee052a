"""The agent as a process of its own: it joins a room and its document over the
native protocol with the Python client (collab.client), like a browser would, and
answers `/summarize` and `/todo` the same way the in-server actor does.

    python -m examples.agent.bot ws://127.0.0.1:1234/ws plan [--token T]

Use it when the agent should run elsewhere (its own machine, its own deploy).
What it gives up against the actor (agent.py): no durable workflow. A command
heard while the bot is down is not answered later, and a bot killed mid-answer
does not resume it (though the typing's progress record, writing.py, still means
nothing is ever typed twice).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from pycrdt import Text

from collab.client import CollabClient
from examples.agent.chat import AGENT_LOOK, AGENT_USER, command_of, done, on_it
from examples.agent.models import MODEL_TIMEOUT, Model, load_model
from examples.agent.writing import TEXT, answer_block, chunks_of, type_next

log = logging.getLogger("agent-bot")
#: Seconds between typed chunks.
TYPING_DELAY = 0.05


async def serve(url: str, name: str, *, token: str | None = None,
                model: Model | None = None, ready: asyncio.Event | None = None) -> None:
    """Answer the commands of room `name` in document `name` until cancelled."""
    model = model or load_model()
    async with CollabClient(url, token=token) as client:
        room = await client.room(name, user=None if token else AGENT_USER)
        synced = await client.doc(name)
        synced.awareness.set_local_state_field("user", AGENT_LOOK)
        async with room.messages() as messages:
            if ready is not None:
                ready.set()
            log.info("listening to room %r", name)
            async for message in messages:
                command = command_of(message["body"])
                if command is None or message["user"] == AGENT_USER:
                    continue
                try:
                    await answer(room, synced, message, command, model)
                except Exception:  # one failed command must not stop the bot
                    log.exception("/%s (message %d) failed", command, message["seq"])


async def answer(room, synced, message: dict, command: str, model: Model) -> None:
    seq, user = message["seq"], message["user"]
    await room.send(on_it(command, user), client_id=f"bot-{seq}-ack")
    text = str(synced.ydoc.get(TEXT, type=Text))
    reply = await asyncio.wait_for(model(command, text), MODEL_TIMEOUT)
    chunks = chunks_of(answer_block(command, user, reply))
    try:
        while True:
            with synced.ydoc.transaction():
                caret = type_next(synced.ydoc, str(seq), chunks)
            if caret is None:
                break
            synced.awareness.set_local_state_field("cursor", {"anchor": caret, "head": caret})
            await asyncio.sleep(TYPING_DELAY)
    finally:
        synced.awareness.set_local_state_field("cursor", None)
    await synced.saved()  # committed on the server before we say it is there
    await room.send(done(command, user), client_id=f"bot-{seq}-done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the server's native endpoint, e.g. ws://127.0.0.1:1234/ws")
    parser.add_argument("name", help="the room, and the document of the same name")
    parser.add_argument("--token", help="a token for the server, if it requires one")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        asyncio.run(serve(args.url, args.name, token=args.token))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
