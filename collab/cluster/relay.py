"""Relays: this process's clients of an actor that another process owns.

A client socket may land on any process. When the actor it wants (a
document, a room, any actor it connects to) is owned elsewhere, this process
opens a `Relay` for it: the relay subscribes to the actor's channel, sends
the socket's messages to the owner (runtime/forwarding.py), and writes what
the owner publishes for its sockets (runtime/fanout.py) to them. Gateway
code posts to a relay as it would to a local actor instance.

The owner numbers what it publishes. The relay learns where to start from
the owner (`RelayOpen`), delivers items in order, holds back any that arrive
early, and asks the owner for missing ones (`RelayResume`) when it sees a
gap, and after Redis comes back from an outage; document clients are then
also sent the owner's state vector again, so they re-send anything the owner
missed. When the owner is gone (its channel has no listener, it published
`END`, or a new owner's items appear), or the gap cannot be filled, the
relay closes its sockets with 1012: clients reconnect and sync from scratch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from collab.cluster.bus import Bus
from collab.cluster.fanout import CLOSE, END, EVENT, YJS, RelayOpen, RelayResume
from collab.cluster.forwarding import OwnerUnreachable
from collab.errors import CloseCode, CollabError
from collab.protocol import ywire
from collab.protocol.codec import unpack
from collab.protocol.native import Outgoing, YjsOut
from collab.runtime.travels import peer_of, travel_of

if TYPE_CHECKING:
    from collab.cluster.forwarding import Forwarder

log = logging.getLogger(__name__)

#: Seconds a relay waits for the owner to answer an open or a resume.
ASK_TIMEOUT = 10.0
#: Items held back while waiting for the start or a missing item, at most.
MAX_HELD = 4096


class Relay:
    """Stands in, here, for actor (kind, key) owned by process `owner`."""

    def __init__(self, relays: Relays, kind: str, key: str, owner: str) -> None:
        self.relays = relays
        self.kind = kind
        self.key = key
        self.owner = owner
        self.channel = relays.bus.actor_channel(kind, key)
        self.peers: dict[str, Any] = {}  # this process's sockets, by id
        self._rejoin: dict[str, Any] = {}  # opening messages to send again after a resync
        self._opening: dict[str, asyncio.Future[Any]] = {}  # joins waiting for their answer
        self.token: int | None = None  # the owner's fence token, once it answered
        self.next_seq = 0
        self._held: dict[int, dict[str, Any]] = {}
        self._queued: list[Any] | None = []  # posted before the subscription was made
        self._resuming = False
        self.closed = False
        relays.spawn(self._start())

    def __repr__(self) -> str:
        return f"<Relay {self.kind}:{self.key} owner={self.owner} peers={len(self.peers)}>"

    async def _start(self) -> None:
        await self.relays.bus.subscribe(self.channel, self._received)
        if not self.closed:
            self._ask(lambda reply: RelayOpen(self.relays.node, reply), self._opened)
        queued, self._queued = self._queued or [], None
        for message in queued:
            self._send(message)
        if self.closed:  # every socket left before we got going
            self.relays.bus.unsubscribe(self.channel)

    # -- from this process's sockets to the owner -----------------------------------

    def post(self, message: Any) -> bool:
        """Send a client socket's message to the owner. False once the relay closed."""
        if self.closed:
            return False
        travel = travel_of(message)
        peer = peer_of(message)
        if travel.opens:
            self.peers[peer.id] = peer
            reply = getattr(message, "reply", None)
            if reply is None:
                self._rejoin[peer.id] = message
            else:
                self._opening[peer.id] = reply
                reply.add_done_callback(lambda fut: self._refused(peer, fut))
        elif travel.closes:
            self.peers.pop(peer.id, None)
            self._rejoin.pop(peer.id, None)
        if self._queued is not None:
            self._queued.append(message)
        else:
            self._send(message)
        if travel.closes and not self.peers:
            self._dissolve()
        return True

    def _send(self, message: Any) -> None:
        self.relays.forwarder.send(self.owner, self.kind, self.key, message,
                                   lambda why: self._unheard(message, why))

    def _unheard(self, message: Any, why: str) -> None:
        reason = f"lost the process that owns {self.kind}:{self.key}: {why}"
        self.lost(reason)
        reply = getattr(message, "reply", None)
        if reply is not None and not reply.done():
            reply.set_exception(OwnerUnreachable(f"{reason}; try again shortly"))

    def _refused(self, peer: Any, reply: asyncio.Future[Any]) -> None:
        if self._opening.get(peer.id) is reply:
            del self._opening[peer.id]
        if reply.cancelled() or reply.exception() is not None:
            if self.peers.get(peer.id) is peer:
                del self.peers[peer.id]
                if not self.peers:
                    self._dissolve()

    def _ask(self, make: Callable[[asyncio.Future[Any]], Any],
             done: Callable[[asyncio.Future[Any]], None]) -> None:
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        timer = asyncio.get_running_loop().call_later(
            ASK_TIMEOUT, lambda: reply.done() or reply.set_exception(
                TimeoutError(f"no answer from {self.owner} in {ASK_TIMEOUT:g} s")))
        reply.add_done_callback(lambda _: timer.cancel())
        reply.add_done_callback(done)
        self._send(make(reply))

    # -- from the owner to this process's sockets ---------------------------------------

    def _received(self, payload: bytes) -> None:
        """One publish of the owner: an item, or a list of items' bytes."""
        message = unpack(payload)
        for item in map(unpack, message) if type(message) is list else (message,):
            self._item(item)

    def _item(self, item: dict[str, Any]) -> None:
        if self.closed:
            return
        if self.token is not None:
            if item["t"] != self.token:
                self.lost(f"{self.kind}:{self.key} has a new owner")
                return
            if item["s"] < self.next_seq:
                return  # already delivered (a replayed copy)
        self._held[item["s"]] = item
        if self.token is not None:
            self._drain()
        elif len(self._held) > MAX_HELD:
            self.lost("the owner did not answer in time")

    def _opened(self, reply: asyncio.Future[Any]) -> None:
        error = None if reply.cancelled() else reply.exception()
        if self.closed or self.token is not None:
            return  # gone, or an earlier open (asked again after a reconnect) answered
        if reply.cancelled() or error is not None:
            self.lost(f"could not reach the owner of {self.kind}:{self.key}: {_why(error)}",
                      CloseCode.TRY_AGAIN_LATER)
            return
        start = reply.result()
        self.token, self.next_seq = start["t"], start["s"] + 1
        held = self._held
        if any(item["t"] != self.token for item in held.values()):
            self.lost(f"{self.kind}:{self.key} changed owner while we joined")
            return
        self._held = {seq: item for seq, item in held.items() if seq >= self.next_seq}
        self._drain()

    def _drain(self) -> None:
        held = self._held
        while self.next_seq in held and not self.closed:
            item = held.pop(self.next_seq)
            self.next_seq += 1
            self._deliver(item)
        if held and not self._resuming and not self.closed:
            if len(held) > MAX_HELD:
                self.lost("too far behind the owner")
            else:
                self._resume()

    def _resume(self) -> None:
        self._resuming = True
        self._ask(lambda reply: RelayResume(self.relays.node, self.next_seq, list(self.peers),
                                            reply), self._resumed)

    def _resumed(self, reply: asyncio.Future[Any]) -> None:
        self._resuming = False
        error = None if reply.cancelled() else reply.exception()
        if self.closed:
            return
        if reply.cancelled() or error is not None:
            self.lost(f"missed messages from {self.kind}:{self.key}: {_why(error)}")
            return
        answer = reply.result()
        if answer["t"] != self.token:
            self.lost(f"{self.kind}:{self.key} has a new owner")
            return
        for pid in answer.get("gone", ()):
            peer = self.peers.pop(pid, None)
            self._rejoin.pop(pid, None)
            if peer is not None:
                peer.close(CloseCode.SERVICE_RESTART, "the owner lost track of this socket")
        if not self.peers:
            self._dissolve()
            return
        for payload in answer["items"]:
            item = unpack(payload)
            if item["s"] >= self.next_seq:
                self._held[item["s"]] = item
        if self._held and self.next_seq not in self._held:
            self.lost(f"missed messages from {self.kind}:{self.key} that it no longer has")
            return
        self._drain()

    def _deliver(self, item: dict[str, Any]) -> None:
        kind = item["k"]
        if kind == END:
            self.lost(f"{self.kind}:{self.key} stopped in its process")
            return
        pids = item["to"].get(self.relays.node)
        if not pids:
            return
        peers = self.peers
        if kind == YJS:
            out = YjsOut(self.key, ywire.parse(item["d"]))
            for pid in pids:
                peer = peers.get(pid)
                if peer is not None:
                    peer.send_yjs(out)
        elif kind == EVENT:
            event = Outgoing(item["d"])
            for pid in pids:
                peer = peers.get(pid)
                if peer is not None:
                    peer.send_out(event)
        elif kind == CLOSE:
            code, reason = item["d"]
            for pid in pids:
                peer = peers.get(pid)
                if peer is not None:
                    peer.close(code, reason)

    # -- resync and the end ---------------------------------------------------------------

    def resync(self) -> None:
        """Redis was away: what the owner published meanwhile is lost to us, and what
        our sockets sent may not have reached it. Fetch the first, and let document
        clients re-send the second (the owner answers a join with its state vector).
        An open still waiting for its answer is asked again."""
        if self.closed or self._queued is not None:
            return
        if self.token is None:  # the owner's answer to our open may be what was lost
            self._ask(lambda reply: RelayOpen(self.relays.node, reply), self._opened)
            return
        if not self._resuming:
            self._resume()
        for message in self._rejoin.values():
            self._send(message)

    def lost(self, reason: str, code: int = CloseCode.SERVICE_RESTART) -> None:
        """Close every socket (they reconnect and sync from scratch) and go away."""
        if self.closed:
            return
        log.info("relay %s:%s: closing %d sockets: %s", self.kind, self.key, len(self.peers),
                 reason)
        if self.relays.forget_owner is not None:
            self.relays.forget_owner(self.kind, self.key)  # reconnects claim it
        peers, self.peers = list(self.peers.values()), {}
        opening, self._opening = self._opening, {}
        self._rejoin.clear()
        if peers and self.token is not None:  # the owner may live: let it forget them
            self.relays.forwarder.send_control(self.owner, self.kind, self.key, "relay.leave",
                                               peers=[peer.id for peer in peers])
        for peer in peers:
            reply = opening.get(peer.id)
            if reply is not None and not reply.done():
                # Still joining: the answer says why, and the socket stays open.
                reply.set_exception(OwnerUnreachable(f"{reason}; try again shortly"))
            else:
                peer.close(code, reason[:120])
        self._dissolve()

    def _dissolve(self) -> None:
        self.closed = True
        self.relays.remove(self)
        if self._queued is None:  # else _start unsubscribes once it has subscribed
            self.relays.bus.unsubscribe(self.channel)


def _why(error: BaseException | None) -> str:
    """An ask's failure in words (None: it was cancelled)."""
    if error is None:
        return "cancelled"
    return error.message if isinstance(error, CollabError) else str(error)


class Relays:
    """This process's relays, one per actor owned elsewhere that its sockets use."""

    def __init__(self, forwarder: Forwarder, bus: Bus, watch_interval: float,
                 cut_off_after: float | None = None,
                 forget_owner: Callable[[str, str], None] | None = None) -> None:
        """`watch_interval`: how often owners' channels are counted (a third of the
        liveness TTL). `cut_off_after`: seconds without Redis before the relayed
        sockets are closed (the lease TTL; three intervals by default).
        `forget_owner(kind, key)`: stop believing in an owner that went away, so the
        next request claims the actor."""
        self.forwarder = forwarder
        self.bus = bus
        self.cut_off_after = cut_off_after or 3 * watch_interval
        self.forget_owner = forget_owner
        self.node = forwarder.node
        self.watch_interval = watch_interval
        self._relays: dict[tuple[str, str], Relay] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        bus.on_reconnect(self._resync_all)

    def start(self) -> None:
        self.spawn(self._close_when_cut_off())
        self.spawn(self.bus.watch(self.watch_interval, self._owner_channels, self._owner_gone))
        self.spawn(self.bus.watch(self.watch_interval,
                                  self.forwarder.remote_peers.node_channels,
                                  self.forwarder.remote_peers.node_gone))
        self.spawn(self.bus.watch(self.watch_interval, self.forwarder.pending_channels,
                                  self.forwarder.owner_gone))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def get(self, kind: str, key: str) -> Relay | None:
        return self._relays.get((kind, key))

    def open(self, kind: str, key: str, owner: str) -> Relay:
        relay = self._relays.get((kind, key))
        if relay is None or relay.closed:
            relay = self._relays[(kind, key)] = Relay(self, kind, key, owner)
        return relay

    def remove(self, relay: Relay) -> None:
        if self._relays.get((relay.kind, relay.key)) is relay:
            del self._relays[(relay.kind, relay.key)]

    def __len__(self) -> int:
        return len(self._relays)

    def _owner_channels(self) -> set[str]:
        return {self.bus.node_channel(relay.owner) for relay in self._relays.values()}

    def _owner_gone(self, channel: str) -> None:
        for relay in list(self._relays.values()):
            if self.bus.node_channel(relay.owner) == channel:
                relay.lost(f"the process that owns {relay.kind}:{relay.key} is gone")

    async def _close_when_cut_off(self) -> None:
        """Without Redis for a lease TTL, owners have stopped their actors (they could
        not renew): close our relayed sockets too, rather than let them stall."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.watch_interval)
            since = self.bus.down_since
            if since is not None and loop.time() - since > self.cut_off_after:
                for relay in list(self._relays.values()):
                    relay.lost("Redis is unreachable")

    def _resync_all(self) -> None:
        for relay in list(self._relays.values()):
            relay.resync()
