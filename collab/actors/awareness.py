"""Awareness bookkeeping for one document: who is here, which connection said so, and
how much of it may be relayed.

Pure data logic (no I/O, no clock of its own), following y-protocols/awareness: a
newer clock wins; an equal clock wins only when it removes a state. Each live state
belongs to the connection that introduced it: entries another connection sends for
it are ignored (counted as `foreign`), so nobody can overwrite or hide someone
else's cursor. A connection's own removal (state null) frees the id, and so does its
close, so a client reconnecting under the same id takes it back.

Bounded per connection (MAX_CLIENTS_PER_OWNER states, MAX_BYTES_PER_OWNER bytes: past
either, the sender is refused) and per document (MAX_CLIENTS entries, MAX_BYTES bytes
of live states, which every newcomer is sent: past either, new states are ignored
and counted as `crowded`, and the sender carries on). `AwarenessRelay` bounds the
bytes per second a document relays to each of its clients.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from collab.errors import AwarenessTooLarge
from collab.protocol.ywire import AwarenessEntry, encode_awareness
from collab.runtime.buckets import TokenBucket

NULL_STATE = "null"
#: Live states one connection may announce: one per editor in the tab (y-websocket
#: uses one), with room for clients that multiplex a few.
MAX_CLIENTS_PER_OWNER = 64
#: Bytes of live states (their JSON) one connection may hold: y-websocket's name,
#: colour and cursor take 100-300 bytes, so this is a few hundred honest states, or
#: four of the largest one (COLLAB_MAX_AWARENESS_BYTES, 16 KiB).
MAX_BYTES_PER_OWNER = 64 * 1024
#: Entries, live or removed, one document keeps.
MAX_CLIENTS = 10_000
#: Bytes of live states one document keeps. Every newcomer is sent all of them at
#: once, so this bounds what a join costs: 1 MiB holds 3,000+ typical states (more
#: people than edit one document together) and downloads in under a second at
#: 10 Mbit/s. Without it, 40 read-only sockets each announcing 64 states of 16 KiB
#: made every newcomer's first message 40 MiB, and it was dropped as a slow consumer.
MAX_BYTES = 1024 * 1024
#: Bytes of awareness per second a document relays to each of its clients, and the
#: burst above it: 30 people's cursors moving at 30 Hz (~250 bytes each) take
#: 225 KB/s, and a phone on a slow link (2 Mbit/s) still keeps up. Past it, changes
#: are coalesced (only each client's newest state goes, when the budget allows), so
#: however many sockets flood a document, its clients receive at most this much
#: awareness; in a bigger crowd, cursors move in fewer, larger steps.
RELAY_BYTES_PER_SECOND = 256 * 1024
RELAY_BURST_BYTES = 2 * RELAY_BYTES_PER_SECOND


@dataclass(slots=True)
class Applied:
    """What `AwarenessTable.apply` did with one update."""

    #: Entries that changed the table, to relay.
    accepted: list[AwarenessEntry] = field(default_factory=list)
    #: Entries for client ids another connection holds: ignored.
    foreign: int = 0
    #: New or growing states that did not fit the document's bounds: ignored.
    crowded: int = 0


@dataclass(slots=True)
class _Holding:
    """The live states one connection holds: client id -> bytes of its state."""

    sizes: dict[int, int] = field(default_factory=dict)
    total: int = 0


class AwarenessTable:
    __slots__ = ("_bytes", "_entries", "_held", "_owners", "_removed", "relay")

    def __init__(self) -> None:
        self._entries: dict[int, AwarenessEntry] = {}
        self._owners: dict[int, Hashable] = {}  # live client id -> its connection
        self._held: dict[Hashable, _Holding] = {}  # connection -> what it holds
        self._removed: dict[int, None] = {}  # removed entries, oldest first
        self._bytes = 0  # of live states
        #: The document's budget for relaying changes to its clients.
        self.relay = AwarenessRelay()

    def __len__(self) -> int:
        return len(self._owners)  # every live state has an owner

    @property
    def live_bytes(self) -> int:
        return self._bytes

    def apply(self, entries: Iterable[AwarenessEntry], owner: Hashable,
              max_state_bytes: int = 0) -> Applied:
        """Merge entries announced by `owner`: what changed the table, and what was
        ignored (another connection's ids, states past the document's bounds).
        Raises AwarenessTooLarge, having applied nothing, for a state over
        `max_state_bytes` (0: any size) or past `owner`'s own bounds."""
        entries = list(entries)
        if max_state_bytes:
            for entry in entries:
                if _size(entry.state) > max_state_bytes:
                    raise AwarenessTooLarge(f"awareness state of client {entry.client_id} is "
                                            f"over {max_state_bytes} bytes")
        newest: dict[int, AwarenessEntry] = {}
        for entry in entries:
            current = newest.get(entry.client_id) or self._entries.get(entry.client_id)
            if _newer(entry, current):
                newest[entry.client_id] = entry
        result = Applied()
        held = self._held.get(owner) or _Holding()
        clients, owned_bytes, doc_bytes, new_ids = len(held.sizes), held.total, self._bytes, 0
        for client_id, entry in newest.items():
            holder = self._owners.get(client_id)
            if holder is not None and holder != owner:
                result.foreign += 1
                continue
            old = held.sizes.get(client_id, 0)
            if entry.removed:
                if holder is None:
                    continue  # nothing of theirs to remove
                clients, owned_bytes, doc_bytes = clients - 1, owned_bytes - old, doc_bytes - old
                result.accepted.append(entry)
                continue
            size = _size(entry.state)
            new = client_id not in self._entries
            if not self._fits(size - old, doc_bytes, new_ids if new else None):
                result.crowded += 1
                continue
            clients += holder is None
            owned_bytes += size - old
            doc_bytes += size - old
            new_ids += new
            result.accepted.append(entry)
        if clients > MAX_CLIENTS_PER_OWNER:
            raise AwarenessTooLarge(f"one connection may announce at most "
                                    f"{MAX_CLIENTS_PER_OWNER} awareness clients")
        if owned_bytes > MAX_BYTES_PER_OWNER:
            raise AwarenessTooLarge(f"one connection's awareness states may take at most "
                                    f"{MAX_BYTES_PER_OWNER} bytes")
        for entry in result.accepted:
            self._set(entry, owner)
        return result

    def _fits(self, growth: int, doc_bytes: int, new_ids: int | None) -> bool:
        """Whether a state growing by `growth` bytes fits the document's bounds, with
        its live states at `doc_bytes`; `new_ids`: for a client id the table does not
        know yet, how many new ones this update adds before it (None: a known id).
        Shrinking a state always fits, so a full document's clients can still move."""
        if growth > 0 and doc_bytes + growth > MAX_BYTES:
            return False
        if new_ids is None or len(self._entries) + new_ids < MAX_CLIENTS:
            return True
        return len(self._removed) > new_ids  # each new one displaces a removed entry

    def _set(self, entry: AwarenessEntry, owner: Hashable) -> None:
        client_id = entry.client_id
        if client_id not in self._entries and len(self._entries) >= MAX_CLIENTS \
                and self._removed:  # `apply` checked there is one to spare
            oldest = next(iter(self._removed))
            del self._removed[oldest], self._entries[oldest]
        self._drop_state(client_id)
        self._entries[client_id] = entry
        if entry.removed:
            self._removed[client_id] = None
            return
        self._removed.pop(client_id, None)
        size = _size(entry.state)
        held = self._held.setdefault(owner, _Holding())
        held.sizes[client_id] = size
        held.total += size
        self._owners[client_id] = owner
        self._bytes += size

    def _drop_state(self, client_id: int) -> None:
        """Forget who holds `client_id` and the bytes of its live state, if any."""
        owner = self._owners.pop(client_id, None)
        if owner is None:
            return
        held = self._held[owner]
        size = held.sizes.pop(client_id)
        held.total -= size
        self._bytes -= size
        if not held.sizes:
            del self._held[owner]

    def remove_owner(self, owner: Hashable) -> list[AwarenessEntry]:
        """Mark every live state announced by `owner` as removed, freeing its ids;
        returns the removal entries to broadcast.

        The clock stays the same: y-protocols bumps it only when a client removes
        its own state. A reconnecting client resumes at its old clock, and its
        next change (clock + 1) must beat this removal."""
        held = self._held.get(owner)
        if held is None:
            return []
        removals = [AwarenessEntry(client_id, self._entries[client_id].clock, NULL_STATE)
                    for client_id in held.sizes]
        for removal in removals:
            self._set(removal, owner)
        return removals

    def entries(self, client_ids: Iterable[int]) -> list[AwarenessEntry]:
        """The current entries (live or removed) of those of `client_ids` still known."""
        return [entry for client_id in client_ids
                if (entry := self._entries.get(client_id)) is not None]

    def encode_all(self) -> bytes | None:
        """Every live state as one awareness update, or None when nobody is here."""
        live = [self._entries[client_id] for client_id in self._owners]
        return encode_awareness(live) if live else None

    def states(self) -> dict[int, str]:
        return {client_id: self._entries[client_id].state for client_id in self._owners}


class AwarenessRelay:
    """What one document may relay, in bytes per second (bursts above it). Within the
    budget a change goes out at once; past it, the changed client ids are held and
    their newest entries go out together when the budget allows."""

    __slots__ = ("bucket", "held")

    def __init__(self, rate: float = RELAY_BYTES_PER_SECOND,
                 burst: float = RELAY_BURST_BYTES, now: float | None = None) -> None:
        self.bucket = TokenBucket(rate, burst, now)
        self.held: dict[int, None] = {}  # client ids changed while over the budget

    def offer(self, client_ids: Iterable[int], size: int, now: float) -> bool:
        """True: send this change of `size` bytes now (it is counted). False: it is
        held; `release` sends it once `due` says so."""
        if not self.held and not self.bucket.shortfall(size, now):
            self.bucket.charge(size, now)  # all of it, even past a burst
            return True
        self.held.update(dict.fromkeys(client_ids))
        return False

    def due(self, size: int, now: float) -> float:
        """Seconds until `size` bytes of held changes may go (0: now)."""
        return self.bucket.shortfall(size, now)

    def release(self, size: int, now: float) -> None:
        """The held changes (`size` bytes, found `due` now) are going out: all of it is
        counted, so a release bigger than a burst delays the next one."""
        self.bucket.charge(size, now)
        self.held.clear()


def _size(state: str) -> int:
    """Bytes of a state's JSON as UTF-8."""
    return len(state) if state.isascii() else len(state.encode())


def _newer(entry: AwarenessEntry, current: AwarenessEntry | None) -> bool:
    """A newer clock wins; an equal clock only when it removes a live state."""
    return current is None or current.clock < entry.clock \
        or (current.clock == entry.clock and entry.removed and not current.removed)
