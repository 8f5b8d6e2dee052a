"""What the store holds for application actors, as JSON: a page of the actors with
anything stored, and one actor's state, timers, queues and workflow runs. The one
rendering behind `collab actors` and `GET /api/admin/actors`.

It reads the store, never a live actor: for a loaded actor it shows the last
committed state, which is all any caller was ever told about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from collab.errors import BadRequest, CollabError
from collab.protocol.msgpack_json import decode_as_json, is_undecodable
from collab.runtime.actor import KIND_PATTERN
from collab.runtime.queues import DRAIN_METHOD
from collab.runtime.workflows import RESUME_METHOD
from collab.storage.base import (
    ActorSummary,
    QueueRecord,
    Store,
    TimerRecord,
    WorkflowRecord,
)

#: Actors per listing page unless asked otherwise, and the most one page may hold:
#: each listed actor costs six indexed counts, so a page stays a few milliseconds
#: of database time (1,000 actors: 12 ms on SQLite, 35 ms on Postgres, measured).
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: Separates kind and key in a cursor; a kind never contains it (KIND_PATTERN).
CURSOR_SEPARATOR = ":"
#: Timer methods the runtime sets for itself (queue drains, workflow wake-ups).
INTERNAL_TIMER_METHODS = (DRAIN_METHOD, RESUME_METHOD)
#: Recorded workflow steps whose name starts so are durable sleeps (runtime/workflows.py).
SLEEP_STEP_PREFIX = "sleep:"


class ActorNotFound(CollabError):
    """The store holds nothing for this actor: no state, timer, queue message or run."""

    code = "actor_not_found"
    status = 404


# -- what a request may ask for ---------------------------------------------------------


def check_kind(kind: str) -> str:
    """`kind` if it can name an actor type, else BadRequest `invalid_kind`."""
    if not KIND_PATTERN.fullmatch(kind):
        raise BadRequest(f"invalid kind {kind!r}: kinds match {KIND_PATTERN.pattern}",
                         code="invalid_kind")
    return kind


def check_limit(limit: int) -> int:
    """`limit` if it is a page size we serve, else BadRequest `invalid_limit`."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit must be 1 to {MAX_PAGE_SIZE}, got {limit}",
                         code="invalid_limit")
    return limit


def parse_cursor(cursor: str) -> tuple[str, str]:
    """"kind:key" (a page's `next`) as (kind, key), else BadRequest `invalid_cursor`."""
    kind, separator, key = cursor.partition(CURSOR_SEPARATOR)
    if not separator or not key or not KIND_PATTERN.fullmatch(kind):
        raise BadRequest(f"invalid cursor {cursor!r}: expected KIND:KEY, such as a "
                         'page\'s "next"', code="invalid_cursor")
    return kind, key


def cursor_of(kind: str, key: str) -> str:
    return f"{kind}{CURSOR_SEPARATOR}{key}"


# -- reading the store ---------------------------------------------------------------------


async def list_page(store: Store, kind: str | None = None,
                    after: tuple[str, str] | None = None,
                    limit: int = DEFAULT_PAGE_SIZE) -> dict[str, Any]:
    """`{"actors": [...], "next": cursor or None}`: up to `limit` actors after
    `after`; `next` is None when this page holds the last one."""
    rows = await store.list_actors(kind, after, limit + 1)  # one more: is there a next page?
    page = rows[:limit]
    more = len(rows) > limit
    return {"actors": [summary_json(row) for row in page],
            "next": cursor_of(page[-1].kind, page[-1].key) if more else None}


async def show(store: Store, kind: str, key: str) -> dict[str, Any]:
    """Everything stored for actor (kind, key), rendered (render_actor). The four reads
    are not one snapshot: a live actor may commit between them. Raises ActorNotFound."""
    state, timers, queues, workflows = await asyncio.gather(
        store.load_actor_state(kind, key), store.load_timers(kind, key),
        store.load_queues(kind, key), store.load_workflows(kind, key))
    if state is None and not timers and not queues and not workflows:
        raise ActorNotFound(f"nothing is stored for actor {kind}:{key}")
    return render_actor(kind, key, state, timers, queues, workflows)


# -- rendering -------------------------------------------------------------------------------


def summary_json(summary: ActorSummary) -> dict[str, Any]:
    """One entry of a listing page."""
    return {"kind": summary.kind, "key": summary.key, "state_bytes": summary.state_bytes,
            "state_updated_at": iso_time(summary.state_updated_at),
            "timers": summary.timers, "next_due": iso_time(summary.next_due),
            "queued": summary.queued, "dead_letters": summary.dead_letters,
            "workflows": summary.workflows, "workflows_active": summary.workflows_active}


def render_actor(kind: str, key: str, state: bytes | None, timers: Iterable[TimerRecord],
                 queues: Iterable[QueueRecord],
                 workflows: Iterable[WorkflowRecord]) -> dict[str, Any]:
    """One actor's stored rows as JSON-safe values (protocol/msgpack_json.py): its state
    (None if it has no state row), timers soonest first, queues by name with their
    depth and dead letters, workflow runs oldest first. Times are ISO 8601 UTC."""
    return {
        "kind": kind, "key": key,
        "state": None if state is None else decode_as_json(state),
        "state_bytes": None if state is None else len(state),
        "timers": [_timer(timer) for timer in timers],
        "queues": _queues(queues),
        "workflows": [_workflow(run) for run in workflows],
    }


def _timer(timer: TimerRecord) -> dict[str, Any]:
    return {"id": timer.id, "method": timer.method, "args": decode_as_json(timer.args),
            "due": iso_time(timer.due), "cron": timer.cron, "tz": timer.tz,
            "attempts": timer.attempts, "internal": timer.method in INTERNAL_TIMER_METHODS}


def _queues(messages: Iterable[QueueRecord]) -> dict[str, Any]:
    queues: dict[str, dict[str, Any]] = {}
    for message in messages:
        queue = queues.setdefault(message.queue, {"pending": 0, "dead": []})
        if not message.dead:
            queue["pending"] += 1
            continue
        queue["dead"].append({"seq": message.seq, "message": decode_as_json(message.body),
                              "attempts": message.attempts, "error": message.error,
                              "enqueued_at": iso_time(message.enqueued_at)})
    return queues


def _workflow(run: WorkflowRecord) -> dict[str, Any]:
    steps = decode_as_json(run.steps)
    return {"id": run.id, "name": run.name, "status": run.status,
            "args": decode_as_json(run.args),
            "steps": _steps(steps) if _recorded_map(steps) else steps,
            "result": None if run.result is None else decode_as_json(run.result),
            "error": run.error, "created_at": iso_time(run.created_at),
            "updated_at": iso_time(run.updated_at)}


def _recorded_map(steps: Any) -> bool:
    """True if `steps` is a run's map of step name to result (not a damaged row)."""
    return isinstance(steps, dict) and not is_undecodable(steps)


def _steps(recorded: dict[str, Any]) -> list[dict[str, Any]]:
    """Recorded steps in the order they were recorded: `{"step", "result"}`, or for a
    durable sleep `{"sleep", "until"}`."""
    steps = []
    for name, value in recorded.items():
        if name.startswith(SLEEP_STEP_PREFIX) and isinstance(value, int | float):
            steps.append({"sleep": name[len(SLEEP_STEP_PREFIX):], "until": iso_time(value)})
        else:
            steps.append({"step": name, "result": value})
    return steps


def iso_time(unix: float | None) -> str | float | None:
    """`unix` (seconds) as ISO 8601 UTC with milliseconds, `2026-11-26T13:52:06.606Z`;
    a number no calendar holds (a damaged row) is shown as it is."""
    if unix is None:
        return None
    try:
        moment = datetime.fromtimestamp(unix, UTC)
    except (OverflowError, OSError, ValueError):
        return unix
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
