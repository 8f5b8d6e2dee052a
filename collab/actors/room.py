"""The Room actor: a chat room with sequenced, durable messages, presence and typing.

Every message is a `room_messages` row at a room-assigned seq, broadcast only
once that row is committed, so clients see durable messages in seq order. The
newest messages stay in memory (`RecentWindow`) to answer history without the
store; typing indicators, presence and rate limits are in-memory only. The
helpers above `Room` are plain data code, testable without an event loop.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from collab.actors import webhooks
from collab.errors import StoreUnavailable
from collab.protocol.codec import pack, unpack
from collab.protocol.text import InvalidText, check_strings, is_text
from collab.runtime.actions import ActionError, CallAction, InvalidArguments, RateLimited, action
from collab.runtime.actor import Actor
from collab.runtime.buckets import Meters
from collab.runtime.mailbox import TimerFired
from collab.runtime.notify import Notifier
from collab.runtime.watches import ROOMS
from collab.storage.base import PutRoomMessage, RoomMessage

if TYPE_CHECKING:
    from collab.runtime.connections import Conn

log = logging.getLogger(__name__)

#: In-memory timers that end one user's typing indicator: "typing:<user>".
TYPING_TIMER = "typing:"
#: Messages told to watchers per notification (runtime/notify.py).
WATCH_BATCH = 100
#: What one message of the recent window is estimated to hold (runtime/budget.py):
#: a chat line and its fields as Python objects.
MESSAGE_BYTES = 1024


# -- messages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message as the room holds it; `reactions` maps emoji to user ids in
    the order they reacted. Never mutated: a change makes a new Message."""

    seq: int
    client_id: str
    user: str
    body: str
    meta: dict[str, Any] | None
    created_at: float
    edited_at: float | None = None
    deleted: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        """The message as clients see it (JSON- and msgpack-serializable)."""
        return {"seq": self.seq, "client_id": self.client_id, "user": self.user,
                "body": self.body, "meta": self.meta, "created_at": self.created_at,
                "edited_at": self.edited_at, "deleted": self.deleted,
                "reactions": {emoji: list(users) for emoji, users in self.reactions.items()}}

    def record(self, room: str) -> RoomMessage:
        return RoomMessage(room, self.seq, self.client_id, self.user, self.body,
                           None if self.meta is None else pack(self.meta), self.created_at,
                           self.edited_at, self.deleted, pack(self.reactions))

    @classmethod
    def from_record(cls, row: RoomMessage) -> Message:
        return cls(row.seq, row.client_id, row.user, row.body,
                   None if row.meta is None else unpack(row.meta), row.created_at,
                   row.edited_at, row.deleted, unpack(row.reactions))

    def tombstone(self, now: float) -> Message:
        """What stays of a deleted message: its seq, author and times."""
        return replace(self, body="", meta=None, reactions={}, deleted=True, edited_at=now)

    def reacted(self, user: str, emoji: str, add: bool) -> Message:
        """This message with `user`'s `emoji` reaction added or removed (a set per user)."""
        reactions = {e: list(users) for e, users in self.reactions.items()}
        users = reactions.setdefault(emoji, [])
        if add and user not in users:
            users.append(user)
        elif not add and user in users:
            users.remove(user)
        if not users:
            del reactions[emoji]
        return replace(self, reactions=reactions)


class RecentWindow:
    """The newest `capacity` messages of a room in seq order, plus the bound below
    which it holds nothing: every message with seq > `floor` is in the window, and
    when `floor` > 0 a message with seq `floor` exists in the store."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.floor = 0
        self._seqs: list[int] = []
        self._messages: dict[int, Message] = {}
        self._by_client: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._seqs)

    def load(self, newest: list[Message]) -> None:
        """Fill from the store's newest `capacity + 1` rows (ascending): the extra
        row, if there is one, only tells that older messages exist."""
        self.floor = 0
        self._seqs, self._messages, self._by_client = [], {}, {}
        if len(newest) > self.capacity:
            self.floor = newest[-self.capacity - 1].seq
            newest = newest[-self.capacity:] if self.capacity else []
        for message in newest:
            self._put(message)

    @property
    def last_seq(self) -> int:
        return self._seqs[-1] if self._seqs else self.floor

    def get(self, seq: int) -> Message | None:
        return self._messages.get(seq)

    def find(self, client_id: str) -> Message | None:
        seq = self._by_client.get(client_id)
        return None if seq is None else self._messages[seq]

    def append(self, message: Message) -> None:
        """Add a message newer than every other; the oldest leaves past capacity."""
        assert not self._seqs or message.seq > self._seqs[-1], "seqs only grow"
        self._put(message)
        while len(self._seqs) > self.capacity:
            oldest = self._messages.pop(self._seqs.pop(0))
            self._by_client.pop(oldest.client_id, None)
            self.floor = oldest.seq

    def update(self, message: Message) -> None:
        """Replace the held version of a message (edits, deletes, reactions)."""
        if message.seq in self._messages:
            self._messages[message.seq] = message

    def _put(self, message: Message) -> None:
        self._seqs.append(message.seq)
        self._messages[message.seq] = message
        self._by_client[message.client_id] = message.seq

    def page(self, before: int | None, after: int | None,
             limit: int) -> tuple[list[Message], bool] | None:
        """History from memory: up to `limit` messages with after < seq < before, the
        newest ones unless only `after` is given, and whether more match. None when
        the answer needs messages the window does not hold."""
        start = 0 if after is None else bisect.bisect_right(self._seqs, after)
        end = len(self._seqs) if before is None else bisect.bisect_left(self._seqs, before)
        seqs = self._seqs[start:end]
        complete = self.floor == 0 or (after is not None and after >= self.floor)
        if after is not None and before is None:  # catching up: the oldest first
            if not complete:
                return None
            chosen, more = seqs[:limit], len(seqs) > limit
        elif len(seqs) > limit:
            chosen, more = seqs[-limit:], True
        elif complete:
            chosen, more = seqs, False
        elif len(seqs) == limit and after is None:
            chosen, more = seqs, True  # the message at `floor` is older still
        else:
            return None
        return [self._messages[seq] for seq in chosen], more

    def count_unread(self, after: int, user: str) -> int | None:
        """Messages after `after` that are not deleted and not `user`'s, or None if
        the window does not hold all of them."""
        if after < self.floor:
            return None
        start = bisect.bisect_right(self._seqs, after)
        return sum(1 for seq in self._seqs[start:]
                   if not (m := self._messages[seq]).deleted and m.user != user)


# -- per-connection and per-user bookkeeping ---------------------------------------


class Presence:
    """Connected devices per user."""

    def __init__(self) -> None:
        self.devices: dict[str, int] = {}

    def join(self, user: str) -> int:
        """Count one more device of `user`; returns how many it has now."""
        self.devices[user] = self.devices.get(user, 0) + 1
        return self.devices[user]

    def leave(self, user: str) -> int:
        """Count one device less; returns how many are left."""
        left = self.devices.get(user, 0) - 1
        if left > 0:
            self.devices[user] = left
        else:
            self.devices.pop(user, None)
        return max(left, 0)

    def snapshot(self) -> list[dict[str, Any]]:
        return [{"user": user, "devices": n} for user, n in sorted(self.devices.items())]


# -- argument checks ------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_seq_bound(name: str, value: Any) -> None:
    if value is not None and not (_is_int(value) and value >= 0):
        raise InvalidArguments(f"{name} must be a non-negative integer or null")


def _json_size(value: Any) -> int:
    """Bytes of `value` as JSON; raises `invalid_meta` if JSON cannot carry it, and
    `invalid_arguments` if it nests too deep for the encoder (calls are bounded at
    MAX_ARGUMENT_DEPTH before they get here, so only a direct caller can)."""
    try:
        return len(json.dumps(value, allow_nan=False, separators=(",", ":")).encode())
    except (TypeError, ValueError) as exc:
        raise ActionError(f"meta must be JSON data: {exc}", code="invalid_meta") from None
    except RecursionError:
        raise InvalidArguments("meta nests too deeply") from None


class Room(Actor):
    """A chat room. Clients connect with params {"user": "<id>"} and call the
    actions below; calls without a connection (HTTP, other actors) name the user
    with `user=`. Events: message, edit, delete, reaction (after their commit),
    typing, read, presence. Limits are the class attributes; a subclass may change
    them. A subclass overriding a hook (on_wake, on_before_connect, on_connect,
    on_disconnect) or `handle` must call the Room's."""

    kind = "room"

    #: Bytes of UTF-8 in one message body. Slack caps a message at 40,000
    #: characters, Matrix an event at 64 KiB; 16 KiB keeps a 500-message window
    #: under 8 MiB per room.
    MAX_BODY_BYTES: ClassVar[int] = 16 * 1024
    #: Bytes of a message's `meta` map as JSON (attachment ids, reply-to, mentions).
    MAX_META_BYTES: ClassVar[int] = 4 * 1024
    #: Characters of a client_id: room for a UUID or a ULID with a device prefix.
    MAX_CLIENT_ID_CHARS: ClassVar[int] = 128
    #: Characters of a user id.
    MAX_USER_CHARS: ClassVar[int] = 128
    #: Characters of one reaction (an emoji with modifiers and ZWJ sequences, or a
    #: :shortcode:).
    MAX_EMOJI_CHARS: ClassVar[int] = 32
    #: Distinct reactions on one message, so a row cannot grow without bound.
    MAX_REACTIONS: ClassVar[int] = 64
    #: Writes (send, edit, delete, react) per second per caller, and the burst allowed
    #: above it: a chat client sends a few per second at most. A caller is the socket
    #: (connected or not; the gateway names it), or over HTTP the token's user (else
    #: the client's address). Only calls from other actors in this process are trusted.
    RATE_PER_SECOND: ClassVar[float] = 10.0
    RATE_BURST: ClassVar[int] = 20
    #: Seconds a typing indicator lasts unless renewed: bridges the pauses between
    #: keystrokes, and a client that vanished stops "typing" soon.
    TYPING_TTL: ClassVar[float] = 5.0
    #: Newest messages kept in memory for history and idempotent retries.
    RECENT_WINDOW: ClassVar[int] = 500
    #: Messages per history page: the default and the most a client may ask for.
    HISTORY_LIMIT: ClassVar[int] = 50
    MAX_HISTORY_LIMIT: ClassVar[int] = 200
    #: Actions a read-only user may call (they change no message); every other action
    #: needs write access to the room (collab/gateway/ws_endpoint.py checks, docs/auth.md).
    READ_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"history", "typing", "read", "unread", "receipts", "presence"})

    def initial_state(self) -> dict[str, Any]:
        return {"read": {}}  # user -> the last seq they have read

    async def on_wake(self) -> None:
        self.window = RecentWindow(self.RECENT_WINDOW)
        self.presence_table = Presence()
        self.typing_until: dict[str, float] = {}  # user -> loop time the indicator ends
        self._last_seq = 0
        #: Events of rows whose commit failed: the rows are written again before
        #: anything newer (runtime/writes.py); the events go out once they are.
        self._held: list[tuple[str, Any]] = []
        #: Writes left to each caller (RATE_PER_SECOND); `_caller_key` is the running call's.
        self.meters = Meters(self.RATE_PER_SECOND, self.RATE_BURST)
        self._caller_key: str | None = None
        #: Who hears of this room's new messages (runtime/watches.py, webhooks).
        watches = self.system.registry.watches_for(self.key, ROOMS) + webhooks.watches_for(
            self.system.settings, self.key, ROOMS)
        self.notifier = Notifier(self, watches) if watches else None
        await self._load_window()

    def memory_estimate(self) -> int:
        window = getattr(self, "window", None)  # set once it woke
        return super().memory_estimate() + MESSAGE_BYTES * (len(window) if window else 0)

    async def _load_window(self) -> None:
        rows = await self.system.store.load_room_messages(self.key,
                                                          limit=self.RECENT_WINDOW + 1)
        self.window.load([Message.from_record(row) for row in rows])
        self._last_seq = max(self._last_seq, self.window.last_seq)

    # -- connections --------------------------------------------------------------

    async def on_before_connect(self, conn: Conn) -> None:
        params = conn.params if isinstance(conn.params, dict) else {}
        conn.state["user"] = self._valid_user(params.get("user"))

    async def on_connect(self, conn: Conn) -> None:
        user = conn.state["user"]
        if self.presence_table.join(user) == 1:
            self.broadcast("presence", {"user": user, "status": "online", "devices": 1})

    async def on_disconnect(self, conn: Conn) -> None:
        user = conn.state["user"]
        if self.presence_table.leave(user) == 0:
            self._stop_typing(user)
            self.broadcast("presence", {"user": user, "status": "offline", "devices": 0})

    # -- messages -------------------------------------------------------------------

    @action
    async def send(self, client_id: str, body: str, meta: dict | None = None, *,
                   user: str | None = None) -> dict[str, Any]:
        """Post a message. Returns {"seq", "message"} once it is committed; the
        `message` event reaches every connection (the sender's too) after commit.
        A send repeating a `client_id` returns the original message and posts nothing."""
        author = self._caller(user)
        if not isinstance(client_id, str) or not 0 < len(client_id) <= self.MAX_CLIENT_ID_CHARS \
                or "\x00" in client_id or not is_text(client_id):
            raise ActionError(f"client_id must be a string of 1 to "
                              f"{self.MAX_CLIENT_ID_CHARS} characters",
                              code="invalid_client_id")
        self._check_body(body)
        if meta is not None:
            if not isinstance(meta, dict):
                raise ActionError("meta must be a map or null", code="invalid_meta")
            try:
                check_strings(meta, "meta")
            except InvalidText as exc:
                raise ActionError(exc.message, code="invalid_meta") from None
            if _json_size(meta) > self.MAX_META_BYTES:
                raise ActionError(f"meta is over {self.MAX_META_BYTES} bytes",
                                  code="message_too_large")
        self._spend()  # after the checks: a refused call costs no write
        original = await self._sent_before(client_id)
        if original is not None:
            if original.user != author:
                raise ActionError("another user's message has this client_id",
                                  code="invalid_client_id")
            return {"seq": original.seq, "message": original.wire()}
        self._last_seq += 1
        message = Message(self._last_seq, client_id, author, body, meta, time.time())
        self.window.append(message)
        self._stop_typing(author)
        self._write(message, "message", message.wire())
        return {"seq": message.seq, "message": message.wire()}

    @action
    async def edit(self, seq: int, body: str, *, user: str | None = None) -> dict[str, Any]:
        """Change the body of one of your messages; returns {"message"}."""
        author = self._caller(user)
        self._check_body(body)
        self._spend()
        message = await self._own(seq, author)
        if message.body != body:
            message = replace(message, body=body, edited_at=time.time())
            self._write(message, "edit", message.wire())
        return {"message": message.wire()}

    @action
    async def delete(self, seq: int, *, user: str | None = None) -> dict[str, Any]:
        """Delete one of your messages, leaving a tombstone at its seq (body "",
        deleted true) so history pages stay stable. Deleting twice is harmless."""
        author = self._caller(user)
        self._spend()
        message = await self._own(seq, author, tombstone_ok=True)
        if not message.deleted:
            message = message.tombstone(time.time())
            self._write(message, "delete", message.wire())
        return {"message": message.wire()}

    @action
    async def react(self, seq: int, emoji: str, add: bool = True, *,
                    user: str | None = None) -> dict[str, Any]:
        """Add (or with add=False remove) your `emoji` reaction; each user reacts
        with a given emoji at most once. Returns {"message"}."""
        who = self._caller(user)
        if not isinstance(emoji, str) or not 0 < len(emoji) <= self.MAX_EMOJI_CHARS \
                or not is_text(emoji):
            raise ActionError(f"emoji must be a string of 1 to {self.MAX_EMOJI_CHARS} "
                              "characters", code="invalid_emoji")
        if not isinstance(add, bool):
            raise InvalidArguments("add must be true or false")
        self._spend()
        message = await self._message(seq)
        if add and emoji not in message.reactions \
                and len(message.reactions) >= self.MAX_REACTIONS:
            raise ActionError(f"message {seq} has {self.MAX_REACTIONS} kinds of "
                              "reaction already", code="too_many_reactions")
        changed = message.reacted(who, emoji, add)
        if changed != message:
            self._write(changed, "reaction", {"seq": seq, "user": who, "emoji": emoji,
                                              "add": add, "reactions": changed.wire()["reactions"]})
        return {"message": changed.wire()}

    @action
    async def history(self, before: int | None = None, after: int | None = None,
                      limit: int | None = None) -> dict[str, Any]:
        """{"messages": [...ascending seq...], "has_more"}: the newest `limit`
        messages below `before` (or the newest of all), or with only `after`, the
        oldest `limit` after it (to catch up after a reconnect). Tombstones included."""
        _check_seq_bound("before", before)
        _check_seq_bound("after", after)
        limit = self.HISTORY_LIMIT if limit is None else limit
        if not (_is_int(limit) and 0 < limit <= self.MAX_HISTORY_LIMIT):
            raise InvalidArguments(f"limit must be an integer from 1 to {self.MAX_HISTORY_LIMIT}")
        if self.writes.busy:  # history shows durable messages only
            await self._settle_writes()
        page = self.window.page(before, after, limit)
        if page is None:
            page = await self._page_from_store(before, after, limit)
        messages, more = page
        return {"messages": [m.wire() for m in messages], "has_more": more}

    # -- ephemeral signals ------------------------------------------------------------

    @action
    def typing(self, active: bool = True, *, user: str | None = None) -> None:
        """Show (or hide) that you are typing: a `typing` event {"user", "active"};
        it ends by itself with active false after TYPING_TTL unless sent again."""
        who = self._caller(user)
        if not isinstance(active, bool):
            raise InvalidArguments("active must be true or false")
        if not active:
            self._stop_typing(who)
            return
        loop_now = self._loop_time()
        started = who not in self.typing_until
        self.typing_until[who] = loop_now + self.TYPING_TTL
        self.set_timer(TYPING_TIMER + who, self.TYPING_TTL)
        if started:
            self.broadcast("typing", {"user": who, "active": True})

    @action
    def read(self, seq: int, *, user: str | None = None) -> dict[str, Any]:
        """Mark messages up to `seq` read: {"user", "seq"} with the user's last read
        seq, which never goes back. A `read` event tells everyone when it moves; it
        goes out at once (a receipt is a hint), while the call itself is
        acknowledged after the receipt is committed with the room's state."""
        who = self._caller(user)
        if not _is_int(seq) or not 0 <= seq <= self._last_seq:
            raise ActionError(f"no message {seq!r} in this room", code="unknown_message")
        receipts = self.state["read"]
        if seq > receipts.get(who, 0):
            receipts[who] = seq
            self.broadcast("read", {"user": who, "seq": seq})
        return {"user": who, "seq": receipts.get(who, 0)}

    @action
    async def unread(self, *, user: str | None = None) -> dict[str, Any]:
        """{"count", "last_read", "last_seq"}: messages after your last read one that
        are neither deleted nor yours."""
        who = self._caller(user)
        last_read = self.state["read"].get(who, 0)
        count = self.window.count_unread(last_read, who)
        if count is None:
            await self._settle_writes()
            count = await self.system.store.count_room_messages(
                self.key, after=last_read, exclude_user=who)
        return {"count": count, "last_read": last_read, "last_seq": self._last_seq}

    @action
    def receipts(self) -> dict[str, Any]:
        """{"read": {user: last read seq}} for everyone who has read something."""
        return {"read": dict(self.state["read"])}

    @action
    def presence(self) -> dict[str, Any]:
        """{"users": [{"user", "devices"}], "typing": [user, ...]}: who is connected
        (with how many connections each) and who is typing, sorted by user."""
        return {"users": self.presence_table.snapshot(), "typing": sorted(self.typing_until)}

    # -- the runtime side ---------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        if type(message) is TimerFired and message.name.startswith(TYPING_TIMER):
            self._typing_expired(message.name[len(TYPING_TIMER):])
            return None
        if type(message) is CallAction:
            return self._metered(message)
        return super().handle(message)

    async def _metered(self, call: CallAction) -> None:
        """Run `call` with its caller known to `_spend` (one message at a time)."""
        self._caller_key = call.caller
        try:
            await super().handle(call)
        finally:
            self._caller_key = None

    def _typing_expired(self, user: str) -> None:
        until = self.typing_until.get(user)
        if until is not None and until <= self._loop_time():  # else renewed since
            self._stop_typing(user)

    def _stop_typing(self, user: str) -> None:
        self.cancel_timer(TYPING_TIMER + user)
        if self.typing_until.pop(user, None) is not None:
            self.broadcast("typing", {"user": user, "active": False})

    def _loop_time(self) -> float:
        return self._loop.time()

    def _caller(self, user: Any) -> str:
        """The user an action acts for: the connection's, or `user=` without one."""
        if self.conn is not None:
            if user is not None:
                raise ActionError("a connected client acts as the user it connected "
                                  "as; user= is for calls without a connection",
                                  code="forbidden")
            return self.conn.state["user"]
        return self._valid_user(user)

    def _valid_user(self, user: Any) -> str:
        if not isinstance(user, str) or not 0 < len(user) <= self.MAX_USER_CHARS \
                or "\x00" in user or not is_text(user):
            raise ActionError(f"user must be a string of 1 to {self.MAX_USER_CHARS} "
                              "characters", code="invalid_user")
        return user

    def _spend(self) -> None:
        """Take one write from the caller's allowance (RATE_PER_SECOND): its socket's,
        connected or not, or an HTTP caller's. Calls from other actors in this process
        name no caller and are trusted."""
        caller = self._caller_key or (self.conn.peer.id if self.conn is not None else None)
        if caller is not None and not self.meters.take(caller, time.monotonic()):
            raise RateLimited(f"more than {self.RATE_PER_SECOND:g} writes per second "
                              "from this client; slow down")

    def _check_body(self, body: Any) -> None:
        if not isinstance(body, str):
            raise InvalidArguments("body must be a string")
        if "\x00" in body or not is_text(body):  # no text column can hold them
            raise ActionError("the body contains a NUL character or a lone UTF-16 surrogate",
                              code="invalid_body")
        if len(body.encode()) > self.MAX_BODY_BYTES:
            raise ActionError(f"the body is over {self.MAX_BODY_BYTES} bytes of UTF-8",
                              code="message_too_large")

    async def _message(self, seq: Any) -> Message:
        """The current version of message `seq` (tombstones refused)."""
        message = await self._lookup(seq)
        if message.deleted:
            raise ActionError(f"message {seq} was deleted", code="message_deleted")
        return message

    async def _own(self, seq: Any, author: str, tombstone_ok: bool = False) -> Message:
        message = await self._lookup(seq)
        if message.user != author:
            raise ActionError(f"message {seq} is not yours", code="forbidden")
        if message.deleted and not tombstone_ok:
            raise ActionError(f"message {seq} was deleted", code="message_deleted")
        return message

    async def _lookup(self, seq: Any) -> Message:
        if not _is_int(seq) or not 0 < seq <= self._last_seq:
            raise ActionError(f"no message {seq!r} in this room", code="unknown_message")
        message = self.window.get(seq)
        if message is None and seq <= self.window.floor:
            await self._settle_writes()
            rows = await self.system.store.load_room_messages(self.key, before=seq + 1,
                                                              after=seq - 1, limit=1)
            message = Message.from_record(rows[0]) if rows else None
        if message is None:  # a gap (a send whose commit failed before collab kept them)
            raise ActionError(f"no message {seq} in this room", code="unknown_message")
        return message

    async def _sent_before(self, client_id: str) -> Message | None:
        """The message already sent with `client_id`, once committed, or None."""
        if self.window.find(client_id) is not None:
            # It may still be committing: a retry is acknowledged only once the
            # original is durable (if its commit failed, this raises until it is).
            await self._settle_writes()
        found = self.window.find(client_id)
        if found is None and self.window.floor > 0:  # else the window holds every message
            row = await self.system.store.find_room_message(self.key, client_id)
            found = None if row is None else Message.from_record(row)
        return found

    async def _page_from_store(self, before: int | None, after: int | None,
                               limit: int) -> tuple[list[Message], bool]:
        await self._settle_writes()
        rows = await self.system.store.load_room_messages(self.key, before=before,
                                                          after=after, limit=limit + 1)
        more = len(rows) > limit
        if more:  # drop the row that only told us there is more
            rows = rows[:limit] if after is not None and before is None else rows[1:]
        return [Message.from_record(row) for row in rows], more

    def _write(self, message: Message, event: str, data: Any) -> None:
        """Persist `message`'s row and, once committed, broadcast `event` with `data`.
        The window already shows the change. If the commit fails, the row is kept
        and written again first thing; the event waits for it."""
        self.window.update(message)
        ops: list[Any] = [PutRoomMessage(message.record(self.key))]
        if event == "message" and self.notifier is not None:
            # In the same commit: a stored message is never left untold.
            pending = self.notifier.pending()
            ops.append(self.notifier.timer(time.time(), pending[0] if pending else message.seq))
        commit = self.submit(ops)

        def committed(fut: Any) -> None:
            if fut.cancelled() or fut.exception() is not None:
                self._held.append((event, data))
                return
            self._writes_recovered()  # this commit carried the held rows too
            self.broadcast(event, data)

        commit.add_done_callback(committed)

    async def watch_notes(self, first_seq: int) -> tuple[list[Any], tuple, bool]:
        """What the watchers hear (runtime/notify.py): a note per stored message from
        `first_seq` on (deleted ones skipped), a batch at a time."""
        await self._settle_writes()
        after = first_seq - 1
        found = self.window.page(None, after, WATCH_BATCH)
        messages, more = found if found is not None else await self._page_from_store(
            None, after, WATCH_BATCH)
        notes = [{"room": self.key, "message": m.wire()} for m in messages if not m.deleted]
        return notes, ((messages[-1].seq if messages else after) + 1,), more

    def _writes_recovered(self) -> None:
        """Rows whose commit failed are stored now: their events go out, in order."""
        held, self._held = self._held, []
        for event, data in held:
            self.broadcast(event, data)

    async def _settle_writes(self) -> None:
        """Wait until every row this room submitted is committed, so a store read
        sees them; raises StoreUnavailable if some could not be (yet)."""
        try:
            await self.writes.barrier()
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise StoreUnavailable(f"messages of this room are not stored yet: {exc}") from None
