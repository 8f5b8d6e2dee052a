"""Workflows: `@collab.workflow` methods made of recorded steps, durable sleeps,
and resumption after hibernation, restart or kill -9.

A workflow runs as its own task next to the actor's mailbox, so a long step
(an HTTP call, a model call) never blocks the actor's actions. `ctx.step(name,
fn)` runs `fn` with retries and an optional timeout and commits its result
before the workflow goes on; when the workflow is resumed, it runs again from
the top and every recorded step returns its recorded result instead of running.
So steps must be named uniquely and the code between them must be
deterministic. `ctx.sleep(name, seconds)` records its wake-up time and ends the
run; a durable timer resumes it, even if the actor hibernated in between.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from collab.protocol.codec import pack, unpack
from collab.protocol.text import MAX_ERROR_CHARS, storable
from collab.runtime.actions import ActionError, CallAction, ask, marked_methods
from collab.runtime.replies import answer_with, fail, settle_after
from collab.runtime.travels import travels
from collab.storage.base import DeleteTimer, PutTimer, PutWorkflow, TimerRecord, WorkflowRecord

if TYPE_CHECKING:
    from collab.runtime.actor import Actor

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

RESUME_METHOD = "_resume_workflow"
RESUME_PREFIX = "workflow:"
#: Seconds after which a stored running workflow wakes its actor if the process
#: running it died (kill -9): a safety-net timer row, refreshed while it runs.
RECOVERY_DELAY = 1.0
#: Default step policy: attempts after the first, and the first backoff (doubling).
DEFAULT_STEP_RETRIES = 3
DEFAULT_STEP_BACKOFF = 0.5


def workflow(method: F) -> F:
    """Mark `async def name(self, ctx, *args)` as a workflow of its actor."""
    method.__collab_workflow__ = True  # type: ignore[attr-defined]
    return method


def workflows_of(cls: type) -> dict[str, Callable[..., Any]]:
    """Every `@workflow` method of `cls` and its bases, by name."""
    return {name: member for name, member, _ in marked_methods(cls, "__collab_workflow__")}


class UnknownWorkflow(ActionError):
    code = "unknown_workflow"
    status = 404


class StepFailed(ActionError):
    code = "step_failed"


class _Suspended(BaseException):
    """Ends a run at a durable sleep. A BaseException so `except Exception` in
    workflow code cannot swallow it."""

    def __init__(self, wake_at: float) -> None:
        self.wake_at = wake_at


@travels("workflow.start")
@dataclass(frozen=True, slots=True)
class WorkflowStart:
    name: str
    args: tuple[Any, ...]
    reply: asyncio.Future[str] = field(repr=False)


@travels("workflow.status")
@dataclass(frozen=True, slots=True)
class WorkflowStatus:
    id: str
    reply: asyncio.Future[dict[str, Any]] = field(repr=False)


@dataclass(slots=True)
class Run:
    id: str
    name: str
    args: list[Any]
    status: str  # running | sleeping | done | failed
    steps: dict[str, Any]
    result: Any = None
    error: str | None = None
    created_at: float = 0.0

    def record(self, actor: Actor) -> WorkflowRecord:
        return WorkflowRecord(
            actor.kind, actor.key, self.id, self.name, pack(self.args), self.status,
            pack(self.steps), None if self.status != "done" else pack(self.result),
            self.error, self.created_at, time.time())

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status,
                "steps": [name for name in self.steps if not name.startswith("sleep:")],
                "result": self.result, "error": self.error}


class WorkflowContext:
    """What a workflow receives as `ctx`."""

    def __init__(self, runner: Workflows, run: Run) -> None:
        self._runner = runner
        self._run = run

    @property
    def id(self) -> str:
        return self._run.id

    async def step(self, name: str, fn: Callable[..., Any], *args: Any,
                   retries: int = DEFAULT_STEP_RETRIES,
                   timeout: float | None = None,  # noqa: ASYNC109 - per attempt, not per call
                   backoff: float = DEFAULT_STEP_BACKOFF) -> Any:
        """Run `fn(*args)` (sync or async) once for this workflow run, retrying a
        failure `retries` times with exponential backoff, each attempt bounded by
        `timeout` seconds; the result is committed before this returns. On resume,
        returns the recorded result without running `fn`. Raises StepFailed."""
        steps = self._run.steps
        if name in steps:
            return steps[name]
        attempt = 0
        while True:
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    result = await (asyncio.wait_for(result, timeout) if timeout else result)
                pack(result)  # a result we cannot record is a failure of the step
                break
            except (asyncio.CancelledError, _Suspended):
                raise
            except Exception as exc:
                attempt += 1
                if attempt > retries:
                    raise StepFailed(f"step {name!r} failed after {attempt} attempts: "
                                     f"{exc!r}") from exc
                log.info("workflow %s step %r failed (attempt %d), retrying: %r",
                         self._run.id, name, attempt, exc)
                await asyncio.sleep(backoff * 2 ** (attempt - 1))
        steps[name] = result
        await self._runner.save(self._run)
        return result

    async def sleep(self, name: str, seconds: float) -> None:
        """Pause the workflow durably for `seconds`; the actor may hibernate meanwhile."""
        key = f"sleep:{name}"
        wake_at = self._run.steps.get(key)
        if wake_at is None:
            wake_at = time.time() + seconds
            self._run.steps[key] = wake_at
            await self._runner.save(self._run)
        if time.time() < wake_at:
            raise _Suspended(wake_at)

    async def receive(self, name: str, queue: str) -> Any:
        """Wait for the next message of inbox `queue` (a queue listed in the actor's
        `inboxes`) and record it as step `name`. Taking the message out of the queue
        and recording it commit together, so it is delivered to this run exactly once."""
        steps = self._run.steps
        if name in steps:
            return steps[name]
        head, removal = await self._runner.actor.queues.receive(queue)
        message = unpack(head.body)
        steps[name] = message
        await self._runner.save(self._run, removal)
        return message

    async def call(self, action: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run one of this actor's actions (through its mailbox): the way for a
        workflow to change the actor's state."""
        actor = self._runner.actor
        return await ask(actor.system, type(actor), actor.key,
                         lambda reply: CallAction(action, args, kwargs, reply), repr(action))


class Workflows:
    """The workflow runs of one actor (`actor.workflows`)."""

    __slots__ = ("_tasks", "actor", "runs")

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.runs: dict[str, Run] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def busy(self) -> bool:
        return bool(self._tasks)

    def load(self, records: list[WorkflowRecord]) -> None:
        """Hold every run; resume those that were running (interrupted by a stop)."""
        for r in records:
            run = Run(r.id, r.name, unpack(r.args), r.status, unpack(r.steps),
                      None if r.result is None else unpack(r.result), r.error, r.created_at)
            self.runs[run.id] = run
            if run.status == "running":
                self.launch(run)

    def safety_net(self, run_id: str) -> PutTimer:
        """A timer row (not armed in memory) that wakes this actor after a crash, so a
        running workflow resumes without anyone calling the actor."""
        self.actor.schedule.untrack(RESUME_PREFIX + run_id)
        record = TimerRecord(self.actor.kind, self.actor.key, RESUME_PREFIX + run_id,
                             time.time() + RECOVERY_DELAY, RESUME_METHOD, pack([run_id]))
        return PutTimer(record)

    def finished(self, run_id: str) -> DeleteTimer:
        self.actor.schedule.untrack(RESUME_PREFIX + run_id)
        return DeleteTimer(self.actor.kind, self.actor.key, RESUME_PREFIX + run_id)

    def start(self, name: str, args: tuple[Any, ...]) -> tuple[Run, list[Any]]:
        if name not in self.actor._workflow_methods:
            raise UnknownWorkflow(f"{self.actor.kind} has no workflow {name!r}")
        try:
            pack(list(args))
        except (TypeError, ValueError) as exc:
            raise ActionError(f"workflow arguments are not msgpack-serializable: {exc}",
                              code="invalid_arguments") from None
        run = Run(uuid.uuid4().hex, name, list(args), "running", {}, created_at=time.time())
        self.runs[run.id] = run
        return run, [PutWorkflow(run.record(self.actor)), self.safety_net(run.id)]

    def status(self, run_id: str) -> dict[str, Any]:
        run = self.runs.get(run_id)
        if run is None:
            raise UnknownWorkflow(f"no workflow run {run_id!r} on {self.actor.kind}")
        return run.describe()

    async def handle_start(self, message: WorkflowStart) -> None:
        try:
            run, ops = self.start(message.name, message.args)
        except ActionError as exc:
            fail(message.reply, exc)
            return
        commit = self.actor.submit(ops)
        self.launch(run)
        settle_after(message.reply, run.id, commit)

    async def handle_status(self, message: WorkflowStatus) -> None:
        answer_with(message.reply, lambda: self.status(message.id))

    def resume(self, run_id: str) -> None:
        """A run's timer fired: resume it if it sleeps, and keep its safety net while it
        runs; a run that ended only loses its timer."""
        run = self.runs.get(run_id)
        if run is not None and run.status in ("sleeping", "running"):
            if run.status == "sleeping":
                self.launch(run)
            op: Any = self.safety_net(run_id)  # until it ends
        else:
            op = self.finished(run_id)
        self.actor.submit([op])

    def launch(self, run: Run) -> None:
        run.status = "running"
        task = asyncio.get_running_loop().create_task(self._drive(run),
                                                      name=f"workflow:{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))

    async def save(self, run: Run, *extra: Any) -> None:
        await self.actor.submit([PutWorkflow(run.record(self.actor)), *extra])

    async def _drive(self, run: Run) -> None:
        method = self.actor._workflow_methods[run.name]
        ctx = WorkflowContext(self, run)
        try:
            result = await method(self.actor, ctx, *run.args)
            pack(result)
        except _Suspended as suspended:
            run.status = "sleeping"
            timer = self.actor.schedule.internal(RESUME_PREFIX + run.id, suspended.wake_at,
                                                 RESUME_METHOD, run.id)
            await self.save(run, timer)
            return
        except asyncio.CancelledError:
            raise  # stopped with the actor: still "running", resumed on the next load
        except Exception as exc:
            # A text column holds neither NUL nor a lone surrogate: escaped instead.
            error = storable(f"{type(exc).__name__}: {exc}", MAX_ERROR_CHARS)
            run.status, run.error = "failed", error
            log.warning("%s %r: workflow %s (%s) failed: %s", self.actor.kind, self.actor.key,
                        run.id, run.name, run.error)
            await self.save(run, self.finished(run.id))
            return
        run.status, run.result = "done", result
        await self.save(run, self.finished(run.id))

    async def stop(self) -> None:
        """Cancel the running tasks (they resume from their records on the next load)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
