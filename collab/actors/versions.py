"""A document's versions, as its actor keeps them: which exist, the next id, and the
store writes that make one within the document's limits.

A version is the document's full state at one moment, stored beside it
(storage.base.PutVersion). Named ones are made on request (`POST …/versions`);
automatic ones after COLLAB_AUTO_VERSION_SECONDS of editing and when the
document hibernates after edits; a restore first keeps the state it replaces
(kind "restore"). Each document keeps at most COLLAB_MAX_VERSIONS versions of at
most COLLAB_MAX_VERSION_BYTES in all, and at most COLLAB_AUTO_VERSIONS_KEPT
automatic ones: to make room the oldest automatic versions go first; a named
version that finds no room is refused (409), an automatic one is skipped.
"""

from __future__ import annotations

import time
from typing import Any

from collab.config import Settings
from collab.errors import BadRequest
from collab.storage.base import DeleteVersion, PutVersion, Store, VersionInfo, WriteOp

NAMED, AUTO, RESTORE = "named", "auto", "restore"
#: Characters a version's name may have.
MAX_NAME_CHARS = 200


class TooManyVersions(BadRequest):
    """The document holds as many versions (or version bytes) as it may."""

    code = "too_many_versions"
    status = 409


class VersionNotFound(BadRequest):
    code = "version_not_found"
    status = 404


class VersionBook:
    """The versions of one document: read from the store on first use, kept in step
    with the writes this actor submits (it is their only writer)."""

    __slots__ = ("_known", "doc")

    def __init__(self, doc: str) -> None:
        self.doc = doc
        self._known: list[VersionInfo] | None = None

    async def ready(self, store: Store) -> None:
        if self._known is None:
            self._known = await store.list_versions(self.doc)

    def forget(self) -> None:
        """The document was deleted: its versions went with it."""
        self._known = []

    def make(self, settings: Settings, kind: str, name: str | None, author: str | None,
             state: bytes, epoch: int) -> tuple[VersionInfo, list[WriteOp]] | None:
        """The version of `state` and the writes that store it (pruning what must go
        to make room). None for an automatic version with no room; raises
        TooManyVersions for another kind."""
        assert self._known is not None, "ready() first"
        known = self._known
        gone = self._room_for(settings, kind, len(state))
        if gone is None:
            if kind == AUTO:
                return None
            raise TooManyVersions(
                f"document {self.doc!r} holds {len(known)} versions "
                f"({sum(v.bytes for v in known)} bytes); the limits are "
                f"{settings.max_versions} and {settings.max_version_bytes} bytes: delete the "
                "document's oldest automatic versions or raise COLLAB_MAX_VERSIONS")
        version = VersionInfo(self.doc, (known[-1].id if known else 0) + 1, kind, name, author,
                              time.time(), epoch, len(state))
        self._known = [v for v in known if v not in gone] + [version]
        return version, [PutVersion(version, state),
                         *(DeleteVersion(self.doc, v.id) for v in gone)]

    def _room_for(self, settings: Settings, kind: str, size: int) -> list[VersionInfo] | None:
        """The automatic versions to delete so that one more of `kind` and `size`
        fits, oldest first; None if it cannot fit."""
        known = self._known or []
        autos = [v for v in known if v.kind == AUTO]
        count, total = len(known) + 1, sum(v.bytes for v in known) + size
        gone: list[VersionInfo] = []
        kept_autos = len(autos) + (kind == AUTO)
        for old in autos:
            if (count <= settings.max_versions and total <= settings.max_version_bytes
                    and kept_autos <= max(settings.auto_versions_kept, 1)):
                break
            gone.append(old)
            count, total, kept_autos = count - 1, total - old.bytes, kept_autos - 1
        if count > settings.max_versions or total > settings.max_version_bytes:
            return None
        return gone


def describe(info: VersionInfo) -> dict[str, Any]:
    """A version as answers carry it (created_at a Unix time)."""
    return {"id": info.id, "name": info.name, "kind": info.kind, "author": info.author,
            "created_at": info.created_at, "bytes": info.bytes}


def check_name(name: object) -> str:
    """A version name from a request body, or BadRequest."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise BadRequest(f'"name" must be a string of 1 to {MAX_NAME_CHARS} characters',
                         code="invalid_name")
    return name
