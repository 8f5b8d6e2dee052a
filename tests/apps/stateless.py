"""Stateless hooks for the Hocuspocus tests (`--app tests.apps.stateless:registry`):
"ping" is answered to its sender, "shout:<text>" broadcast to the document,
"boom" fails (logged, nothing sent); documents under `quiet/` have no hook.
Two hooks run for every document in the order registered: `count` first."""

from __future__ import annotations

import asyncio

import collab

registry = collab.Registry()


#: How many stateless messages the hooks heard, by document (read by "count?").
heard: dict[str, int] = {}


@registry.stateless("[!q]*")
def count(message: collab.StatelessMessage) -> None:  # a plain function hook
    heard[message.doc] = heard.get(message.doc, 0) + 1


@registry.stateless("[!q]*")
async def answer(message: collab.StatelessMessage) -> None:
    await asyncio.sleep(0)  # a coroutine hook
    if message.payload == "ping":
        message.reply(f"pong:{message.user}:{message.doc}:{message.can_write}")
    elif message.payload.startswith("shout:"):
        await message.broadcast(message.payload.removeprefix("shout:"))
    elif message.payload == "count?":
        message.reply(str(heard[message.doc]))
    elif message.payload == "boom":
        raise RuntimeError("the hook failed on purpose")
