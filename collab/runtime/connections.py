"""Clients connected to an actor: per-connection params and state, events to one or all.

A client connects a socket to an actor (the native protocol's `actor.connect`);
the actor sees a `Conn` for each, with the parameters the client sent and a
dict of ephemeral state, and pushes events with `conn.send` or
`actor.broadcast`. An event is encoded once per wire format however many
connections receive it.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from collab.protocol.native import actor_event
from collab.runtime.peer import Peer
from collab.runtime.travels import travels

_ids = itertools.count(1)


class Conn:
    """One client connected to one actor."""

    __slots__ = ("_key", "_kind", "id", "params", "peer", "state", "user")

    def __init__(self, peer: Peer, kind: str, key: str, params: dict[str, Any],
                 user: str | None = None) -> None:
        self.id = f"{peer.id}.{next(_ids)}"
        self.peer = peer
        self.params = params
        #: The user id of the client's verified token (its `sub`); None when the server
        #: runs without auth (development mode), where only `params` say who it is.
        self.user = user
        #: Ephemeral per-connection data; gone when the client disconnects.
        self.state: dict[str, Any] = {}
        self._kind = kind
        self._key = key

    def __repr__(self) -> str:
        return f"<Conn {self.id} {self._kind}:{self._key}>"

    @property
    def closed(self) -> bool:
        return self.peer.closed

    def send(self, event: str, data: Any = None) -> None:
        """Push `event` with `data` (msgpack/JSON-serializable) to this client only."""
        self.peer.send_out(actor_event(self._kind, self._key, event, data))


# -- mailbox messages ---------------------------------------------------------


@travels("actor.connect", opens=True)
@dataclass(frozen=True, slots=True)
class Connect:
    """Connect `peer` with `params`; `reply` gets the Conn's id, or the refusal."""

    peer: Peer
    params: dict[str, Any]
    reply: asyncio.Future[Any] = field(repr=False)
    #: The verified token's user id, None without auth (becomes `Conn.user`).
    user: str | None = None


@travels("actor.disconnect", closes=True)
@dataclass(frozen=True, slots=True)
class Disconnect:
    """`peer` leaves (it asked to, or its socket closed)."""

    peer: Peer
    reply: asyncio.Future[Any] | None = field(default=None, repr=False)
