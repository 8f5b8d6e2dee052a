"""No resurrection: what a deleted document's content looked like, and refusing
updates that carry it or build on it.

Deleting a document retires its content: the store keeps a Yjs state vector (a
clock per client) covering every earlier incarnation (storage.base.DeleteDocument).
A client that was offline during the deletion still holds that content, and a
stock Yjs client sends all of it when it reconnects: as structs whose IDs fall
under the retired clocks, or as new structs whose origins point at them. Either
way the update refers to an ID that is retired and not part of the current
incarnation, and is refused (close 4410) before anything is applied. IDs the
current incarnation holds (content imported with `PUT /api/docs/<doc>`) are
allowed, as are clocks above the retired ones: a client may go on with new work
under its old client id once it dropped the deleted content.
"""

from __future__ import annotations

from collab.errors import DocumentDeleted, InvalidPayload
from collab.protocol import ywire
from collab.protocol.yupdate import UpdateFormatError, referenced_ids


class Retired:
    """The clocks of a document's earlier incarnations, checked against what a client
    sends. Empty for a document that was never deleted: then nothing is walked."""

    __slots__ = ("clocks",)

    def __init__(self, state_vector: bytes | None) -> None:
        self.clocks = ywire.decode_state_vector(state_vector) if state_vector else {}

    def __bool__(self) -> bool:
        return bool(self.clocks)

    def merged(self, current: bytes) -> bytes:
        """The state vector to retire when the incarnation whose state vector is
        `current` ends too: the highest clock of each client in either."""
        clocks = dict(self.clocks)
        for client, clock in ywire.decode_state_vector(current).items():
            clocks[client] = max(clock, clocks.get(client, 0))
        return ywire.encode_state_vector(clocks)

    def check_update(self, update: bytes, current: dict[int, int]) -> None:
        """Raise DocumentDeleted if `update` holds or refers to a retired ID that the
        current incarnation (state vector `current`) does not hold."""
        if not self.clocks:
            return
        try:
            ids = referenced_ids(update)
        except UpdateFormatError as exc:
            raise InvalidPayload(f"update rejected: {exc}") from None
        for client, clock, length in ids:
            if self._retired(client, clock, length, current):
                raise DocumentDeleted("this update carries content of a deleted document; "
                                      "drop the local copy and sync again")

    def check_state_vector(self, state_vector: bytes, current: dict[int, int]) -> None:
        """Raise DocumentDeleted if a client whose state vector is `state_vector`
        holds retired content the current incarnation does not."""
        if not self.clocks:
            return
        try:
            theirs = ywire.decode_state_vector(state_vector)
        except Exception as exc:
            raise InvalidPayload(f"bad state vector: {exc}") from None
        for client, clock in theirs.items():
            if clock and self._retired(client, 0, clock, current):
                raise DocumentDeleted("this copy holds content of a deleted document; "
                                      "drop the local copy and sync again")

    def _retired(self, client: int, clock: int, length: int, current: dict[int, int]) -> bool:
        """True if [clock, clock + length) of `client` overlaps what is retired and
        not held by the current incarnation."""
        retired = self.clocks.get(client, 0)
        held = current.get(client, 0)
        return max(clock, held) < min(clock + length, retired)
