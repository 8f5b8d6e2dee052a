"""The limits on a document's versions (actors/versions.py), without a server: the
oldest automatic versions go first to make room, by count and by bytes; a named
version that finds no room is refused, an automatic one skipped."""

from __future__ import annotations

import pytest

from collab.actors.versions import AUTO, NAMED, TooManyVersions, VersionBook
from collab.config import Settings
from collab.storage.base import DeleteVersion, PutVersion


def book() -> VersionBook:
    versions = VersionBook("d")
    versions.forget()  # known and empty, as after ready() on a new document
    return versions


def test_the_oldest_automatic_versions_make_room_by_bytes():
    settings = Settings(max_versions=100, max_version_bytes=100, auto_versions_kept=50)
    versions = book()
    for _ in range(3):
        assert versions.make(settings, AUTO, None, None, b"x" * 30, 1) is not None
    info, ops = versions.make(settings, NAMED, "keep", "ann", b"y" * 30, 1)
    assert info.id == 4
    assert [type(op) for op in ops] == [PutVersion, DeleteVersion]
    assert ops[1].id == 1  # the oldest automatic one
    with pytest.raises(TooManyVersions):  # 30 + 30 + 30 held: no room for 71
        versions.make(settings, NAMED, "big", None, b"z" * 71, 1)
    assert versions.make(settings, AUTO, None, None, b"z" * 71, 1) is None


def test_automatic_versions_kept_and_the_count_limit():
    settings = Settings(max_versions=3, auto_versions_kept=2)
    versions = book()

    def held() -> list[tuple[int, str]]:
        return [(v.id, v.kind) for v in versions._known]  # what it holds

    for _ in range(3):
        versions.make(settings, AUTO, None, None, b"a", 1)
    assert held() == [(2, AUTO), (3, AUTO)]  # COLLAB_AUTO_VERSIONS_KEPT
    versions.make(settings, NAMED, "n1", None, b"a", 1)
    versions.make(settings, NAMED, "n2", None, b"a", 1)  # the count: an auto one goes
    versions.make(settings, NAMED, "n3", None, b"a", 1)
    assert held() == [(4, NAMED), (5, NAMED), (6, NAMED)]
    with pytest.raises(TooManyVersions):  # nothing automatic left to prune
        versions.make(settings, NAMED, "n4", None, b"a", 1)
    assert versions.make(settings, AUTO, None, None, b"a", 1) is None
