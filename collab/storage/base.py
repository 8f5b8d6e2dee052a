"""The one storage interface every back end implements, and the write operations it takes.

A store keeps, per document, an append-only update log keyed by a per-document
sequence number and at most one snapshot that covers every log row up to its
`seq`; per application actor, its durable state, timers, queues and workflows;
per chat room, its messages by sequence number; per revoked user, since when.
Writes arrive as a list of operations that commit in one transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from collab.errors import StoreUnavailable


@dataclass(frozen=True, slots=True)
class AppendUpdate:
    """Append one Yjs update to a document's log at sequence number `seq`, in the
    document's incarnation `epoch` (refused with DocumentReplaced if it is over)."""

    doc: str
    seq: int
    data: bytes
    epoch: int = 1


@dataclass(frozen=True, slots=True)
class ReplaceSnapshot:
    """Store `data` as the document's snapshot covering log rows <= `seq`, and
    delete those rows, in the same transaction (in incarnation `epoch`, as above)."""

    doc: str
    seq: int
    data: bytes
    epoch: int = 1


@dataclass(frozen=True, slots=True)
class DeleteDocument:
    """End incarnation `epoch` of `doc`: its log and snapshot go, the next epoch
    begins, and `retired` (a Yjs state vector covering every earlier incarnation's
    content) is kept so updates carrying deleted content can be refused. With
    `content` (a Yjs update), the new incarnation starts with it as log row 1
    (an import, `PUT /api/docs/<doc>`) and the versions stay; without, the
    versions go too, and the name is not listed until it is written again."""

    doc: str
    epoch: int
    retired: bytes
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version of a document, without its content: `kind` is "named", "auto" or
    "restore" (the state a restore replaced); `created_at` a Unix time."""

    doc: str
    id: int
    kind: str
    name: str | None
    author: str | None
    created_at: float
    epoch: int
    bytes: int


@dataclass(frozen=True, slots=True)
class PutVersion:
    """Store version `info` of a document with its full state `data` (a Yjs update)."""

    info: VersionInfo
    data: bytes


@dataclass(frozen=True, slots=True)
class DeleteVersion:
    doc: str
    id: int


@dataclass(frozen=True, slots=True)
class PutActorState:
    """Replace the durable state of actor (kind, key) with `data` (msgpack bytes)."""

    kind: str
    key: str
    data: bytes


@dataclass(frozen=True, slots=True)
class TimerRecord:
    """A durable timer of actor (kind, key); `cron` is set for recurring entries."""

    kind: str
    key: str
    id: str
    due: float  # Unix time, seconds
    method: str
    args: bytes  # msgpack-encoded list
    cron: str | None = None
    tz: str | None = None
    attempts: int = 0  # failed fires so far (for backoff)


@dataclass(frozen=True, slots=True)
class PutTimer:
    """Insert or replace a timer (same kind, key and id)."""

    timer: TimerRecord


@dataclass(frozen=True, slots=True)
class DeleteTimer:
    kind: str
    key: str
    id: str


@dataclass(frozen=True, slots=True)
class QueueRecord:
    """One message of queue `queue` of actor (kind, key), in `seq` order."""

    kind: str
    key: str
    queue: str
    seq: int
    body: bytes  # msgpack
    attempts: int = 0
    dead: bool = False
    error: str | None = None
    enqueued_at: float = 0.0


@dataclass(frozen=True, slots=True)
class PutQueueMessage:
    """Insert or replace a queue message (same kind, key, queue and seq)."""

    message: QueueRecord


@dataclass(frozen=True, slots=True)
class DeleteQueueMessage:
    kind: str
    key: str
    queue: str
    seq: int


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """One run of workflow `name` of actor (kind, key). `steps` is a msgpack map of
    step name to recorded result; `status` is running, sleeping, done or failed."""

    kind: str
    key: str
    id: str
    name: str
    args: bytes
    status: str
    steps: bytes
    result: bytes | None = None
    error: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class PutWorkflow:
    workflow: WorkflowRecord


@dataclass(frozen=True, slots=True)
class RoomMessage:
    """One chat message of room `room` at its room-assigned `seq`. `client_id` is
    the sender's idempotency key (unique per room); `meta` is msgpack or None;
    `reactions` is a msgpack map of emoji to the list of user ids who reacted. A
    deleted message stays as a tombstone (`deleted`, empty body) so seqs never
    disappear from history."""

    room: str
    seq: int
    client_id: str
    user: str
    body: str
    meta: bytes | None
    created_at: float  # Unix time, seconds
    edited_at: float | None = None
    deleted: bool = False
    reactions: bytes = b"\x80"  # msgpack {}


@dataclass(frozen=True, slots=True)
class PutRoomMessage:
    """Insert or replace a room message (same room and seq)."""

    message: RoomMessage


@dataclass(frozen=True, slots=True)
class Fence:
    """The writes submitted with this op come from the owner of actor (kind, key) that
    holds lease `token`. The store keeps the largest token it has seen per actor and
    refuses the batch (StaleOwner) if `token` is smaller: a former owner that lost
    its lease can no longer write. Used only when several processes share a store."""

    kind: str
    key: str
    token: int


@dataclass(frozen=True, slots=True)
class RevokeUser:
    """Refuse `user`'s tokens issued at or before `at` (Unix time, seconds). The
    store keeps the latest time per user: an older revocation changes nothing."""

    user: str
    at: float


@dataclass(frozen=True, slots=True)
class LimitUser:
    """Set `user`'s permission limits (`limits`: JSON text, `{}` lifts them) as of
    `at` (Unix time). The store keeps the latest change per user."""

    user: str
    limits: str
    at: float


class StaleOwner(StoreUnavailable):
    """A write carried a fencing token older than one the store already accepted."""

    code = "stale_owner"

    def __init__(self, kind: str, key: str, token: int, current: int) -> None:
        super().__init__(f"{kind}:{key}: lease token {token} is older than {current}; "
                         "another process owns this actor now")
        self.kind, self.key, self.token, self.current = kind, key, token, current


class DocumentReplaced(StaleOwner):
    """A write for incarnation `token` of a document whose incarnation is now
    `current`: it was deleted or replaced meanwhile, and the write may never land."""

    code = "document_replaced"

    def __init__(self, doc: str, epoch: int, current: int) -> None:
        StoreUnavailable.__init__(self, f"document {doc!r} was deleted or replaced "
                                        f"(incarnation {epoch}, now {current})")
        self.kind, self.key, self.token, self.current = "doc", doc, epoch, current


WriteOp = (Fence | AppendUpdate | ReplaceSnapshot | DeleteDocument | PutVersion | DeleteVersion
           | PutActorState | PutTimer | DeleteTimer | PutQueueMessage | DeleteQueueMessage
           | PutWorkflow | PutRoomMessage | RevokeUser | LimitUser)


def incarnation_ops(ops: Sequence[WriteOp]) -> dict[str, tuple[int, int]]:
    """For each document the document ops of `ops` write: (the incarnation they
    must find stored, the one they leave). Raises DocumentReplaced if they
    disagree among themselves (a write after the deletion of its own epoch)."""
    epochs: dict[str, tuple[int, int]] = {}
    for op in ops:
        if not isinstance(op, AppendUpdate | ReplaceSnapshot | DeleteDocument):
            continue
        found, now = epochs.get(op.doc, (op.epoch, op.epoch))
        if op.epoch != now:
            raise DocumentReplaced(op.doc, op.epoch, now)
        epochs[op.doc] = (found, now + 1 if isinstance(op, DeleteDocument) else now)
    return epochs


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """What a store holds for one document: a snapshot plus the log after it, and
    its incarnation (DeleteDocument)."""

    snapshot: bytes | None = None
    snapshot_seq: int = 0
    updates: list[tuple[int, bytes]] = field(default_factory=list)
    epoch: int = 1
    retired: bytes | None = None

    @property
    def last_seq(self) -> int:
        return self.updates[-1][0] if self.updates else self.snapshot_seq

    @property
    def log_bytes(self) -> int:
        return sum(len(data) for _, data in self.updates)


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """One stored document, as listed: its size in the store (snapshot and log)
    and when it was created (in this incarnation) and last written, Unix times."""

    name: str
    bytes: int
    created_at: float
    updated_at: float
    epoch: int


class Store(ABC):
    """A persistence back end. Implementations must pass tests/test_store.py."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; pending writes must have been awaited by the caller."""

    @abstractmethod
    async def migrate(self) -> int:
        """Create or upgrade the schema; returns the schema version now in place."""

    @abstractmethod
    async def load_document(self, doc: str) -> StoredDocument:
        """Read a document's snapshot and the log rows after it, in sequence order."""

    @abstractmethod
    async def list_documents(self, prefix: str, after: str | None, limit: int
                             ) -> list[DocumentInfo]:
        """Up to `limit` documents whose name starts with `prefix` and sorts after
        `after`, ordered by name; deleted ones (not written since) left out."""

    @abstractmethod
    async def list_versions(self, doc: str) -> list[VersionInfo]:
        """Every version of `doc`, oldest first."""

    @abstractmethod
    async def load_version(self, doc: str, version: int) -> bytes | None:
        """The content of version `version` of `doc`, or None if there is none."""

    @abstractmethod
    async def load_actor_state(self, kind: str, key: str) -> bytes | None:
        """The state last written for (kind, key), or None if it never was."""

    @abstractmethod
    async def load_timers(self, kind: str, key: str) -> list[TimerRecord]:
        """Every timer of actor (kind, key), soonest first."""

    @abstractmethod
    async def next_timer_due(self) -> float | None:
        """The earliest `due` of any timer in the store, or None if there is none."""

    @abstractmethod
    async def actors_with_timers_due(self, before: float, limit: int) -> list[tuple[str, str]]:
        """Distinct (kind, key) pairs with a timer due before `before`, soonest first."""

    @abstractmethod
    async def load_queues(self, kind: str, key: str) -> list[QueueRecord]:
        """Every queue message of actor (kind, key), dead letters included, by queue and seq."""

    @abstractmethod
    async def load_workflows(self, kind: str, key: str) -> list[WorkflowRecord]:
        """Every workflow run of actor (kind, key), oldest first."""

    @abstractmethod
    async def load_room_messages(self, room: str, *, before: int | None = None,
                                 after: int | None = None, limit: int) -> list[RoomMessage]:
        """Up to `limit` messages of `room` with seq < `before` and seq > `after`
        (either bound may be None), tombstones included, in ascending seq order.

        With `before` or no bound, these are the newest matching messages; with
        only `after`, the oldest ones after it (catching up from a known seq).
        """

    @abstractmethod
    async def find_room_message(self, room: str, client_id: str) -> RoomMessage | None:
        """The message of `room` sent with `client_id`, or None."""

    @abstractmethod
    async def fence_token(self, kind: str, key: str) -> int:
        """The highest lease token a write for (kind, key) carried, or 0: a new
        owner's token must be above it (Redis may have lost its counters)."""

    @abstractmethod
    async def load_revocations(self) -> dict[str, float]:
        """Every revoked user and the time of their latest revocation (RevokeUser)."""

    @abstractmethod
    async def load_user_limits(self) -> dict[str, tuple[str, float]]:
        """Every user with limits stored: (their JSON text, when set) (LimitUser)."""

    @abstractmethod
    async def room_last_seq(self, room: str) -> int:
        """The highest seq of `room`, or 0 if it has no message."""

    @abstractmethod
    async def count_room_messages(self, room: str, *, after: int,
                                  exclude_user: str | None = None) -> int:
        """How many non-deleted messages of `room` have seq > `after` and, if
        `exclude_user` is given, were not sent by that user (an unread count)."""

    @abstractmethod
    async def write(self, ops: Sequence[WriteOp]) -> None:
        """Apply every op in one transaction: all of them or none.

        Appends are applied before snapshot replacements, so a snapshot in the
        same batch may cover appends of that batch. Fence ops are checked first:
        one with a token older than the actor's stored one raises StaleOwner
        and nothing is written. Raises on failure; the caller must not
        acknowledge any op of a failed batch.
        """

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the store cannot answer a trivial query."""

    @abstractmethod
    async def list_actors(self, kind: str | None, after: tuple[str, str] | None,
                          limit: int) -> list[ActorSummary]:
        """Up to `limit` actors with anything stored (state, timers, queue messages or
        workflow runs), ordered by (kind, key) as the database sorts text (bytes on
        SQLite), only those of `kind` if given and only those after the (kind, key)
        `after` if given: a page of a listing whose next page starts after its last
        entry."""


@dataclass(frozen=True, slots=True)
class ActorSummary:
    """What a store holds for one application actor, counted (Store.list_actors).
    Timers include the runtime's own (queue drains, workflow wake-ups)."""

    kind: str
    key: str
    state_bytes: int | None  # None: no state row
    state_updated_at: float | None  # Unix time of the last state write
    timers: int
    next_due: float | None  # the earliest timer's due time (Unix), or None
    queued: int  # queue messages waiting, dead letters not counted
    dead_letters: int
    workflows: int  # runs of any status
    workflows_active: int  # runs running or sleeping
