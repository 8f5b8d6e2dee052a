"""Messages and bytes through this process's WebSockets, by endpoint and message kind;
and how sockets ended (close codes) or were refused before the upgrade (error codes).

Plain integers, bumped where frames are read (the endpoint handlers) and written
(`SocketPeer`), and read by `/metrics` at scrape time: counting a frame costs a
dict lookup and two additions, with no lock and no Prometheus object on the
path every update takes. Kinds are a fixed set named here, so a label can never
carry a document, room, user or key name, whatever a client sends.
"""

from __future__ import annotations

from collab.errors import CloseCode
from collab.protocol import hocuspocus, ywire

#: Endpoint labels, one per WebSocket route.
YJS = "yjs"
NATIVE = "ws"
HOCUSPOCUS = "hocuspocus"

#: The y-websocket message kinds, in and out of `/yjs` (and the Yjs events of `/ws`).
YJS_KINDS: dict[type, str] = {
    ywire.SyncStep1: "sync_step1",
    ywire.SyncStep2: "sync_step2",
    ywire.SyncUpdate: "sync_update",
    ywire.AwarenessMessage: "awareness",
    ywire.QueryAwareness: "query_awareness",
}
#: The Hocuspocus messages (`/` and `/hocuspocus`), in and out: the Yjs ones and its own.
HOCUSPOCUS_KINDS: dict[type, str] = {
    **YJS_KINDS,
    hocuspocus.Auth: "auth",
    hocuspocus.Authenticated: "auth",
    hocuspocus.PermissionDenied: "auth",
    hocuspocus.Stateless: "stateless",
    hocuspocus.Close: "close",
    hocuspocus.SyncStatus: "sync_status",
    hocuspocus.Ping: "ping",
    hocuspocus.Pong: "pong",
}
#: A frame refused before it reached an actor: bad bytes, a text frame on `/yjs`, an
#: unknown op on `/ws`.
INVALID = "invalid"
#: What `/ws` sends besides events: answers to requests.
RESPONSE = "response"
ERROR = "error"
#: The events `/ws` sends (protocol/native.py).
NATIVE_EVENTS = ("doc.update", "doc.awareness", "doc.stateless", "actor.event")
#: Anything a newer part of the server sends that this table does not name yet.
OTHER = "other"
#: Close codes counted by number (ours, and the standard ones clients send);
#: anything else a client picks counts as OTHER. 1006: the TCP connection ended
#: without a close frame (a dropped peer, a slow consumer aborted).
CLOSE_CODES = tuple(str(code) for code in sorted({*map(int, CloseCode), 1005}))
#: Why an upgrade was refused: the error codes the upgrade raises.
REFUSALS = ("unauthorized", "forbidden", "origin_not_allowed", "too_many_connections",
            "shutting_down")


class EndpointTraffic:
    """The counts of one endpoint: `received[kind]` and `sent[kind]` are
    `[messages, bytes]`. Received bytes are message payloads (aiohttp has removed the
    WebSocket framing); sent bytes are whole frames, as written to the socket."""

    __slots__ = ("closes", "endpoint", "received", "refused", "sent")

    def __init__(self, endpoint: str, kinds_in: tuple[str, ...],
                 kinds_out: tuple[str, ...]) -> None:
        self.endpoint = endpoint
        # Every kind is there from the start, so counting never inserts a key and a
        # scrape shows zeros rather than missing series.
        self.received: dict[str, list[int]] = {kind: [0, 0] for kind in (*kinds_in, INVALID)}
        self.sent: dict[str, list[int]] = {kind: [0, 0] for kind in (*kinds_out, OTHER)}
        self.closes: dict[str, int] = dict.fromkeys((*CLOSE_CODES, OTHER), 0)
        self.refused: dict[str, int] = dict.fromkeys((*REFUSALS, OTHER), 0)

    def count_close(self, code: int | None) -> None:
        """A socket ended with `code` (None: without a close frame)."""
        label = str(1006 if code is None else code)
        self.closes[label if label in self.closes else OTHER] += 1

    def count_refused(self, error_code: str) -> None:
        """An upgrade was answered with an error instead."""
        self.refused[error_code if error_code in self.refused else OTHER] += 1

    def count_received(self, kind: str, size: int) -> None:
        counts = self.received.get(kind) or self.received[INVALID]
        counts[0] += 1
        counts[1] += size

    def count_sent(self, kind: str, size: int) -> None:
        counts = self.sent.get(kind) or self.sent[OTHER]
        counts[0] += 1
        counts[1] += size


class Traffic:
    """Both endpoints' counts, for one application (so two apps in one test process
    count apart)."""

    def __init__(self, native_ops: tuple[str, ...]) -> None:
        yjs_kinds = tuple(YJS_KINDS.values())
        self.yjs = EndpointTraffic(YJS, yjs_kinds, yjs_kinds)
        self.native = EndpointTraffic(NATIVE, native_ops, (*NATIVE_EVENTS, RESPONSE, ERROR))
        hocuspocus_kinds = tuple(dict.fromkeys(HOCUSPOCUS_KINDS.values()))
        self.hocuspocus = EndpointTraffic(HOCUSPOCUS, hocuspocus_kinds, hocuspocus_kinds)

    def endpoints(self) -> tuple[EndpointTraffic, ...]:
        return self.yjs, self.native, self.hocuspocus
