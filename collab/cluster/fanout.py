"""The owner's side of clients connected through other processes.

A socket on another process that joins a document or connects to an actor
appears here as a `RemotePeer`: a Peer for documents and an Peer for actor
connections, so actor code treats it like a local socket. What the actor
writes to remote peers is collected during the loop turn and published once
per message on the actor's channel, `collab:actor:<kind>:<key>`, naming the
sockets it is for; each relaying process (runtime/relay.py) writes it to its
own sockets. A broadcast to 50 remote peers on 3 processes is one publish.

What one loop turn produced for an actor travels as one publish: a single item,
or a list of them when there are several (a broadcast and the echo of a
commit), so relays parse one pub/sub message per turn rather than one per item.
Every item carries the owner's fence token and a sequence number
that grows by one per item, so a relay sees a gap (an item Redis dropped) or
a new owner at once. The last items are kept for a while (REPLAY_SECONDS, at most
REPLAY_BYTES per actor), so a relay that missed some asks for them again
(`RelayResume`) instead of starting over; one that asks later gets
`replay_unavailable` and its clients resync from scratch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collab.cluster.bus import Bus
from collab.errors import CollabError
from collab.protocol import ywire
from collab.protocol.codec import pack
from collab.runtime.mailbox import ActorBase
from collab.runtime.ownership import OwnerRequest
from collab.runtime.peer import PeerGone
from collab.runtime.replies import answer_with
from collab.runtime.travels import travels

if TYPE_CHECKING:
    from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)

#: Items an owner keeps for relays that missed some: how many, how many bytes in all,
#: and for how long. A relay resumes within a second or two of a gap or a Redis
#: reconnect; an actor that goes quiet lets go of its items after REPLAY_SECONDS.
REPLAY_DEPTH = 4096
REPLAY_BYTES = 1024 * 1024
REPLAY_SECONDS = 30.0

#: Item kinds: a Yjs message, an actor event, close one socket, the actor stopped here.
YJS, EVENT, CLOSE, END = "y", "e", "x", "end"


class ReplayUnavailable(CollabError):
    """The items a relay asked for are no longer kept (or this is a new owner)."""

    code = "replay_unavailable"
    status = 503


# -- mailbox messages -----------------------------------------------------------


@travels("relay.open")
@dataclass(frozen=True, slots=True)
class RelayOpen(OwnerRequest):
    """Process `node` starts relaying this actor; `reply` gets {"t": token, "s": seq},
    the last item published before its first client's messages are handled."""

    node: str
    reply: asyncio.Future[Any] = field(repr=False)

    def answer(self, actor: ActorBase) -> None:
        answer_with(self.reply, lambda: _remote_peers(actor).fanout_for(actor).baseline())


@travels("relay.resume")
@dataclass(frozen=True, slots=True)
class RelayResume(OwnerRequest):
    """Process `node` missed items from `from_seq` on; `reply` gets {"t", "items",
    "gone"}, or ReplayUnavailable. `gone`: those of its sockets `peers` that this
    owner no longer knows (it thought their process dead): they must reconnect."""

    node: str
    from_seq: int
    peers: list[str]
    reply: asyncio.Future[Any] = field(repr=False)

    def answer(self, actor: ActorBase) -> None:
        remotes = _remote_peers(actor)

        def replay() -> dict[str, Any]:
            result = remotes.fanout_for(actor).replay(self.from_seq)
            result["gone"] = [pid for pid in self.peers
                              if not remotes.known(actor.kind, actor.key, self.node, pid)]
            return result

        answer_with(self.reply, replay)


def _remote_peers(actor: ActorBase) -> RemotePeers:
    """The remote peers of the process `actor` lives in (its ownership is a Cluster)."""
    return actor.system.ownership.remote_peers  # type: ignore[attr-defined]


# -- the owner's stand-ins for remote sockets --------------------------------------


class RemotePeer:
    """A client socket on process `node` (its id there is `pid`) joined to one actor."""

    __slots__ = ("_fanout", "_remotes", "closed", "echo_ack", "id", "key", "kind", "node", "pid")

    def __init__(self, remotes: RemotePeers, kind: str, key: str, node: str, pid: str,
                 echo_ack: bool) -> None:
        self._remotes = remotes
        self.kind = kind
        self.key = key
        self.node = node
        self.pid = pid
        self.id = f"{node}/{pid}"
        self.echo_ack = echo_ack
        self.closed = False
        #: The owning instance's Fanout, found on the first send. A peer lives no longer
        #: than that instance (forget_actor closes it), so it never goes stale.
        self._fanout: Fanout | None = None

    def __repr__(self) -> str:
        return f"<RemotePeer {self.id} {self.kind}:{self.key}>"

    def send_yjs(self, out: Any) -> None:
        self._send(YJS, out)

    def send_sync(self, out: Any) -> None:
        # The relay's process writes it as any other frame (without the exemption).
        self._send(YJS, out)

    def send_out(self, out: Any) -> None:
        self._send(EVENT, out)

    def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self._send(CLOSE, (code, reason))
            self.closed = True

    def _send(self, kind: str, obj: Any) -> None:
        if self.closed:
            return
        fanout = self._fanout
        if fanout is None:
            fanout = self._fanout = self._remotes.fanout_of(self.kind, self.key)
            if fanout is None:
                return  # the actor is not live here: nothing to send for
        fanout.add(kind, obj, self)


class RemotePeers:
    """Every RemotePeer of this process's actors, one per (actor, node, socket), and
    each owned actor's Fanout once a remote peer joined it."""

    def __init__(self, system: ActorSystem, bus: Bus) -> None:
        self.system = system
        self.bus = bus
        self._peers: dict[tuple[str, str, str, str], RemotePeer] = {}
        self._fanouts: dict[tuple[str, str], tuple[ActorBase, Fanout]] = {}

    def replay_bytes(self) -> int:
        return sum(fanout.kept_bytes for _, fanout in self._fanouts.values())

    def trim_replays(self) -> int:
        """Trim every owned actor's replay items by age; returns the bytes still kept."""
        kept = 0
        for _, fanout in self._fanouts.values():
            fanout.trim()
            kept += fanout.kept_bytes
        return kept

    def fanout_for(self, actor: ActorBase) -> Fanout:
        """What `actor` (live here) publishes for relays, created on first use."""
        ident = (actor.kind, actor.key)
        held = self._fanouts.get(ident)
        if held is None or held[0] is not actor:
            held = self._fanouts[ident] = (
                actor, Fanout(self.bus, actor.kind, actor.key, actor.fence_token or 0))
        return held[1]

    def actor_stopped(self, actor: ActorBase) -> None:
        """`actor` stopped here: its relays hear it (END), its peers mean nothing now."""
        held = self._fanouts.get((actor.kind, actor.key))
        if held is None or held[0] is not actor:
            return
        del self._fanouts[(actor.kind, actor.key)]
        held[1].end()
        self.forget_actor(actor.kind, actor.key)

    def get(self, kind: str, key: str, node: str, pid: str, echo_ack: bool) -> RemotePeer:
        ident = (kind, key, node, pid)
        peer = self._peers.get(ident)
        if peer is None or peer.closed:
            peer = self._peers[ident] = RemotePeer(self, kind, key, node, pid, echo_ack)
        return peer

    def known(self, kind: str, key: str, node: str, pid: str) -> bool:
        peer = self._peers.get((kind, key, node, pid))
        return peer is not None and not peer.closed

    def drop(self, peer: RemotePeer) -> None:
        ident = (peer.kind, peer.key, peer.node, peer.pid)
        if self._peers.get(ident) is peer:
            del self._peers[ident]

    def leave(self, kind: str, key: str, node: str, pids: list[str]) -> None:
        """A relay on `node` let go of these sockets without each saying goodbye."""
        for pid in pids:
            peer = self._peers.get((kind, key, node, pid))
            if peer is not None:
                self._gone(peer)

    def forget_actor(self, kind: str, key: str) -> None:
        """The actor stopped here: its relays were told (END); its peers mean nothing now."""
        for ident in [ident for ident in self._peers if ident[0] == kind and ident[1] == key]:
            self._peers.pop(ident).closed = True

    def fanout_of(self, kind: str, key: str) -> Fanout | None:
        actor = self.system.live(self.system.registry.resolve(kind), key)
        return self.fanout_for(actor) if actor is not None else None

    def node_channels(self) -> set[str]:
        return {self.bus.node_channel(node) for _, _, node, _ in self._peers}

    def node_gone(self, channel: str) -> None:
        """Process behind `channel` is gone: its sockets leave their actors."""
        gone = [peer for peer in self._peers.values()
                if self.bus.node_channel(peer.node) == channel]
        if gone:
            log.warning("%s has no listener: dropping its %d sockets", channel, len(gone))
        for peer in gone:
            self._gone(peer)

    def _gone(self, peer: RemotePeer) -> None:
        self.drop(peer)
        peer.closed = True
        actor = self.system.live(self.system.registry.resolve(peer.kind), peer.key)
        if actor is not None:
            actor.post(PeerGone(peer))


# -- one actor's publications -------------------------------------------------------


class Fanout:
    """What one owned actor publishes for relays: coalesced, numbered, kept for replay."""

    def __init__(self, bus: Bus, kind: str, key: str, token: int) -> None:
        self.bus = bus
        self.channel = bus.actor_channel(kind, key)
        self.token = token
        self.seq = 0
        #: (seq, payload, loop time published), oldest first.
        self._recent: deque[tuple[int, bytes, float]] = deque()
        self._recent_bytes = 0
        self._entries: list[tuple[str, Any, dict[str, list[str]]]] = []

    def add(self, kind: str, obj: Any, peer: RemotePeer) -> None:
        """Queue `obj` for `peer`. Consecutive adds of the same object (a broadcast's
        loop over its peers) become one item naming all of them."""
        entries = self._entries
        if entries and entries[-1][1] is obj and entries[-1][0] == kind:
            targets = entries[-1][2]
        else:
            if not entries:
                asyncio.get_running_loop().call_soon(self.flush)
            targets = {}
            entries.append((kind, obj, targets))
        targets.setdefault(peer.node, []).append(peer.pid)

    def flush(self, *last: dict[str, Any]) -> None:
        """Publish what this loop turn queued (and `last`), as one message."""
        entries, self._entries = self._entries, []
        payloads = []
        for kind, obj, targets in entries:
            if kind == YJS:
                data: Any = ywire.serialize(obj.message)
            elif kind == EVENT:
                data = obj.message
            else:
                data = list(obj)
            payloads.append(self._number({"k": kind, "d": data, "to": targets}))
        payloads.extend(self._number(item) for item in last)
        if len(payloads) == 1:
            self.bus.publish(self.channel, payloads[0])
        elif payloads:
            self.bus.publish(self.channel, pack(payloads))

    def end(self) -> None:
        """The actor stops here: relays close their sockets, which reconnect."""
        self.flush({"k": END})

    def baseline(self) -> dict[str, int]:
        return {"t": self.token, "s": self.seq}

    def replay(self, from_seq: int) -> dict[str, Any]:
        """The items from `from_seq` on. Raises ReplayUnavailable if some are gone."""
        self.flush()
        if from_seq > self.seq:
            return {"t": self.token, "items": []}
        self.trim()
        recent = self._recent
        if not recent or recent[0][0] > from_seq:
            raise ReplayUnavailable(f"items from {from_seq} are no longer kept "
                                    f"(oldest kept: {recent[0][0] if recent else self.seq + 1})")
        return {"t": self.token,
                "items": [payload for seq, payload, _ in recent if seq >= from_seq]}

    @property
    def kept_bytes(self) -> int:
        return self._recent_bytes

    def trim(self) -> None:
        """Let go of the items past REPLAY_DEPTH, REPLAY_BYTES or REPLAY_SECONDS."""
        recent = self._recent
        oldest = asyncio.get_running_loop().time() - REPLAY_SECONDS
        while recent and (len(recent) > REPLAY_DEPTH or self._recent_bytes > REPLAY_BYTES
                          or recent[0][2] < oldest):
            self._recent_bytes -= len(recent.popleft()[1])

    def _number(self, item: dict[str, Any]) -> bytes:
        """Give `item` the next sequence number, keep it for replay; its bytes."""
        self.seq += 1
        item["t"] = self.token
        item["s"] = self.seq
        payload = pack(item)
        self._recent.append((self.seq, payload, asyncio.get_running_loop().time()))
        self._recent_bytes += len(payload)
        self.trim()
        return payload
