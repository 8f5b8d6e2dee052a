"""SyncedDoc: one pycrdt Doc kept in sync with a server document over the
client's socket, with a pycrdt Awareness for presence (docs/protocol.md section
5), as client-js's doc.js.

On every new socket it subscribes with the doc's state vector, applies what the
server has that it lacks, and sends back what the server lacks; that one exchange
covers everything either side missed while apart, so local changes made offline
need no queue of their own. Each local change goes out as a `doc.update` (from
`Doc.observe`); the server answers each only once it is committed, so "no
update unanswered" means "every change made here is durable".
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import pycrdt

from collab.client.emitter import Changes, Emitter
from collab.client.errors import CollabError, closed_error, lost_connection

if TYPE_CHECKING:
    from collab.client.client import CollabClient

#: Yjs's encoding of "no changes": no structs, an empty delete set.
EMPTY_UPDATE = b"\x00\x00"
#: The server's code for content of a deleted (or replaced) incarnation.
DOCUMENT_DELETED = "document_deleted"


class SyncedDoc(Emitter):
    """Made by `CollabClient.doc`. `ydoc` is the pycrdt Doc; edit it as usual.

    Events: `synced` (True/False), `saved` (every local change is committed),
    `deleted` (the epoch: the document was deleted or replaced on the server and
    this copy stopped syncing), `error` (a CollabError the server answered).
    """

    def __init__(self, client: CollabClient, name: str, ydoc: pycrdt.Doc) -> None:
        super().__init__()
        if not isinstance(ydoc, pycrdt.Doc):
            raise TypeError("client.doc(name, ydoc) needs a pycrdt.Doc")
        self.client = client
        self.name = name
        self.ydoc = ydoc
        #: Presence (cursors, names): set yours with `set_local_state_field`.
        self.awareness = pycrdt.Awareness(ydoc)
        #: True once the doc holds everything the server had when this socket subscribed.
        self.synced = False
        #: The epoch the server named when it deleted or replaced the document, once it has.
        self.deleted_epoch: int | None = None
        self.deleted = False

        self._unacked = 0  # doc.update requests sent and not answered
        self._unsent = 0  # local changes no request in flight carries (made offline...)
        self._unsaved = False  # a change was made since the last `saved` event
        self._refused: CollabError | None = None  # the last refusal of an update
        self._subscribed = False
        self._subscribe_sent = False  # a doc.subscribe went out on this socket
        self._sync_run = 0  # bumped by each subscribe: answers to older ones are ignored
        self._sync_failures = 0
        self._first_sync: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._first_sync.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._resync: asyncio.TimerHandle | None = None
        self._disposed = False
        self._applying = False  # applying the server's update: not a local change
        self._changes = Changes()

        self._doc_subscription = ydoc.observe(self._on_transaction)
        self._awareness_subscription = self.awareness.observe(self._on_awareness)
        # Renews our awareness state (others drop a state unchanged for 30 s) and
        # drops the states of clients that stopped renewing theirs.
        self._awareness_task = self._spawn(self.awareness.start())

    # -- the public API ---------------------------------------------------------------

    @property
    def unsynced_changes(self) -> int:
        """Local changes the server has not acknowledged as committed: updates in
        flight, plus those made while not subscribed (offline), which the next sync
        sends as one update. 0 means everything changed here is durable."""
        return self._unacked + self._unsent

    async def saved(self) -> None:
        """Wait until every change made in `ydoc` so far is committed on the server.

        Raises CollabError when the server refused an update (e.g. `forbidden`,
        `document_too_large`; the doc keeps retrying in the background), when the
        document was deleted (`document_deleted`) or when it is closed (`closed`)."""
        def done() -> bool:
            if self.deleted:
                raise CollabError(DOCUMENT_DELETED, f"document {self.name!r} was deleted "
                                  "or replaced on the server")
            if self.unsynced_changes == 0:
                return True
            if self._refused is not None:
                raise self._refused
            if self._disposed:
                raise closed_error(f"document {self.name!r}")
            return False
        await self._changes.until(done)

    async def wait_synced(self) -> None:
        """Wait until the doc is synced on the current socket (after a reconnect:
        until the resync is done). Raises like `saved` once closed or deleted."""
        def done() -> bool:
            if self.deleted:
                raise CollabError(DOCUMENT_DELETED, f"document {self.name!r} was deleted")
            if self._disposed:
                raise closed_error(f"document {self.name!r}")
            return self.synced
        await self._changes.until(done)

    async def wait_first_sync(self) -> None:
        """Wait for the first sync; raises the server's refusal of the document."""
        await asyncio.shield(self._first_sync)

    async def close(self) -> None:
        """Stop syncing: remove our awareness state for everyone, unsubscribe. The
        pycrdt Doc is left as it is."""
        if self._disposed:
            return
        self._dispose()
        # Also when the subscribe is still in flight: the server handles one
        # document's requests in order, so the unsubscribe comes after it.
        if self._subscribe_sent:
            self._subscribed = self._subscribe_sent = False
            with contextlib.suppress(CollabError):  # gone already: the server unsubscribed us
                await self.client._request({"op": "doc.unsubscribe", "doc": self.name})

    # -- called by the client -----------------------------------------------------------

    def _on_connected(self) -> None:
        self._spawn(self._sync())

    def _on_disconnected(self) -> None:
        self._sync_run += 1
        self._subscribed = self._subscribe_sent = False
        self._cancel_resync()
        # Everyone else's cursors would freeze where they were: drop them until the
        # next subscribe tells us who is still here.
        others = [client for client in self.awareness.states if client != self.awareness.client_id]
        self.awareness.remove_awareness_states(others, self)
        # Forget their clocks too: the server's snapshot after the reconnect carries
        # the clocks we saw last, which pycrdt ignores as not newer, so they would
        # stay invisible until their next renewal (15 s).
        for client in others:
            self.awareness.meta.pop(client, None)
        self._set_synced(False)

    def _on_client_closed(self) -> None:
        self._dispose()

    def _receive_update(self, update: Any) -> None:
        if isinstance(update, bytes):
            self._apply(update)

    def _receive_awareness(self, update: Any) -> None:
        if not isinstance(update, bytes):
            return
        try:
            self.awareness.apply_awareness_update(update, self)
        except Exception as exc:  # an update pycrdt cannot read: report, carry on
            self._emit("error", exc)

    def _receive_deleted(self, epoch: Any) -> None:
        """The document was deleted or replaced on the server, which unsubscribed
        us: this Doc holds the content that ended, and the server refuses it from
        now on (docs/documents.md). Stop syncing; a new SyncedDoc with a new Doc
        follows the document that comes next."""
        if self._disposed:
            return
        self._subscribed = self._subscribe_sent = False
        self.deleted = True
        self.deleted_epoch = epoch if isinstance(epoch, int) else None
        self._fail_first_sync(CollabError(DOCUMENT_DELETED, f"document {self.name!r} was "
                                          "deleted or replaced on the server"))
        self._emit("deleted", self.deleted_epoch)
        self._dispose()

    # -- syncing --------------------------------------------------------------------------

    async def _sync(self) -> None:
        """Subscribe (or subscribe again) and exchange what each side lacks."""
        run = self._sync_run = self._sync_run + 1
        self._subscribed = False
        self._subscribe_sent = self.client._is_open()
        try:
            result = await self.client._request(
                {"op": "doc.subscribe", "doc": self.name, "sv": self.ydoc.get_state()})
        except CollabError as exc:
            if run == self._sync_run and not self._disposed:
                self._sync_failed(exc)
            return
        if run != self._sync_run or self._disposed:
            return
        self._sync_failures = 0
        try:
            self._apply(result["update"], strict=True)
            if result.get("awareness") is not None:
                self.awareness.apply_awareness_update(result["awareness"], self)
        except Exception as exc:  # an answer pycrdt cannot read: nothing to sync against
            self._emit("error", exc)
            self._fail_first_sync(CollabError("protocol", f"unreadable subscribe answer: {exc}"))
            return
        self._subscribed = True
        # Before the diff: the server handles one document's messages in order, so
        # once the diff is acknowledged (`saved`), our presence is back too.
        self._announce_awareness()
        # The diff against the server's state vector carries every change it lacks,
        # including all those counted as unsent: they become this one update.
        self._unsent = 0
        missing = self.ydoc.get_update(result["sv"])
        if missing != EMPTY_UPDATE:
            self._send_update(missing)
        self._set_synced(True)
        if not self._first_sync.done():
            self._first_sync.set_result(None)
        self._check_saved()

    def _sync_failed(self, error: CollabError) -> None:
        if lost_connection(error):
            return  # the next socket syncs again
        if error.code == DOCUMENT_DELETED:
            # Our state vector names content of a deleted incarnation: this copy can
            # never sync again (docs/protocol.md section 8).
            self._emit("error", error)
            self._receive_deleted(None)
            return
        self._emit("error", error)
        if error.transient:
            self._resync_later()
        else:
            self._fail_first_sync(error)

    def _fail_first_sync(self, error: CollabError) -> None:
        if not self._first_sync.done():
            self._first_sync.set_exception(error)

    def _resync_later(self) -> None:
        """Subscribe again after a failure, later (the server may be busy or restarting)."""
        if self._resync is not None or self._disposed:
            return

        def resync() -> None:
            self._resync = None
            if self.client._is_open() and not self._disposed:
                self._spawn(self._sync())

        delay = self.client._retry_delay(self._sync_failures)
        self._sync_failures += 1
        self._resync = asyncio.get_running_loop().call_later(delay, resync)

    def _cancel_resync(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
            self._resync = None

    def _apply(self, update: bytes, *, strict: bool = False) -> None:
        """Apply the server's update without sending it back (it is not ours)."""
        self._applying = True
        try:
            self.ydoc.apply_update(update)
        except Exception as exc:
            if strict:
                raise
            self._emit("error", exc)
        finally:
            self._applying = False

    def _on_transaction(self, event: pycrdt.TransactionEvent) -> None:
        # Runs inside pycrdt's commit: must not raise (pycrdt would raise it from
        # the application's transaction).
        if self._applying or self._disposed:
            return
        update = event.update
        if update == EMPTY_UPDATE:
            return
        self._unsaved = True
        if self._subscribed:
            self._send_update(update)
        else:
            self._unsent += 1
            self._changes.notify()

    def _send_update(self, update: bytes) -> None:
        self._unsaved = True
        self._unacked += 1
        future = self.client._request({"op": "doc.update", "doc": self.name, "update": update})
        future.add_done_callback(self._on_update_answer)
        self._changes.notify()

    def _on_update_answer(self, future: asyncio.Future[Any]) -> None:
        self._unacked -= 1
        error = future.exception() if not future.cancelled() else closed_error("the request")
        if error is None:
            # {"seq": n}: committed to the store (seq None: the server had it already).
            self._check_saved()
            return
        if self._disposed:
            return
        # Not acknowledged: the server may lack it until the next sync, which sends
        # it again as part of its diff.
        self._unsent += 1
        if isinstance(error, CollabError) and not lost_connection(error):
            self._emit("error", error)
            if error.code == DOCUMENT_DELETED:
                self._receive_deleted(None)
                return
            if not error.transient:
                self._refused = error
            self._resync_later()
        self._changes.notify()

    def _check_saved(self) -> None:
        if self.unsynced_changes == 0 and not self._disposed:
            self._refused = None
            if self._unsaved:
                self._unsaved = False
                self._emit("saved")
        self._changes.notify()

    # -- awareness ----------------------------------------------------------------------

    def _on_awareness(self, topic: str, change: tuple[dict[str, list[int]], Any]) -> None:
        """Announce our own state only: the others' reach the server from their
        clients, and the states this copy times out locally must not be removed
        for everyone."""
        if topic != "update":
            return
        changes, _origin = change
        ours = self.awareness.client_id
        if any(ours in changes.get(kind, ()) for kind in ("added", "updated", "removed")):
            self._send_awareness()

    def _send_awareness(self) -> None:
        if not self._subscribed:
            return  # announced by the next sync
        update = self.awareness.encode_awareness_update([self.awareness.client_id])
        # A notification: awareness changes at typing speed and needs no answer.
        self.client._notify({"op": "doc.awareness", "doc": self.name, "update": update})

    def _announce_awareness(self) -> None:
        """Tell the server our state after subscribing. Setting it again bumps its
        clock: the server keeps our last clock when a socket closes, and only a
        newer clock replaces that removal."""
        state = self.awareness.get_local_state()
        if state is not None:
            self.awareness.set_local_state(state)

    # -- helpers ------------------------------------------------------------------------

    def _set_synced(self, synced: bool) -> None:
        if self.synced != synced:
            self.synced = synced
            self._emit("synced", synced)
        self._changes.notify()

    def _dispose(self) -> None:
        self._disposed = True
        self._sync_run += 1
        self._cancel_resync()
        with contextlib.suppress(Exception):  # unobserved already
            self.ydoc.unobserve(self._doc_subscription)
        # Tell the others we left (while the socket is still up), then stop renewing.
        self.awareness.remove_awareness_states([self.awareness.client_id], "close")
        self.awareness.unobserve(self._awareness_subscription)
        self._awareness_task.cancel()
        self._fail_first_sync(closed_error(f"document {self.name!r}"))
        self.client._forget_doc(self)
        self._set_synced(False)
        self._changes.notify()
        self._end_events()
