"""Stateless hooks: the application's code for the messages clients send about a
document that are never stored (Hocuspocus's `provider.sendStateless(payload)`).

    registry = collab.Registry(Indexer)

    @registry.stateless("notes/*")
    async def on_stateless(message: collab.StatelessMessage) -> None:
        if message.payload == "ping":
            message.reply("pong")                   # to the sender alone
        elif message.can_write:
            await message.broadcast(message.payload)  # to every client of the document

Every hook whose pattern matches the document runs, in the order they were
registered, one message at a time per socket (the socket is not read meanwhile),
each bounded by HOOK_TIMEOUT. A hook that raises is logged and the next one runs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

#: Seconds a stateless hook may take before it is cancelled (as an actor call).
HOOK_TIMEOUT = 30.0

#: What a hook is: called with the message; may be a coroutine function.
StatelessFunction = Callable[["StatelessMessage"], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class StatelessHook:
    pattern: str  # fnmatch, as @collab.watch: `*`, `?`, `[...]`
    fn: StatelessFunction

    def matches(self, doc: str) -> bool:
        return fnmatch.fnmatchcase(doc, self.pattern)


@dataclass(frozen=True, slots=True)
class StatelessMessage:
    """One stateless message from a client, as a hook receives it."""

    #: The document it is about (without a provider's session id).
    doc: str
    #: The client's text, as it sent it (often JSON: parse it yourself).
    payload: str
    #: Who sent it: the token's user (in development mode, with no auth, "").
    user: str
    #: Whether the sender may change the document (False: a read-only token).
    can_write: bool
    _reply: Callable[[str], None] = field(repr=False)
    _broadcast: Callable[[str], Awaitable[Any]] = field(repr=False)

    def reply(self, payload: str) -> None:
        """Send `payload` back to the sender alone, on this document (its provider's
        `onStateless`). Never blocks; dropped if the sender has gone."""
        self._reply(_text(payload))

    async def broadcast(self, payload: str) -> None:
        """Send `payload` to every client of this document, the sender included
        (Hocuspocus's `document.broadcastStateless`), on every server process; returns
        once the document has sent it. Raises what the document raises when it
        cannot be reached (collab.errors.CollabError subclasses)."""
        await self._broadcast(_text(payload))


def _text(payload: str) -> str:
    if not isinstance(payload, str):
        raise TypeError(f"a stateless payload is a str, not {type(payload).__name__}")
    return payload
