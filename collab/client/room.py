"""Room: a chat room, the built-in `room` actor (docs/protocol.md section 7), as
client-js's room.js.

Beyond a plain actor handle it keeps the message stream whole across reconnects:
`message` is emitted once per message, in seq order, including those posted while
this client was away (fetched with `history` after each reconnect); and `send`
survives disconnects, resending with the same client_id, which the room
deduplicates, so a message is posted exactly once.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from collab.client.actor import ActorHandle
from collab.client.emitter import EventStream

if TYPE_CHECKING:
    from collab.client.client import CollabClient

#: Messages per history request when catching up (the server's maximum).
CATCH_UP_PAGE = 200


class Room(ActorHandle):
    """Made by `CollabClient.room`. Events: `message`, `edit`, `delete` (the
    changed message), `reaction`, `typing`, `read`, `presence` (docs/protocol.md
    section 7)."""

    def __init__(self, client: CollabClient, name: str, *, user: str | None) -> None:
        if user is not None and (not isinstance(user, str) or not user):
            raise ValueError("user must be a non-empty string (or None: the token's user)")
        super().__init__(client, "room", name, params={} if user is None else {"user": user},
                         connect=True)
        self.user = user
        #: The highest seq emitted as `message` (or, before any, the room's newest
        #: seq when this handle first connected): where the next catch-up starts.
        self.last_seq = 0
        self._position_known = False
        #: While catching up, live `message` events wait here so the order stays by seq.
        self._held: list[dict[str, Any]] | None = None

    @property
    def name(self) -> str:
        return self.key

    def messages(self) -> EventStream:
        """New messages from now on, in seq order and each once, across reconnects:
        `async for message in room.messages()`. Ends when the room is left."""
        return self.stream("message")

    async def send(self, body: str, meta: dict[str, Any] | None = None, *,
                   client_id: str | None = None) -> dict[str, Any]:
        """Post a message; returns `{"seq", "message"}` once it is committed. Made
        offline, it is sent after the reconnect; interrupted by a disconnect (or
        answered `rate_limited`), it is sent again with the same client_id, which
        the room posts once. Pass `client_id` to choose it (to resend from an
        outbox of your own)."""
        if not isinstance(body, str):
            raise TypeError("body must be a string")
        client_id = str(uuid.uuid4()) if client_id is None else client_id
        return await self._outbox.request(
            {"op": "actor.call", "actor": self.type, "key": self.key, "action": "send",
             "args": [client_id, body, meta]}, resend=True)

    async def edit(self, seq: int, body: str) -> dict[str, Any]:
        """Change the body of one of your messages; returns `{"message"}`."""
        return await self.call("edit", seq, body)

    async def delete(self, seq: int) -> dict[str, Any]:
        """Delete one of your messages (a tombstone keeps its seq); returns `{"message"}`."""
        return await self.call("delete", seq)

    async def react(self, seq: int, emoji: str, add: bool = True) -> dict[str, Any]:
        """Add (or with `add=False`, remove) your `emoji` reaction; returns `{"message"}`."""
        return await self.call("react", seq, emoji, add)

    async def history(self, *, before: int | None = None, after: int | None = None,
                      limit: int | None = None) -> dict[str, Any]:
        """A page of messages in ascending seq: `{"messages", "has_more"}`. With
        `before` (or nothing) the newest `limit` below it; with only `after` the
        oldest `limit` above it."""
        return await self.call("history", **_given(before=before, after=after, limit=limit))

    async def typing(self, active: bool = True) -> None:
        """Show (or hide) that this user is typing; it expires after 5 s."""
        await self.call("typing", active)

    async def read(self, seq: int) -> dict[str, Any]:
        """Mark messages up to `seq` read; returns `{"user", "seq"}`."""
        return await self.call("read", seq)

    async def unread(self) -> dict[str, Any]:
        """`{"count", "last_read", "last_seq"}`."""
        return await self.call("unread")

    async def presence(self) -> dict[str, Any]:
        """`{"users": [{"user", "devices"}], "typing": [user, ...]}`."""
        return await self.call("presence")

    async def receipts(self) -> dict[str, Any]:
        """`{"read": {user: seq}}`."""
        return await self.call("receipts")

    async def leave(self) -> None:
        """Leave the room: ends this connection (the others see this user go offline
        if it was the last device)."""
        await self.disconnect()

    # -- the message stream ------------------------------------------------------------

    def _receive_event(self, name: str, data: Any) -> None:
        if name != "message":
            self._emit(name, data)
        elif self._held is not None:
            self._held.append(data)
        else:
            self._emit_message(data)

    async def _after_connect(self) -> None:
        """After each connection: the first time, learn where the room is (its
        newest seq) so later catch-ups start there; after a reconnect, emit every
        message posted since last_seq. Live messages that arrive meanwhile are
        held, then emitted unless the catch-up did already."""
        self._held = []
        caught_up: set[int] = set()
        try:
            if not self._position_known:
                page = await self._history_now({"limit": 1})
                if page["messages"]:
                    self.last_seq = max(self.last_seq, page["messages"][-1]["seq"])
                self._position_known = True
            else:
                after = self.last_seq
                while True:
                    page = await self._history_now({"after": after, "limit": CATCH_UP_PAGE})
                    for message in page["messages"]:
                        caught_up.add(message["seq"])
                        self._emit_message(message)
                    if not page["has_more"] or not page["messages"]:
                        break
                    after = page["messages"][-1]["seq"]
        except BaseException:
            # Emitting the held messages now would skip the ones the catch-up did
            # not reach; the next catch-up (from last_seq) gets them all.
            self._held = None
            raise
        held, self._held = self._held, None
        for message in held:
            if message["seq"] not in caught_up:
                self._emit_message(message)

    async def _history_now(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """`history` on the current socket, before the outbox opens."""
        return await self.client._request({"op": "actor.call", "actor": self.type,
                                           "key": self.key, "action": "history",
                                           "kwargs": kwargs})

    def _emit_message(self, message: dict[str, Any]) -> None:
        # At or below last_seq: emitted already (a live event and the catch-up both
        # carried it), or posted before this handle first joined (history's part).
        if message["seq"] <= self.last_seq:
            return
        self.last_seq = message["seq"]
        self._emit("message", message)


def _given(**kwargs: Any) -> dict[str, Any]:
    """The keyword arguments that were given (not None): the server's defaults
    apply to the others."""
    return {name: value for name, value in kwargs.items() if value is not None}
