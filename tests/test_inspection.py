"""What `collab actors show` and the admin API render of an actor's stored rows
(runtime/inspection.py), and the listing parameters they accept."""

from __future__ import annotations

import json

import pytest

from collab.errors import BadRequest
from collab.protocol.codec import pack
from collab.runtime.inspection import (
    MAX_PAGE_SIZE,
    check_kind,
    check_limit,
    cursor_of,
    iso_time,
    parse_cursor,
    render_actor,
    summary_json,
)
from collab.storage.base import ActorSummary, QueueRecord, TimerRecord, WorkflowRecord

#: 2026-01-02T03:04:05.678Z
T = 1767323045.678


def test_render_actor_shows_every_stored_row_as_json():
    timers = [TimerRecord("k", "a", "t1", T, "ring", pack(["note", b"\x01"])),
              TimerRecord("k", "a", "cron:daily", T + 60, "digest", pack([]),
                          cron="0 9 * * *", tz="Europe/Paris", attempts=2),
              TimerRecord("k", "a", "queue:jobs", T, "_drain_queue", pack(["jobs"]))]
    queues = [QueueRecord("k", "a", "alpha", 3, pack({"n": 3}), enqueued_at=T),
              QueueRecord("k", "a", "jobs", 1, pack({"n": 1}), attempts=1, enqueued_at=T),
              QueueRecord("k", "a", "jobs", 2, pack({"poison": True}), attempts=3, dead=True,
                          error="RuntimeError: cannot", enqueued_at=T)]
    runs = [WorkflowRecord("k", "a", "r1", "research", pack(["topic"]), "sleeping",
                           pack({"gather": [1, 2], "sleep:nap": T}), created_at=T,
                           updated_at=T + 1),
            WorkflowRecord("k", "a", "r2", "doomed", pack([]), "failed", pack({}),
                           error="StepFailed: no", created_at=T, updated_at=T),
            WorkflowRecord("k", "a", "r3", "quick", pack([]), "done", pack({"s": None}),
                           result=pack({"total": 42}), created_at=T, updated_at=T)]
    shown = render_actor("k", "a", pack({"count": 2, "raw": b"\xff", 7: "seven"}), timers,
                         queues, runs)
    json.dumps(shown, allow_nan=False)
    assert shown["kind"] == "k" and shown["key"] == "a"
    assert shown["state"] == {"count": 2, "raw": {"$bytes": "/w=="}, "7": "seven"}
    assert shown["state_bytes"] == len(pack({"count": 2, "raw": b"\xff", 7: "seven"}))
    assert shown["timers"] == [
        {"id": "t1", "method": "ring", "args": ["note", {"$bytes": "AQ=="}],
         "due": "2026-01-02T03:04:05.678Z", "cron": None, "tz": None, "attempts": 0,
         "internal": False},
        {"id": "cron:daily", "method": "digest", "args": [],
         "due": "2026-01-02T03:05:05.678Z", "cron": "0 9 * * *", "tz": "Europe/Paris",
         "attempts": 2, "internal": False},
        {"id": "queue:jobs", "method": "_drain_queue", "args": ["jobs"],
         "due": "2026-01-02T03:04:05.678Z", "cron": None, "tz": None, "attempts": 0,
         "internal": True},
    ]
    assert shown["queues"] == {
        "alpha": {"pending": 1, "dead": []},
        "jobs": {"pending": 1, "dead": [{"seq": 2, "message": {"poison": True}, "attempts": 3,
                                         "error": "RuntimeError: cannot",
                                         "enqueued_at": "2026-01-02T03:04:05.678Z"}]},
    }
    sleeping, failed, done = shown["workflows"]
    assert sleeping == {"id": "r1", "name": "research", "status": "sleeping", "args": ["topic"],
                        "steps": [{"step": "gather", "result": [1, 2]},
                                  {"sleep": "nap", "until": "2026-01-02T03:04:05.678Z"}],
                        "result": None, "error": None,
                        "created_at": "2026-01-02T03:04:05.678Z",
                        "updated_at": "2026-01-02T03:04:06.678Z"}
    assert (failed["status"], failed["error"], failed["steps"]) == ("failed", "StepFailed: no",
                                                                    [])
    assert done["result"] == {"total": 42}
    assert done["steps"] == [{"step": "s", "result": None}]


def test_an_actor_without_state_and_damaged_rows_render():
    damaged = WorkflowRecord("k", "a", "r", "w", b"\xc1", "running", b"\x92\x01")
    shown = render_actor("k", "a", None, [TimerRecord("k", "a", "t", 1e300, "m", b"\x90")],
                         [], [damaged])
    assert shown["state"] is None and shown["state_bytes"] is None
    assert shown["timers"][0]["due"] == 1e300  # no calendar holds it: shown as stored
    assert shown["workflows"][0]["args"]["$undecodable"] == "wQ=="
    assert shown["workflows"][0]["steps"]["$undecodable"] == "kgE="
    json.dumps(shown, allow_nan=False)


def test_summary_json():
    summary = ActorSummary("k", "a", 12, T, 3, T, 4, 1, 2, 1)
    assert summary_json(summary) == {
        "kind": "k", "key": "a", "state_bytes": 12,
        "state_updated_at": "2026-01-02T03:04:05.678Z", "timers": 3,
        "next_due": "2026-01-02T03:04:05.678Z", "queued": 4, "dead_letters": 1,
        "workflows": 2, "workflows_active": 1}
    empty = summary_json(ActorSummary("k", "a", None, None, 0, None, 0, 0, 1, 0))
    assert empty["state_bytes"] is None and empty["next_due"] is None


def test_iso_time():
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(None) is None


@pytest.mark.parametrize("kind", ["counter", "room", "a-b_9"])
def test_kinds_that_can_name_an_actor_type(kind):
    assert check_kind(kind) == kind


@pytest.mark.parametrize("kind", ["", "Counter", "9lives", "a:b", "x" * 65, "a b"])
def test_kinds_that_cannot(kind):
    with pytest.raises(BadRequest) as refused:
        check_kind(kind)
    assert (refused.value.code, refused.value.status) == ("invalid_kind", 400)


def test_page_sizes():
    assert check_limit(1) == 1 and check_limit(MAX_PAGE_SIZE) == MAX_PAGE_SIZE
    for bad in (0, -1, MAX_PAGE_SIZE + 1):
        with pytest.raises(BadRequest) as refused:
            check_limit(bad)
        assert refused.value.code == "invalid_limit"


def test_cursors_round_trip_keys_with_colons_and_slashes():
    for kind, key in [("counter", "a"), ("room", "team/notes"), ("k", "a:b:c")]:
        assert parse_cursor(cursor_of(kind, key)) == (kind, key)
    for bad in ["counter", "counter:", ":a", "Counter:a", ""]:
        with pytest.raises(BadRequest) as refused:
            parse_cursor(bad)
        assert refused.value.code == "invalid_cursor"
