"""collab: a real-time collaboration server where every document and chat room is an actor.

Documents speak the y-websocket protocol at `/yjs/<doc>`; application actors
subclass `collab.Actor`, declare `@collab.action` methods and are served with
`collab serve --app module:registry`.

The names below load on first use, so `import collab.client` (the Python client)
does not load the server's runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collab.actors.room import Room
    from collab.runtime.actions import ActionError, action
    from collab.runtime.actor import Actor
    from collab.runtime.connections import Conn
    from collab.runtime.queues import consumes
    from collab.runtime.refs import ActorRef
    from collab.runtime.registry import Registry
    from collab.runtime.stateless import StatelessMessage
    from collab.runtime.watches import watch, watch_room
    from collab.runtime.workflows import workflow

__version__ = "0.1.0"

#: Where each public name lives.
_HOMES = {
    "ActionError": "collab.runtime.actions", "action": "collab.runtime.actions",
    "Actor": "collab.runtime.actor", "ActorRef": "collab.runtime.refs",
    "Conn": "collab.runtime.connections", "Registry": "collab.runtime.registry",
    "Room": "collab.actors.room", "StatelessMessage": "collab.runtime.stateless",
    "consumes": "collab.runtime.queues",
    "watch": "collab.runtime.watches", "watch_room": "collab.runtime.watches",
    "workflow": "collab.runtime.workflows",
}
__all__ = ["ActionError", "Actor", "ActorRef", "Conn", "Registry", "Room", "StatelessMessage",
           "action", "consumes", "watch", "watch_room", "workflow"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'collab' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
