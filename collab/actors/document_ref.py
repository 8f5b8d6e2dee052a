"""Server-side edits: a reference through which an actor (or any server code) reads
and edits a document, and shows people who is editing.

    async with self.document("notes").transact() as doc:
        doc.get("body", type=Text).insert(0, "Summary: ...")
    await self.document("notes").set_presence({"user": {"name": "Agent", "color": "#f80"}})

Every operation goes to the document's owning Document actor, on whichever process
owns it (the messages travel, runtime/travels.py). A transaction reads the whole
state into a scratch pycrdt Doc, lets the caller edit it, and sends what changed as
one ordinary update: it is broadcast to every client and committed before
`transact` returns, and edits others made meanwhile merge with it as CRDT edits do.
The edits carry one client id per reference (so a document's state vector does not
grow by one client per edit), which is why transactions through one reference take
turns.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from pycrdt import Doc

from collab.actors.document import ApplyUpdate, BroadcastStateless, Document, Export, SetPresence
from collab.actors.ydoc import EMPTY_UPDATE
from collab.runtime.actions import DEFAULT_CALL_TIMEOUT
from collab.runtime.refs import ActorRef

if TYPE_CHECKING:
    from collab.runtime.mailbox import ActorBase
    from collab.runtime.system import ActorSystem

#: Yjs client ids are 32-bit in the JavaScript implementation (lib0's random uint32).
CLIENT_ID_BITS = 32


class DocumentRef:
    def __init__(self, system: ActorSystem, name: str, *, caller: ActorBase | None = None,
                 timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.name = name
        self._ref = ActorRef(system, Document, name, caller=caller, timeout=timeout)
        #: The Yjs client id this reference's edits and presence carry.
        self.client_id = random.getrandbits(CLIENT_ID_BITS)
        self._turn = asyncio.Lock()
        self._presence_clock = 0

    def __repr__(self) -> str:
        return f"<DocumentRef {self.name!r} client {self.client_id}>"

    async def read(self) -> Doc:
        """A scratch copy of the document as it is now (edits to it go nowhere)."""
        state = await self._ref.ask(Export, "a read")
        doc = Doc(client_id=self.client_id)
        doc.apply_update(state)
        return doc

    @asynccontextmanager
    async def transact(self) -> AsyncIterator[Doc]:
        """Edit the document: `async with ref.transact() as doc:` yields a copy of it;
        what the block changes is sent as one update when it ends (nothing if it
        raises), and committed before the `async with` statement completes."""
        async with self._turn:
            doc = await self.read()
            before = doc.get_state()
            yield doc
            update = doc.get_update(before)
            if update != EMPTY_UPDATE:
                await self._ref.ask(lambda reply: ApplyUpdate(update, reply), "an edit")

    async def set_presence(self, state: dict[str, Any] | None) -> None:
        """Show this editor to the document's clients as an awareness state (a name, a
        colour, a cursor: whatever the editor bindings read, e.g. `{"user": {"name":
        "Agent", "color": "#f80"}}`); None removes it. Clients drop a state they have
        not heard of for 30 s (y-protocols), so set it again while editing."""
        self._presence_clock += 1
        text = "null" if state is None else json.dumps(state)
        await self._ref.ask(
            lambda reply: SetPresence(self.client_id, self._presence_clock, text, reply),
            "a presence")

    async def broadcast_stateless(self, payload: str) -> None:
        """Send `payload` to every client of the document as a stateless message (a
        Hocuspocus provider's `onStateless`; a `doc.stateless` event on `/ws`); nothing
        is stored. Returns once the document has sent it."""
        await self._ref.ask(lambda reply: BroadcastStateless(payload, reply),
                            "a stateless broadcast")
