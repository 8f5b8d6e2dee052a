"""collab: a real-time collaboration server where every document and chat room is an actor.

Documents speak the y-websocket protocol at `/yjs/<doc>`; application actors
subclass `collab.Actor`, declare `@collab.action` methods and are served with
`collab serve --app module:registry`.
"""

from collab.actors.room import Room
from collab.runtime.actions import ActionError, action
from collab.runtime.actor import Actor
from collab.runtime.connections import Conn
from collab.runtime.queues import consumes
from collab.runtime.refs import ActorRef
from collab.runtime.registry import Registry
from collab.runtime.stateless import StatelessMessage
from collab.runtime.watches import watch
from collab.runtime.workflows import workflow

__version__ = "0.1.0"
__all__ = ["ActionError", "Actor", "ActorRef", "Conn", "Registry", "Room", "StatelessMessage",
           "action", "consumes", "watch", "workflow"]
