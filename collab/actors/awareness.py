"""Awareness bookkeeping for one document: who is here, and which connection said so.

Pure data logic (no I/O), following y-protocols/awareness: a newer clock wins;
an equal clock wins only when it removes a state. Each entry remembers the
connection that announced it, so a closed connection's cursors can be removed.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from collab.protocol.ywire import AwarenessEntry, encode_awareness

NULL_STATE = "null"


class AwarenessTable:
    def __init__(self) -> None:
        self._entries: dict[int, AwarenessEntry] = {}
        self._owners: dict[int, Hashable] = {}

    def __len__(self) -> int:
        return sum(1 for entry in self._entries.values() if not entry.removed)

    def apply(self, entries: Iterable[AwarenessEntry], owner: Hashable) -> list[AwarenessEntry]:
        """Merge entries announced by `owner`; returns those that changed the table."""
        accepted = []
        for entry in entries:
            current = self._entries.get(entry.client_id)
            if current is not None and not (
                current.clock < entry.clock
                or (current.clock == entry.clock and entry.removed and not current.removed)
            ):
                continue
            self._entries[entry.client_id] = entry
            if entry.removed:
                self._owners.pop(entry.client_id, None)
            else:
                self._owners[entry.client_id] = owner
            accepted.append(entry)
        return accepted

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
