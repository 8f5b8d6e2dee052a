"""Awareness bookkeeping for one document: who is here, and which connection said so.

Pure data logic (no I/O), following y-protocols/awareness: a newer clock wins;
an equal clock wins only when it removes a state. Each entry remembers the
connection that announced it, so a closed connection's cursors can be removed.

Bounded: a connection may hold MAX_CLIENTS_PER_OWNER live states, and the table
MAX_CLIENTS entries; removed entries (kept only to refuse stale clocks) are
dropped first when it fills.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from collab.errors import AwarenessTooLarge
from collab.protocol.ywire import AwarenessEntry, encode_awareness

NULL_STATE = "null"
#: Live states one connection may announce: one per editor in the tab (y-websocket
#: uses one), with room for clients that multiplex a few.
MAX_CLIENTS_PER_OWNER = 64
#: Entries, live or removed, one document keeps.
MAX_CLIENTS = 10_000


class AwarenessTable:
    def __init__(self) -> None:
        self._entries: dict[int, AwarenessEntry] = {}
        self._owners: dict[int, Hashable] = {}

    def __len__(self) -> int:
        return sum(1 for entry in self._entries.values() if not entry.removed)

    def apply(self, entries: Iterable[AwarenessEntry], owner: Hashable,
              max_state_bytes: int = 0) -> list[AwarenessEntry]:
        """Merge entries announced by `owner`; returns those that changed the table.
        Raises AwarenessTooLarge, having applied nothing, for a state over
        `max_state_bytes` (0: any size) or past the table's bounds."""
        entries = list(entries)
        if max_state_bytes:
            for entry in entries:
                if len(entry.state) > max_state_bytes // 4 and \
                        len(entry.state.encode()) > max_state_bytes:
                    raise AwarenessTooLarge(f"awareness state of client {entry.client_id} is "
                                            f"over {max_state_bytes} bytes")
        newest: dict[int, AwarenessEntry] = {}
        for entry in entries:
            current = newest.get(entry.client_id) or self._entries.get(entry.client_id)
            if _newer(entry, current):
                newest[entry.client_id] = entry
        accepted = list(newest.values())
        self._check_room(accepted, owner)
        for entry in accepted:
            self._entries[entry.client_id] = entry
            if entry.removed:
                self._owners.pop(entry.client_id, None)
            else:
                self._owners[entry.client_id] = owner
        return accepted

    def _check_room(self, entries: list[AwarenessEntry], owner: Hashable) -> None:
        new_live = {e.client_id for e in entries if not e.removed
                    and self._owners.get(e.client_id) != owner}
        if not new_live:
            return
        owned = sum(1 for who in self._owners.values() if who == owner)
        if owned + len(new_live) > MAX_CLIENTS_PER_OWNER:
            raise AwarenessTooLarge(f"one connection may announce at most "
                                    f"{MAX_CLIENTS_PER_OWNER} awareness clients")
        new = {e.client_id for e in entries} - self._entries.keys()
        if len(self._entries) + len(new) > MAX_CLIENTS:
            for client_id in [cid for cid, e in self._entries.items() if e.removed]:
                del self._entries[client_id]
            if len(self._entries) + len(new) > MAX_CLIENTS:
                raise AwarenessTooLarge(f"this document already tracks {MAX_CLIENTS} "
                                        "awareness clients")

    def remove_owner(self, owner: Hashable) -> list[AwarenessEntry]:
        """Mark every live state announced by `owner` as removed; returns the
        removal entries to broadcast.

        The clock stays the same: y-protocols bumps it only when a client removes
        its own state. A reconnecting client resumes at its old clock, and its
        next change (clock + 1) must beat this removal."""
        removals = []
        for client_id in [cid for cid, who in self._owners.items() if who == owner]:
            del self._owners[client_id]
            current = self._entries[client_id]
            removal = AwarenessEntry(client_id, current.clock, NULL_STATE)
            self._entries[client_id] = removal
            removals.append(removal)
        return removals

    def encode_all(self) -> bytes | None:
        """Every live state as one awareness update, or None when nobody is here."""
        live = [entry for entry in self._entries.values() if not entry.removed]
        return encode_awareness(live) if live else None

    def states(self) -> dict[int, str]:
        return {cid: e.state for cid, e in self._entries.items() if not e.removed}


def _newer(entry: AwarenessEntry, current: AwarenessEntry | None) -> bool:
    """A newer clock wins; an equal clock only when it removes a live state."""
    return current is None or current.clock < entry.clock \
        or (current.clock == entry.clock and entry.removed and not current.removed)
