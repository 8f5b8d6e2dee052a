"""Where actors live: the runtime's one question to the world outside this process.

Every actor is owned by exactly one process. Alone, that is this one, and this
module's `Ownership` says so at no cost. When several processes share a store,
collab/cluster plugs in its own (leases, forwarding, relays) through
the same methods; the runtime never imports it and never asks which it has.

The runtime asks at four moments: an actor is about to load (`claim`: the lease
token its writes carry, or `OwnedElsewhere`), it has saved for the last time
(`release`), a message arrives for an actor not loaded here (`route`), and a
load turned out to be owned elsewhere after all (`redirect`). The owner side
calls back `ActorBase._ownership_lost` when another process takes an actor over.
Requests the owner side needs answered inside an actor's mailbox (one message at
a time, like everything else) are `OwnerRequest`s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collab.errors import CloseCode, CollabError

if TYPE_CHECKING:
    from collab.runtime.mailbox import ActorBase


class OwnedElsewhere(CollabError):
    """Another process owns the actor (`node`), and the request could not go there."""

    code = "owned_elsewhere"
    status = 503
    close_code = CloseCode.TRY_AGAIN_LATER

    def __init__(self, message: str, node: str) -> None:
        super().__init__(message)
        self.node = node


#: What `Ownership.route` answers for a message to be handled in this process.
HERE = object()


class OwnerRequest:
    """A message the ownership layer answers inside the actor's mailbox."""

    __slots__ = ()

    def answer(self, actor: ActorBase) -> None:
        raise NotImplementedError


class Ownership:
    """One process: every actor is owned here, nothing is ever elsewhere."""

    #: This process's name among several; None when it is alone.
    node: str | None = None

    async def claim(self, actor: ActorBase) -> int | None:
        """Own `actor` before it loads; returns the fence token its writes must carry
        (None: no other process writes, no fencing). Raises OwnedElsewhere."""
        return None

    async def release(self, actor: ActorBase) -> None:
        """`actor` stopped here after its last write committed."""

    def route(self, kind: type[ActorBase], key: str, message: Any) -> Any:
        """For an actor not loaded here: HERE to handle `message` in this process, or
        deliver it to the actor's owner elsewhere and return this process's stand-in
        it went through (None if it was forwarded with none)."""
        return HERE

    def redirect(self, owner: str, kind: type[ActorBase], key: str, message: Any) -> bool:
        """A load found `owner` holding (kind, key): send `message` there. False if it
        cannot go (the caller then refuses it)."""
        return False

    def present(self, kind: type[ActorBase], key: str) -> Any:
        """This process's stand-in for (kind, key) owned elsewhere, if it has one."""
        return None

    def elsewhere(self, kind: str, key: str) -> bool:
        """True if another process is known to own (kind, key) right now."""
        return False

    async def loaded_elsewhere(self, kind: str, keys: list[str]) -> set[str]:
        """Which of `keys` a live process other than this one has loaded (asked
        of whoever keeps track: for listings, so it may be a moment old)."""
        return set()
