"""A Python client for collab's native protocol (`/ws`, docs/protocol.md): pycrdt
documents kept in sync, chat rooms and actor calls over one WebSocket, with
reconnects that resync documents, catch rooms up and post offline chat messages
once, as client-js does. docs/python-client.md is the guide.

It imports `collab.protocol.codec` and nothing else of the server's, so a bot or
an agent in another process joins like a browser would.

    async with CollabClient("ws://127.0.0.1:1234/ws") as client:
        doc = await client.doc("notes")
        doc.ydoc.get("body", type=pycrdt.Text).insert(0, "hi")
        await doc.saved()
"""

from collab.client.actor import ActorHandle
from collab.client.client import CollabClient
from collab.client.connection import CloseInfo
from collab.client.doc import SyncedDoc
from collab.client.emitter import Event, EventStream
from collab.client.errors import CollabError
from collab.client.room import Room

__all__ = ["ActorHandle", "CloseInfo", "CollabClient", "CollabError", "Event", "EventStream",
           "Room", "SyncedDoc"]
