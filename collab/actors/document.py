"""The Document actor: one pycrdt Doc in memory, its connections, its update log.

Per update: apply to the doc, queue it for broadcast and for the log. When the
mailbox empties, everything queued goes out as one merged update per
connection (encoded once), and the log rows go to the group committer; a
sender's own updates are echoed back only after their commit (the durable ack).
A timer-driven compaction folds the log into a snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pycrdt import Doc

from collab.actors import webhooks
from collab.actors.awareness import AwarenessTable
from collab.actors.incarnations import Retired
from collab.actors.restore import RestoreError, restoring_update
from collab.actors.versions import (
    AUTO,
    NAMED,
    RESTORE,
    VersionBook,
    VersionNotFound,
    describe,
)
from collab.actors.ydoc import (
    EMPTY_UPDATE,
    compaction,
    doc_from_storage,
    importable,
    integrate,
    is_panic,
    merge_as_written,
    writers_from_storage,
)
from collab.errors import (
    CloseCode,
    DocumentNotFound,
    DocumentTooLarge,
    InvalidPayload,
    RemoteProtocolError,
    ShuttingDown,
    close_code_for,
    store_error,
)
from collab.protocol import ywire
from collab.protocol.codec import pack
from collab.protocol.native import Outgoing, YjsOut
from collab.protocol.yvalues import WriterBytes
from collab.runtime.actor import Actor
from collab.runtime.mailbox import BUDGET, ActorBase, TimerFired
from collab.runtime.notify import Notifier, WatchersTold
from collab.runtime.ownership import OwnedElsewhere
from collab.runtime.peer import Peer, PeerGone
from collab.runtime.replies import answer, fail
from collab.runtime.travels import travels
from collab.runtime.waker import TimersDue
from collab.storage.base import AppendUpdate, DeleteDocument, ReplaceSnapshot

if TYPE_CHECKING:
    from collab.runtime.system import ActorSystem

log = logging.getLogger(__name__)
T = TypeVar("T")

COMPACT_TIMER = "compact"
#: Looks whether a document whose clients are all quiet can unload its CRDT.
QUIET_TIMER = "quiet"
#: What a document is estimated to hold (runtime/budget.py): the actor, its tables
#: and an empty CRDT (13-14 KiB of resident memory per small document, measured with
#: 5,000), plus its content as pycrdt objects, a few times its stored size;
#: unloaded, the actor alone.
LOADED_DOC_BYTES = 14 * 1024
CRDT_BYTES_PER_STORED_BYTE = 4
UNLOADED_DOC_BYTES = 6 * 1024
#: The most update bytes a change notification carries (a queue message holds 64 KiB).
WATCH_UPDATE_BYTES = 48 * 1024
#: Fires when awareness changes held back by the document's relay budget may go.
AWARENESS_TIMER = "awareness"
#: The first byte of a Yjs v1 update with no structs (a varUint 0): it only deletes.
DELETIONS_ONLY = b"\x00"
#: Seconds a compaction pauses between its steps (a few per compaction), so that
#: updates arriving meanwhile are broadcast before it goes on.
STEP_PAUSE = 0.001
#: How far past its quota deletions may take a full document, so its users can make
#: room: compaction then folds the deleted content away and the size drops.
DELETION_HEADROOM = 1.1


# -- messages -----------------------------------------------------------------


@travels("doc.join", opens=True)
@dataclass(frozen=True, slots=True)
class Join:
    peer: Peer


@travels("doc.leave", closes=True)
@dataclass(frozen=True, slots=True)
class Leave:
    peer: Peer


@travels("doc.inbound")
@dataclass(frozen=True, slots=True)
class Inbound:
    """A parsed y-websocket message from a connected peer."""

    peer: Peer
    message: ywire.Message

    def to_wire(self) -> dict[str, Any]:
        return {"data": ywire.serialize(self.message)}

    @staticmethod
    def from_wire(fields: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"message": ywire.parse(fields["data"])}
        except (KeyError, RemoteProtocolError) as exc:
            raise ValueError(f"bad doc.inbound: {exc}") from None


@travels("doc.subscribe", opens=True)
@dataclass(frozen=True, slots=True)
class Subscribe:
    """A native-protocol peer subscribes, sending its state vector. `reply` gets
    {"sv": ours, "update": what it lacks, "awareness": states or None}."""

    peer: Peer
    state_vector: bytes
    reply: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class SubscribeDurable:
    """`subscribe`, held until everything the document held when it came was committed
    (`error`: the commit's, if that failed)."""

    subscribe: Subscribe
    error: BaseException | None


@travels("doc.update")
@dataclass(frozen=True, slots=True)
class PeerUpdate:
    """A native-protocol peer's update; `reply` gets its log seq once committed
    (the "saved" ack), or None for an update that changed nothing."""

    peer: Peer
    update: bytes
    reply: asyncio.Future[int | None]


@travels("doc.awareness")
@dataclass(frozen=True, slots=True)
class PeerAwareness:
    """A native-protocol peer's awareness update; `reply` is answered at once."""

    peer: Peer
    payload: bytes
    reply: asyncio.Future[None]


@travels("doc.apply")
@dataclass(frozen=True, slots=True)
class ApplyUpdate:
    """An update from the HTTP API; `reply` gets the log seq once committed."""

    update: bytes
    reply: asyncio.Future[int]


@dataclass(frozen=True, slots=True)
class Read:
    """Run `fn(doc)` inside the actor and send its result to `reply`."""

    fn: Callable[[Doc], Any]
    reply: asyncio.Future[Any]


@travels("doc.export")
@dataclass(frozen=True, slots=True)
class Export:
    """The whole document as one Yjs v1 update, for the HTTP export."""

    reply: asyncio.Future[bytes]


@travels("doc.delete")
@dataclass(frozen=True, slots=True)
class DeleteDoc:
    """End the document's incarnation (`DELETE /api/docs/<doc>`): its content goes
    and may never come back; `reply` gets the new epoch once that is committed.
    Its clients are told: y-websocket sockets close with 4410, `/ws` ones get a
    `doc.deleted` event."""

    reply: asyncio.Future[int]


@travels("doc.replace")
@dataclass(frozen=True, slots=True)
class ReplaceDoc:
    """Begin a new incarnation holding `update` (`PUT /api/docs/<doc>`), whether or
    not the document existed; its clients are told as for DeleteDoc. `reply` gets
    the new epoch."""

    update: bytes
    reply: asyncio.Future[int]


@travels("doc.version")
@dataclass(frozen=True, slots=True)
class MakeVersion:
    """Keep the document's state now as a named version (`POST …/versions`); `reply`
    gets the version's description once it is stored."""

    name: str
    author: str | None
    reply: asyncio.Future[dict[str, Any]]


@travels("doc.restore")
@dataclass(frozen=True, slots=True)
class RestoreVersion:
    """Make every root's content what it was in version `version`, by a normal update
    (`POST …/versions/<id>/restore`), after keeping the state it replaces as a
    version; `reply` gets {"seq", "saved_as"} once the update is committed."""

    version: int
    author: str | None
    reply: asyncio.Future[dict[str, Any]]


@travels("doc.presence")
@dataclass(frozen=True, slots=True)
class SetPresence:
    """Server-side awareness: show `client_id` (an editor with no socket, such as an
    agent editing through a DocumentRef) with `state` (JSON text, "null" removes
    it) at `clock`; `reply` is answered once it went out to the clients."""

    client_id: int
    clock: int
    state: str
    reply: asyncio.Future[None]


@travels("doc.stateless")
@dataclass(frozen=True, slots=True)
class BroadcastStateless:
    """Send `payload`, an application's stateless message (runtime/stateless.py), to
    every client of the document: a `doc.stateless` event, which the Hocuspocus
    endpoint writes as its Stateless message and `/yjs`, which has no such message,
    drops. `reply` is answered once it went out."""

    payload: str
    reply: asyncio.Future[None]


@dataclass(frozen=True, slots=True)
class AutoVersion:
    """Time for an automatic version: the document was edited for a while."""


@dataclass(frozen=True, slots=True)
class Committed:
    out: YjsOut  # the batch's broadcast, held back from its senders until now
    senders: set[Peer]
    replies: list[tuple[asyncio.Future[int], int]]
    rows: int
    size: int
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class Compacted:
    epoch: int  # the incarnation it compacted: moot if the document was deleted since
    upto_seq: int
    folded: tuple[int, int]  # (rows, bytes) removed from the log
    snapshot_bytes: int  # the size of the snapshot that replaced them
    error: BaseException | None


@dataclass(slots=True)
class _Outbox:
    """Work accumulated during one mailbox drain, flushed by `_after_drain`."""

    broadcast: list[tuple[Peer | None, bytes]] = field(default_factory=list)
    writes: list[AppendUpdate] = field(default_factory=list)
    replies: list[tuple[asyncio.Future[int], int]] = field(default_factory=list)


#: What a client refused at join is told, by the error (else: could not be loaded).
_CLOSE_REASONS = {ShuttingDown: "server restarting",
                  OwnedElsewhere: "document open in another process"}


@dataclass(frozen=True, slots=True)
class Unload:
    """The memory budget asks a document whose clients are quiet to unload its CRDT."""


@dataclass(frozen=True, slots=True)
class Unloaded:
    """What a document keeps of its CRDT while it is unloaded with its clients still
    connected ("hibernating connections"): enough to greet a client that joins, and
    to answer and hear a client that holds exactly this state, without loading."""

    state_vector: bytes
    #: The update a client holding `state_vector` lacks: only the delete set.
    up_to_date: bytes


class NotSubscribed(RemoteProtocolError):
    code = "not_subscribed"


#: The owner of the awareness states server code sets (SetPresence): not a socket,
#: so every client is sent them and no socket's leaving removes them.
SERVER_EDITORS = "server editors"


class Document(Actor):
    """A Yjs document. Its durable state is the update log and snapshot, not `state`."""

    kind = "doc"

    # Its own fields in slots: thousands of documents stay loaded, and beside the
    # base classes' ~20 fields (a key-sharing dict) a dict for all ~50 is 1.6 KiB.
    __slots__ = ("_auto_pending", "_compacting", "_compaction", "_drain_sv", "_edited_at",
                 "_in_flight", "_kept_bytes", "_kept_rows", "_outbox", "_touched", "_unloading",
                 "awareness", "doc", "epoch", "log_bytes", "log_rows", "peers", "retired", "seq",
                 "snapshot_bytes", "snapshot_seq", "stored_bytes", "unloaded", "versions",
                 "watches", "writers")

    @classmethod
    def ref(cls, system: ActorSystem, name: str, caller: ActorBase | None = None) -> Any:
        """A DocumentRef to document `name` (what `Actor.document` returns)."""
        from collab.actors.document_ref import DocumentRef  # it builds on this module

        return DocumentRef(system, name, caller=caller)

    def __init__(self, key: str, system: ActorSystem, predecessor: ActorBase | None = None) -> None:
        super().__init__(key, system, predecessor)
        #: The CRDT; None until `_load` reads it, and while it is unloaded and only
        #: `unloaded` is kept (clients connected but quiet for
        #: `connected_idle_timeout`: see `_unload`).
        self.doc: Doc | None = None
        #: How writers encoded the objects they embedded: every update sent out is
        #: re-encoded by pycrdt, which reorders their keys; `restore` puts them back.
        self.writers = WriterBytes()
        self.unloaded: Unloaded | None = None
        self._touched = 0.0  # loop time of the last message that needed the CRDT
        self._unloading = False  # an Unload is in the mailbox
        self.peers: set[Peer] = set()
        self.awareness = AwarenessTable()
        self.seq = 0  # last log sequence number handed out
        self.snapshot_seq = 0  # the stored snapshot covers log rows up to here
        self.log_rows = 0  # committed rows since the snapshot
        self.log_bytes = 0
        self.snapshot_bytes = 0
        #: What the document takes in the store, counting updates not yet committed:
        #: the snapshot plus every log row since. Checked against the size quota.
        self.stored_bytes = 0
        self._outbox = _Outbox()
        self._in_flight = 0  # commits not yet acknowledged
        self._kept_rows = self._kept_bytes = 0  # rows whose commit failed, to be written again
        self._compacting = False
        self._compaction: asyncio.Future[None] | None = None
        #: The incarnation the document is in, and what earlier ones held
        #: (actors/incarnations.py): updates carrying deleted content are refused.
        self.epoch = 1
        self.retired = Retired(None)
        self.versions = VersionBook(key)
        #: Who watches this document (runtime/watches.py), and the state vector before
        #: this drain's first change (where the next notification starts from).
        self.watches = system.registry.watches_for(key) + webhooks.watches_for(
            system.settings, key)
        if self.watches:
            self.notifier = Notifier(self, self.watches)
        self._drain_sv: bytes | None = None
        #: Loop time of the first edit since the last version (None: none since).
        self._edited_at: float | None = None
        self._auto_pending = False  # an AutoVersion is in the mailbox

    # -- lifecycle ------------------------------------------------------------

    async def _load(self) -> None:
        stored = await self.system.store.load_document(self.key)
        self.doc = doc_from_storage(stored)
        self.writers = writers_from_storage(stored)
        self.seq = stored.last_seq
        self.snapshot_seq = stored.snapshot_seq
        self.log_rows = len(stored.updates)
        self.log_bytes = stored.log_bytes
        self.snapshot_bytes = len(stored.snapshot or b"")
        self.stored_bytes = self.snapshot_bytes + self.log_bytes
        self.epoch = stored.epoch
        self.retired = Retired(stored.retired)
        self._saved = pack(self.state)  # a document keeps no actor state: never write one
        if self.watches:  # a notification due while it slept goes out now
            now = time.time()
            for record in await self.system.store.load_timers(self.kind, self.key):
                self.schedule.track(record)
                if record.due <= now:
                    self._mailbox.appendleft(TimersDue())
        self._maybe_schedule_compaction()

    def _may_sleep(self) -> bool:
        return not self.peers

    def _can_hibernate(self) -> bool:
        return not self.peers and not self._in_flight and not self._compacting \
            and not self._telling()

    async def _save(self, reason: str) -> None:
        for peer in self.peers:  # still here when the server stops or the lease was lost
            peer.close(CloseCode.SERVICE_RESTART, "server restarting" if reason == "shutdown"
                       else "document moved to another process")
        if reason in ("idle", BUDGET):  # hibernating after edits: keep them as a version
            await self._auto_version()
        if self.notifier is not None:
            self.notifier.stop()
        if self._compaction is not None:
            await asyncio.wait([self._compaction])  # its Compacted message is moot now
            self._compacting = False
        await self.writes.flush()
        if reason in ("shutdown", BUDGET):
            # Thousands stop at once (and at shutdown the platform kills us soon,
            # Heroku at 30 s): everything is durable in the log already, and the next
            # load compacts what is over the thresholds. Folding each log now cost
            # 4 ms a document (5,000 documents hit the 20 s shutdown timeout;
            # bench/shutdown_bench.py).
            return
        # Not `log_rows`: commits whose Committed message we will never read count too.
        if self.seq > self.snapshot_seq and self.doc is not None:
            await self._compact(self.seq, self.doc.get_update(), self.doc.get_state())

    def _is_request(self, message: Any) -> bool:
        return isinstance(message, Join | Leave | Inbound | ApplyUpdate | Read | Subscribe
                          | PeerUpdate | PeerAwareness | Export | DeleteDoc | ReplaceDoc
                          | MakeVersion | RestoreVersion | SetPresence | BroadcastStateless) \
            or super()._is_request(message)

    def _reject(self, message: Any, error: BaseException) -> None:
        if isinstance(message, Join):
            # Shutting down: 1012; owned by a process it could not be relayed to: 1013.
            message.peer.close(close_code_for(error), _CLOSE_REASONS.get(
                type(error), "document could not be loaded"))
        elif isinstance(message, ApplyUpdate | Read | Subscribe | PeerUpdate | PeerAwareness
                        | Export | DeleteDoc | ReplaceDoc | MakeVersion | RestoreVersion
                        | SetPresence | BroadcastStateless):
            fail(message.reply, error)
        else:
            super()._reject(message, error)

    def _discard(self, message: Any) -> None:
        if isinstance(message, Committed):  # HTTP callers wait for its outcome
            _settle_replies(message)

    # -- messages -------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        if not self._quiet(message):
            self._touched = time.monotonic()
            if self.doc is None:
                return self._reload_then(message)
            if self.peers and not self.has_timer(QUIET_TIMER):
                timeout = self.system.settings.connected_idle_timeout
                if timeout:
                    self.set_timer(QUIET_TIMER, timeout)
        kind = type(message)
        if kind is Inbound:
            self._inbound(message.peer, message.message)
        elif kind is Join:
            self._join(message.peer)
        elif kind is Leave:
            self._leave(message.peer)
        elif kind is PeerUpdate:
            self._peer_update(message)
        elif kind is PeerAwareness:
            self._peer_awareness(message)
        elif kind is Subscribe:
            self._subscribe(message)
        elif kind is SubscribeDurable:
            if message.error is not None:
                fail(message.subscribe.reply, store_error(message.error, "could not commit"))
            else:
                self._subscribe(message.subscribe, durable=True)
        elif kind is Committed:
            self._committed(message)
        elif kind is ApplyUpdate:
            self._apply_http(message)
        elif kind is Read:
            self._read(message)
        elif kind is Export:
            answer(message.reply, self._diff(ywire.EMPTY_STATE_VECTOR))
        elif kind is Compacted:
            self._compacted(message)
        elif kind is DeleteDoc or kind is ReplaceDoc:
            return self._end_incarnation(message)
        elif kind is MakeVersion:
            return self._named_version(message)
        elif kind is RestoreVersion:
            return self._restore(message)
        elif kind is AutoVersion:
            return self._auto_version()
        elif kind is SetPresence:
            self._set_presence(message)
        elif kind is BroadcastStateless:
            self._broadcast_stateless(message)
        elif kind is TimerFired and message.name == COMPACT_TIMER:
            self._start_compaction()
        elif kind is TimerFired and message.name == AWARENESS_TIMER:
            self._release_awareness()
        elif kind is TimerFired and message.name == QUIET_TIMER:
            self._maybe_unload()
        elif kind is Unload:
            self._maybe_unload(now=True)
        elif kind is PeerGone:
            self._leave(message.peer)
            return super().handle(message)  # it may have been connected as an actor client
        else:
            return super().handle(message)  # actions, if a subclass declares any
        return None

    def _join(self, peer: Peer) -> None:
        if peer.closed:
            return
        self.peers.add(peer)
        self.maybe_arm_idle()  # cancels hibernation: someone is here
        # As y-websocket's server does: our state vector first, then who is here.
        peer.send_yjs(YjsOut(self.key, ywire.SyncStep1(self._state_vector())))
        states = self.awareness.encode_all()
        if states is not None:  # part of the sync it asked for: not slow consumption
            peer.send_sync(YjsOut(self.key, ywire.AwarenessMessage(states)))

    def _subscribe(self, message: Subscribe, durable: bool = False) -> None:
        peer = message.peer
        if peer.closed:
            fail(message.reply, ShuttingDown("connection closed"))
            return
        # The answer tells the client what we hold, and it counts its own changes
        # found there as saved: held is not enough, they must be committed (a commit
        # may have failed, its rows waiting to be written again). Held once, not
        # again: what arrives meanwhile is others' and acked to them.
        def ready(error: BaseException | None) -> None:
            if not self.post(SubscribeDurable(message, error)):
                fail(message.reply, ShuttingDown("the document is stopping"))

        if not durable and self._when_durable(ready):
            return
        unloaded = self.unloaded
        if unloaded is not None:  # it holds what we hold (`_quiet`)
            state_vector, diff = unloaded.state_vector, unloaded.up_to_date
        else:
            try:
                self._check_copy(message.state_vector)
                diff = self._diff(message.state_vector)
            except RemoteProtocolError as exc:
                fail(message.reply, exc)
                return
            state_vector = self.doc.get_state()
        self.peers.add(peer)
        self.maybe_arm_idle()
        answer(message.reply, {"sv": state_vector, "update": diff,
                               "awareness": self.awareness.encode_all()})

    def _peer_update(self, message: PeerUpdate) -> None:
        if message.peer not in self.peers:
            fail(message.reply, NotSubscribed(f"not subscribed to {self.key!r}"))
            return
        try:
            seq = self._apply(message.peer, message.update)
        except RemoteProtocolError as exc:
            fail(message.reply, exc)  # nothing applied: the peer and the doc carry on
            return
        if seq is None:  # held already, but perhaps not committed yet
            self._answer_once_durable(message.reply, None)
        else:
            self._outbox.replies.append((message.reply, seq))

    def _when_durable(self, then: Callable[[BaseException | None], None]) -> bool:
        """False if everything this document holds is committed; else True, and
        `then(error)` runs once it is (error None) or once the commit that carried it
        failed (its error)."""
        if self._outbox.writes:  # this drain's rows, submitted after it
            pending: asyncio.Future[Any] = self._loop.create_future()
            self._outbox.replies.append((pending, 0))
        elif self.writes.busy:  # in flight, or kept after a failed commit
            pending = self.writes.barrier()
        else:
            return False
        pending.add_done_callback(lambda done: then(
            done.exception() if not done.cancelled() else ShuttingDown("stopping")))
        return True

    def _answer_once_durable(self, reply: asyncio.Future[Any], value: Any) -> None:
        """Answer `value` once everything held now is committed: an update that adds
        nothing new is acknowledged as saved, and what it carried may be held here
        only, in rows a failed commit keeps to write again."""
        def settle(error: BaseException | None) -> None:
            if error is None:
                answer(reply, value)
            else:
                fail(reply, store_error(error, "could not commit"))

        if not self._when_durable(settle):
            answer(reply, value)

    def _peer_awareness(self, message: PeerAwareness) -> None:
        if message.peer not in self.peers:
            fail(message.reply, NotSubscribed(f"not subscribed to {self.key!r}"))
            return
        try:
            self._awareness(message.peer, message.payload)
        except RemoteProtocolError as exc:
            fail(message.reply, exc)
            return
        answer(message.reply, None)

    def _set_presence(self, message: SetPresence) -> None:
        entry = ywire.AwarenessEntry(message.client_id, message.clock, message.state)
        try:
            self._awareness(SERVER_EDITORS, ywire.encode_awareness([entry]))
        except RemoteProtocolError as exc:
            fail(message.reply, exc)
            return
        answer(message.reply, None)

    def _broadcast_stateless(self, message: BroadcastStateless) -> None:
        out = stateless_event(self.key, message.payload)
        for peer in self.peers:
            peer.send_out(out)
        answer(message.reply, None)

    def _leave(self, peer: Peer) -> None:
        if peer not in self.peers:
            return
        self.peers.discard(peer)
        removals = self.awareness.remove_owner(peer)
        if removals:
            out = YjsOut(self.key, ywire.AwarenessMessage(ywire.encode_awareness(removals)))
            for other in self.peers:
                other.send_yjs(out)
        self.maybe_arm_idle()

    def _inbound(self, peer: Peer, message: ywire.Message) -> None:
        if peer not in self.peers:
            return  # closed by us earlier in this drain; ignore its backlog
        try:
            if type(message) is ywire.SyncUpdate or type(message) is ywire.SyncStep2:
                self._apply(peer, message.update)
            elif type(message) is ywire.SyncStep1:
                self._answer_step1(peer, message.state_vector)
            elif type(message) is ywire.AwarenessMessage:
                self._awareness(peer, message.payload)
            elif type(message) is ywire.QueryAwareness:
                states = self.awareness.encode_all() or ywire.encode_awareness([])
                peer.send_yjs(YjsOut(self.key, ywire.AwarenessMessage(states)))
        except RemoteProtocolError as exc:
            log.info("doc %r: closing %s: %s", self.key, peer.id, exc)
            self._drop(peer, close_code_for(exc), exc.message)

    def _drop(self, peer: Peer, code: int, reason: str) -> None:
        peer.close(code, reason)
        self._leave(peer)

    def _answer_step1(self, peer: Peer, state_vector: bytes) -> None:
        if self.unloaded is not None:  # it holds what we hold (`_quiet`)
            peer.send_sync(YjsOut(self.key, ywire.SyncStep2(self.unloaded.up_to_date)))
            return
        self._check_copy(state_vector)
        peer.send_sync(YjsOut(self.key, ywire.SyncStep2(self._diff(state_vector))))

    def _check_copy(self, state_vector: bytes) -> None:
        """Raises DocumentDeleted if a client with `state_vector` holds content of an
        earlier incarnation: it would send it back (actors/incarnations.py)."""
        if self.retired:
            self.retired.check_state_vector(
                state_vector, ywire.decode_state_vector(self.doc.get_state()))

    def _diff(self, state_vector: bytes) -> bytes:
        """What a peer with `state_vector` lacks, as one update."""
        try:
            return self.writers.restore(self.doc.get_update(state_vector))
        except ValueError as exc:
            raise InvalidPayload(f"bad state vector: {exc}") from exc
        except BaseException as exc:
            if not is_panic(exc):
                raise
            raise InvalidPayload("bad state vector: pycrdt could not read it") from None

    def _apply(self, sender: Peer | None, update: bytes) -> int | None:
        """Apply one update; queue its broadcast and log row. Returns its seq,
        or None for an empty update (nothing to store or send)."""
        if update == EMPTY_UPDATE or self.unloaded is not None:
            return None  # nothing new (`_quiet` let only what we hold through unloaded)
        self._check_quota(update)
        if self.watches and not self._outbox.writes:
            self._drain_sv = self.doc.get_state()
        if self.retired:
            self.retired.check_update(update, ywire.decode_state_vector(self.doc.get_state()))
        integrate(self.doc, update)
        self.writers.note(update)
        self.seq += 1
        self.stored_bytes += len(update)
        self._outbox.broadcast.append((sender, update))
        self._outbox.writes.append(AppendUpdate(self.key, self.seq, update, self.epoch))
        if self._edited_at is None:
            self._edited_at = self._loop.time()
        return self.seq

    def _check_quota(self, update: bytes) -> None:
        """Raises DocumentTooLarge if `update` would take the document past its size
        quota (deletions get some headroom, so users can make room)."""
        quota = self.system.settings.max_document_bytes
        size = self.stored_bytes + len(update)
        if not quota or size <= quota:
            return
        if update[:1] == DELETIONS_ONLY and size <= quota * DELETION_HEADROOM:
            return
        if self.log_rows and not self._compacting:
            self._start_compaction()  # folding the log may free room for the next one
        raise DocumentTooLarge(f"document {self.key!r} would pass its size quota of {quota} "
                               f"bytes ({self.stored_bytes} stored, this update {len(update)})")

    def _awareness(self, peer: Peer, payload: bytes) -> None:
        entries = ywire.decode_awareness(payload)
        applied = self.awareness.apply(entries, owner=peer,
                                       max_state_bytes=self.system.settings.max_awareness_bytes)
        ignored = self.system.awareness_ignored
        ignored["foreign"] += applied.foreign
        ignored["crowded"] += applied.crowded
        accepted = applied.accepted
        if not accepted:
            return
        # Only what changed the table goes on: the sender's bytes when that is all of it.
        if len(accepted) != len(entries):
            payload = ywire.encode_awareness(accepted)
        relay = self.awareness.relay
        now = time.monotonic()
        if relay.offer((entry.client_id for entry in accepted), len(payload), now):
            out = YjsOut(self.key, ywire.AwarenessMessage(payload))
            for other in self.peers:
                # Back to a y-websocket sender too, as y-websocket's own server does: it
                # counts only messages as signs of life (not pings) and reconnects after
                # 30 s without one, so alone in a document it hears its own renewals.
                if other is not peer or other.echo_ack:
                    other.send_yjs(out)
        elif not self.has_timer(AWARENESS_TIMER):  # over the document's awareness budget
            self.set_timer(AWARENESS_TIMER, relay.due(len(payload), now))

    def _release_awareness(self) -> None:
        """Send the awareness changes held back by the relay budget, each client's
        newest state, to everyone, once the budget allows."""
        self.cancel_timer(AWARENESS_TIMER)
        relay = self.awareness.relay
        entries = self.awareness.entries(relay.held)
        if not entries:
            relay.held.clear()
            return
        payload = ywire.encode_awareness(entries)
        now = time.monotonic()
        wait = relay.due(len(payload), now)
        if wait:
            self.set_timer(AWARENESS_TIMER, wait)
            return
        relay.release(len(payload), now)
        out = YjsOut(self.key, ywire.AwarenessMessage(payload))
        for peer in self.peers:
            peer.send_yjs(out)

    def _apply_http(self, message: ApplyUpdate) -> None:
        try:
            seq = self._apply(None, message.update)
        except RemoteProtocolError as exc:
            fail(message.reply, exc)
            return
        if seq is None:  # held already, but perhaps not committed yet
            self._answer_once_durable(message.reply, self.seq)
        else:
            self._outbox.replies.append((message.reply, seq))

    def _read(self, message: Read) -> None:
        try:
            result = message.fn(self.doc)
        except Exception as exc:
            fail(message.reply, exc)
        else:
            answer(message.reply, result)

    # -- deleting and replacing -----------------------------------------------

    async def _end_incarnation(self, message: DeleteDoc | ReplaceDoc) -> None:
        """Delete the document, or replace its content, as one committed step; then
        carry on as its next incarnation, with its clients told to start over."""
        content, fresh = None, Doc()
        if isinstance(message, ReplaceDoc):
            try:
                quota = self.system.settings.max_document_bytes
                fresh, content = importable(self.key, message.update, quota), message.update
            except RemoteProtocolError as exc:
                fail(message.reply, exc)
                return
        elif not self.seq:
            fail(message.reply, DocumentNotFound(f"document {self.key!r} does not exist"))
            return
        self._after_drain()  # what this drain applied goes first, in this incarnation
        if self._compaction is not None:
            await asyncio.wait([self._compaction])  # it writes to this incarnation
        retired = self.retired.merged(self.doc.get_state())
        try:
            await self.submit([DeleteDocument(self.key, self.epoch, retired, content)])
        except Exception as exc:
            fail(message.reply, exc)
            return
        self._begin(self.epoch + 1, Retired(retired), fresh, content)
        answer(message.reply, self.epoch)
        if content is None:
            try:  # stored before the next message is handled; the caller has its answer
                await webhooks.send_event(self.system, {
                    "event": "document.deleted", "name": self.key, "epoch": self.epoch - 1})
            except Exception as exc:
                log.warning("doc %r: the webhook will not hear of its deletion: %s", self.key,
                            exc)

    def _begin(self, epoch: int, retired: Retired, doc: Doc, content: bytes | None) -> None:
        """Become incarnation `epoch` holding `doc` (stored as `content`, if any)."""
        for peer in self.peers:
            if peer.echo_ack:  # a y-websocket client: it would send the old content back
                peer.close(CloseCode.DOCUMENT_DELETED, "document deleted")
            else:
                peer.send_out(Outgoing({"event": DELETED_EVENT, "doc": self.key,
                                        "epoch": epoch}))
        self.peers.clear()
        self.awareness = AwarenessTable()
        self.cancel_timer(COMPACT_TIMER)
        self.cancel_timer(AWARENESS_TIMER)
        self._compacting, self._compaction = False, None
        self._kept_rows = self._kept_bytes = 0
        self.epoch, self.retired, self.doc = epoch, retired, doc
        self.writers = WriterBytes()
        size = len(content) if content is not None else 0
        if content is not None:
            self.writers.note(content)
        self.seq = self.log_rows = 1 if content is not None else 0
        self.snapshot_seq = self.snapshot_bytes = 0
        self.log_bytes = self.stored_bytes = size
        self.system.documents_deleted += 1
        self._edited_at = None
        if content is None:
            self.versions.forget()  # they were deleted with it
        self.maybe_arm_idle()

    # -- watchers ---------------------------------------------------------------

    def _watch_timer(self) -> Any:
        """The watch timer after this drain's changes: `quiet` after now, at most
        `at_most` after the first change not told yet; its write goes in the same
        commit as the changes, so a change is never committed without it."""
        assert self.notifier is not None
        now = time.time()
        pending = self.notifier.pending()
        since, first = pending or (self._drain_sv or ywire.EMPTY_STATE_VECTOR, now)
        quiet = min(w.quiet for w in self.watches)
        at_most = min(w.at_most for w in self.watches)
        return self.notifier.timer(min(now + quiet, first + at_most), since, first)

    async def watch_notes(self, since: bytes, first: float) -> tuple[list[Any], tuple, bool]:
        """What the watchers hear (runtime/notify.py): one note with everything that
        changed since state vector `since`, and where the next one starts."""
        await self._ensure_loaded()
        update = self._diff(since)
        change = {"doc": self.key, "seq": self.seq, "epoch": self.epoch,
                  "update": update if len(update) <= WATCH_UPDATE_BYTES else None}
        return [change], (self.doc.get_state(), time.time()), False

    # -- versions -------------------------------------------------------------

    async def _named_version(self, message: MakeVersion) -> None:
        try:
            info = await self._keep_version(NAMED, message.name, message.author,
                                            self._diff(ywire.EMPTY_STATE_VECTOR))
        except Exception as exc:
            fail(message.reply, exc)
            return
        answer(message.reply, describe(info))

    async def _auto_version(self) -> None:
        """An automatic version of the state now, if it was edited since the last one
        and automatic versions are on; skipped (and logged) if it cannot be kept."""
        self._auto_pending = False
        if not self.system.settings.auto_version_seconds or self._edited_at is None:
            return
        try:
            await self._ensure_loaded()
            await self._keep_version(AUTO, None, None, self._diff(ywire.EMPTY_STATE_VECTOR))
        except Exception as exc:
            log.warning("doc %r: no automatic version: %s", self.key, exc)

    async def _keep_version(self, kind: str, name: str | None, author: str | None,
                            state: bytes) -> Any:
        """Store `state` as a version of `kind` after everything submitted before;
        returns its VersionInfo (None for an automatic one with no room)."""
        await self.versions.ready(self.system.store)
        self._after_drain()  # what this drain applied is in `state`: its rows go first
        made = self.versions.make(self.system.settings, kind, name, author, state, self.epoch)
        if made is None:
            return None
        info, ops = made
        self._edited_at = None
        try:
            await self.submit(ops)
        except Exception:
            self.versions = VersionBook(self.key)  # read them again: this one may be missing
            raise
        self.system.versions_made += 1
        return info

    async def _restore(self, message: RestoreVersion) -> None:
        """Keep the state now as a version, then apply the update that makes every root
        what it was in the version; answered once that update is committed."""
        reply = message.reply
        try:
            old = await self.system.store.load_version(self.key, message.version)
            if old is None:
                raise VersionNotFound(f"document {self.key!r} has no version {message.version}")
            current = self._diff(ywire.EMPTY_STATE_VECTOR)
            try:
                # Off the loop: a large document's diff takes a while (about 0.1 s
                # for 10,000 updates); only this document waits for it.
                update = await asyncio.to_thread(restoring_update, current, old)
            except RestoreError as exc:
                raise InvalidPayload(f"version {message.version} cannot be restored: "
                                     f"{exc}") from None
            before = await self._keep_version(
                RESTORE, f"before restoring version {message.version}", message.author, current)
            seq = self._apply(None, update)
        except Exception as exc:
            fail(reply, exc)
            return
        self.system.restores += 1
        if seq is None:  # it already was as the version says (once that is committed)
            self._answer_once_durable(reply, {"seq": self.seq, "saved_as": before.id})
            return
        committed = self._loop.create_future()
        self._outbox.replies.append((committed, seq))

        def done(fut: asyncio.Future[int]) -> None:
            if fut.exception() is not None:
                fail(reply, fut.exception())
            else:
                answer(reply, {"seq": fut.result(), "saved_as": before.id})

        committed.add_done_callback(done)

    # -- flushing: broadcast now, log and echo after commit --------------------

    def _after_drain(self) -> None:
        """Broadcast what this drain applied, as one frame, to every peer that sent
        none of it; hand the log rows to group commit. The batch's senders get the
        same frame once it has committed: it carries their own updates (the durable
        ack) and everyone else's, so no per-sender merge is ever needed."""
        outbox = self._outbox
        if not outbox.writes:
            return
        self._outbox = _Outbox()
        batch = outbox.broadcast
        out = YjsOut(self.key, ywire.SyncUpdate(
            merge_as_written([update for _, update in batch], self.writers)))
        contributors = {peer for peer, _ in batch}
        senders = {peer for peer in contributors if peer is not None}
        for peer in self.peers:
            if peer not in senders:
                peer.send_yjs(out)
        if len(contributors) == 1 and senders and not next(iter(senders)).echo_ack:
            # Its own updates and nothing else: its saved ack is its requests' answers.
            senders = set()
        writes: list[Any] = list(outbox.writes)
        if self.watches:
            writes.append(self._watch_timer())
        self._in_flight += 1
        rows = len(outbox.writes)
        size = sum(len(op.data) for op in outbox.writes)
        replies = outbox.replies

        def done(error: BaseException | None) -> None:
            message = Committed(out, senders, replies, rows, size, error)
            if not self.post(message):
                # Draining: the mailbox is closed, but HTTP callers still wait.
                _settle_replies(message)

        self.submit_then(writes, done)

    def _committed(self, message: Committed) -> None:
        self._in_flight -= 1
        if message.error is not None:
            # Not acknowledged, not lost: the rows are kept and written again before
            # anything newer (runtime/writes.py).
            log.error("doc %r: %d updates not committed yet: %s", self.key, message.rows,
                      message.error)
            self._kept_rows += message.rows
            self._kept_bytes += message.size
            _settle_replies(message)
            for peer in message.senders:
                # No ack now: the client reconnects and syncs; later edits are acked
                # only once these rows are stored too.
                self._drop(peer, CloseCode.TRY_AGAIN_LATER, "could not persist update")
            self.maybe_arm_idle()
            return
        self._writes_recovered()  # a commit after a failed one carried its rows too
        self.log_rows += message.rows
        self.log_bytes += message.size
        for peer in message.senders:
            if peer in self.peers:
                peer.send_yjs(message.out)
        _settle_replies(message)
        self._maybe_schedule_compaction()
        every = self.system.settings.auto_version_seconds
        if every and self._edited_at is not None and not self._auto_pending and \
                self._loop.time() - self._edited_at >= every:
            self._auto_pending = True  # one AutoVersion at a time
            self.post(AutoVersion())
        self.maybe_arm_idle()

    def _writes_recovered(self) -> None:
        """Rows kept after a failed commit are in the log now: count them."""
        if self._kept_rows:
            self.log_rows += self._kept_rows
            self.log_bytes += self._kept_bytes
            self._kept_rows = self._kept_bytes = 0
            self._maybe_schedule_compaction()

    # -- unloading the CRDT while clients stay connected ---------------------

    def _quiet(self, message: Any) -> bool:
        """True for what a document handles without its CRDT, and which does not count
        as activity: presence, joins and leaves, and sync messages of clients that
        hold exactly what it holds (a y-websocket client renews its awareness every
        15 s and reconnects after 30 s without hearing anything)."""
        kind = type(message)
        if kind is Inbound:
            inner = message.message
            inner_kind = type(inner)
            if inner_kind is ywire.AwarenessMessage or inner_kind is ywire.QueryAwareness:
                return True
            if inner_kind is ywire.SyncStep1:
                return self._holds_what_we_hold(inner.state_vector)
            return self._adds_nothing(inner.update)
        # The same two for `/ws` and Hocuspocus clients: a subscribe, and an update
        # (a Hocuspocus provider's step 2 answering ours comes as one).
        if kind is Subscribe:
            return self._holds_what_we_hold(message.state_vector)
        if kind is PeerUpdate:
            return self._adds_nothing(message.update)
        if kind is TimerFired:
            return message.name != COMPACT_TIMER
        return kind in _QUIET_KINDS

    def _holds_what_we_hold(self, state_vector: bytes) -> bool:
        """Whether a client's `state_vector` is the unloaded CRDT's (its sync needs none)."""
        unloaded = self.unloaded
        return unloaded is not None and state_vector == unloaded.state_vector

    def _adds_nothing(self, update: bytes) -> bool:
        """Whether `update` is empty, or all the unloaded CRDT holds (a client's step 2)."""
        unloaded = self.unloaded
        return update == EMPTY_UPDATE or (unloaded is not None and update == unloaded.up_to_date)

    def _maybe_unload(self, now: bool = False) -> None:
        """The quiet timer fired (or, `now`, the memory budget asks): unload the CRDT
        if nothing needed it for the connected idle timeout and nothing is in
        flight; else look again later."""
        self._unloading = False
        timeout = self.system.settings.connected_idle_timeout
        if self.doc is None or not self.peers or not (timeout or now):
            return
        quiet_for = time.monotonic() - self._touched
        if self._unload_blocked() or (quiet_for < timeout and not now):
            if timeout:
                self.set_timer(QUIET_TIMER, max(timeout - quiet_for, timeout / 4))
            return
        state_vector = self.doc.get_state()
        self.unloaded = Unloaded(state_vector, self._diff(state_vector))
        self.doc, self.writers = None, WriterBytes()
        self.system.documents_unloaded += 1

    def _unload_blocked(self) -> bool:
        """True while something needs the CRDT as it is: a commit, a compaction."""
        return bool(self._in_flight or self._compacting or self._kept_rows or self.writes.busy
                    or self._outbox.writes or self.has_timer(COMPACT_TIMER)
                    or self._auto_pending or self._telling())

    def memory_estimate(self) -> int:
        if self.doc is None:
            return UNLOADED_DOC_BYTES
        return LOADED_DOC_BYTES + CRDT_BYTES_PER_STORED_BYTE * self.stored_bytes

    def shed_memory(self) -> int:
        if not self.peers:
            return super().shed_memory()  # hibernate, as after the idle timeout
        if self.doc is None or self._unloading or self._unload_blocked():
            return 0
        self._unloading = True
        self.post(Unload())
        return self.memory_estimate() - UNLOADED_DOC_BYTES

    async def _reload_then(self, message: Any) -> None:
        """Load the CRDT again, then handle `message`; if the store cannot be read,
        refuse `message` as a failed load would (its sender retries) and stay
        unloaded."""
        try:
            await self._ensure_loaded()
        except Exception as exc:
            log.warning("doc %r: could not load it again: %r", self.key, exc)
            # It loaded from the store before: the store cannot be read now, a passing
            # condition (not an internal error), so every sender knows to retry.
            error = store_error(exc, f"document {self.key!r} could not be loaded again")
            if isinstance(message, Inbound):  # its update is still in its copy: it resends
                self._drop(message.peer, close_code_for(error), "document could not be loaded")
            else:
                self._reject(message, error)
            return
        result = self.handle(message)
        if result is not None:
            await result

    async def _ensure_loaded(self) -> None:
        """Load the CRDT again from the store if it is unloaded. The store holds
        exactly what it held: it unloads only with nothing in flight."""
        if self.doc is not None:
            return
        stored = await self.system.store.load_document(self.key)
        if self.doc is not None:  # loaded meanwhile (by another path in this turn)
            return
        self.doc = doc_from_storage(stored)
        self.writers = writers_from_storage(stored)
        self.unloaded = None
        self._touched = time.monotonic()
        self.system.documents_reloaded += 1

    def _state_vector(self) -> bytes:
        return self.doc.get_state() if self.doc is not None else self.unloaded.state_vector

    # -- compaction -----------------------------------------------------------

    def _maybe_schedule_compaction(self) -> None:
        settings = self.system.settings
        over = self.log_rows >= settings.compact_rows or self.log_bytes >= settings.compact_bytes
        if over and not self._compacting and not self.has_timer(COMPACT_TIMER):
            self.set_timer(COMPACT_TIMER, settings.compact_delay)

    def _start_compaction(self) -> None:
        if self._compacting or not self.log_rows:
            return
        self._compacting = True
        upto = self.seq
        # Captured now, in the mailbox, so the snapshot matches `upto` exactly.
        gc_update, doc_state = self.doc.get_update(), self.doc.get_state()

        epoch = self.epoch

        async def run() -> None:
            error, folded, snapshot_bytes = None, (0, 0), 0
            try:
                folded, snapshot_bytes = await self._compact(upto, gc_update, doc_state)
            except Exception as exc:
                error = exc
            self.post(Compacted(epoch, upto, folded, snapshot_bytes, error))

        self._compaction = asyncio.ensure_future(run())

    async def _compact(self, upto: int, gc_update: bytes,
                       doc_state: bytes) -> tuple[tuple[int, int], int]:
        """Fold every log row <= `upto` into a new snapshot, in one transaction.
        Returns ((rows, bytes) folded, the new snapshot's size)."""
        # Rows <= upto are all submitted: wait until they are stored (rows a failed
        # commit kept are written first; if they still fail, so does compaction).
        await self.writes.barrier()
        stored = await self.system.store.load_document(self.key)
        rows = [data for seq, data in stored.updates if seq <= upto]
        if not rows:
            return (0, 0), 0
        steps = compaction(gc_update, doc_state, stored.snapshot, rows, self.writers)
        snapshot = await _in_turns(steps)  # each step alone: broadcasts go out between
        await self.submit([ReplaceSnapshot(self.key, upto, snapshot, self.epoch)])
        self.system.compactions += 1
        log.debug("doc %r: compacted %d rows into %d bytes", self.key, len(rows), len(snapshot))
        return (len(rows), sum(len(row) for row in rows)), len(snapshot)

    def _compacted(self, message: Compacted) -> None:
        if message.epoch != self.epoch:
            return  # it folded an incarnation deleted since: nothing here to count
        self._compacting = False
        self._compaction = None
        if message.error is None and message.folded[0]:
            self.snapshot_seq = max(self.snapshot_seq, message.upto_seq)
            self.stored_bytes += message.snapshot_bytes - self.snapshot_bytes - message.folded[1]
            self.snapshot_bytes = message.snapshot_bytes
        self.log_rows = max(0, self.log_rows - message.folded[0])
        self.log_bytes = max(0, self.log_bytes - message.folded[1])
        if message.error is not None:
            log.error("doc %r: compaction failed: %s", self.key, message.error)
        self._maybe_schedule_compaction()
        self.maybe_arm_idle()


#: The event a document's clients get for an application's stateless message.
STATELESS_EVENT = "doc.stateless"


def stateless_event(doc: str, payload: str) -> Outgoing:
    """The `doc.stateless` event carrying `payload` for document `doc`."""
    return Outgoing({"event": STATELESS_EVENT, "doc": doc, "payload": payload})


#: The event a document's non-echoing clients get when it is deleted or replaced.
DELETED_EVENT = "doc.deleted"


async def _in_turns(steps: Generator[None, None, T]) -> T:
    """Run a computation that yields between its steps, pausing after each so that
    the loop serves clients first (with sleep(0) the next step would run before
    the socket readers and the actor they wake)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(STEP_PAUSE)


def _settle_replies(message: Committed) -> None:
    """Answer the HTTP callers waiting on a commit: their seq, or the store's error."""
    for future, seq in message.replies:
        if future.done():
            continue
        if message.error is not None:
            future.set_exception(message.error)
        else:
            future.set_result(seq)


#: Messages a document handles without its CRDT (see `Document._quiet`).
_QUIET_KINDS = frozenset({Join, Leave, PeerAwareness, SetPresence, PeerGone, Committed,
                          Compacted, TimersDue, WatchersTold, Unload})
