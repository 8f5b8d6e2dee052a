"""Workflows in-process on a real SQLite store: recorded steps, retries, durable
sleep across hibernation and restart, failure, status."""

from __future__ import annotations

import pytest

from collab.runtime.queues import UnknownQueue
from collab.runtime.refs import ActorRef
from collab.runtime.workflows import UnknownWorkflow
from tests.apps.counter import Agent, registry
from tests.inproc import Runtime
from tests.waits import until


def agent(rt: Runtime) -> ActorRef:
    return ActorRef(rt.system, Agent, "a")


async def finished(rt: Runtime, run_id: str, ref: ActorRef | None = None) -> dict:
    ref = ref or agent(rt)

    async def check() -> bool:
        status = await ref.workflow_status(run_id)
        return status["status"] in ("done", "failed")

    await until(check)
    return await ref.workflow_status(run_id)


def lines(path) -> list[str]:
    return path.read_text().split()


async def test_workflow_with_retried_step_and_durable_sleep_across_hibernation(runtime,
                                                                              tmp_path):
    log = tmp_path / "tools.log"
    run_id = await agent(runtime).call("begin", str(log), 0.6, 0.0)
    # During the nap nothing runs: the actor hibernates, and its timer wakes it.
    await until(lambda: runtime.system.loaded_count == 0)
    status = await finished(runtime, run_id)
    assert status["status"] == "done" and status["result"] == "done GATHER"
    assert status["steps"] == ["gather", "flaky", "slow"]
    # Resumed after the nap, the recorded steps did not run again.
    assert lines(log) == ["gather", "flaky", "flaky", "flaky", "slow-start", "slow-end"]
    assert await agent(runtime).call("memory") == ["researched GATHER"]


async def test_workflow_resumes_after_restart_without_rerunning_steps(runtime_factory, tmp_path):
    log = tmp_path / "tools.log"
    rt = runtime_factory(registry, "restart")
    await rt.start()
    run_id = await agent(rt).call("begin", str(log), 0.0, 30.0)
    await until(lambda: log.exists() and "slow-start" in lines(log))
    await rt.stop()  # interrupts the slow step: the run stays "running"
    await rt.start()
    status = await agent(rt).workflow_status(run_id)  # loading resumes it
    assert status["status"] == "running" and status["steps"] == ["gather", "flaky"]
    assert lines(log).count("gather") == 1 and lines(log).count("flaky") == 3
    await rt.stop()


async def test_failed_workflow_reports_its_error(runtime):
    run_id = await agent(runtime).start_workflow("doomed")
    status = await finished(runtime, run_id)
    assert status["status"] == "failed" and "step 'never' failed after 2 attempts" in \
        status["error"]


async def test_unknown_workflows(runtime):
    with pytest.raises(UnknownWorkflow):
        await agent(runtime).start_workflow("nope")
    with pytest.raises(UnknownWorkflow):
        await agent(runtime).workflow_status("no-such-run")


async def test_a_step_waits_for_a_queue_message(runtime_factory):
    from tests.apps.counter import Approver

    rt = runtime_factory(registry, "inbox")
    await rt.start()
    approver = ActorRef(rt.system, Approver, "ap")
    first = await approver.start_workflow("purchase", "laptop")
    second = await approver.start_workflow("purchase", "desk")
    assert (await approver.workflow_status(first))["status"] == "running"
    await rt.stop()  # both are waiting: the runs survive the restart
    await rt.start()
    approver = ActorRef(rt.system, Approver, "ap")
    await approver.queue("approvals").send({"verdict": "yes"})
    await approver.queue("approvals").send({"verdict": "no"})
    results = sorted([(await finished(rt, run, approver))["result"] for run in (first, second)])
    # Each message went to exactly one run.
    assert results in (["desk: no", "laptop: yes"], ["desk: yes", "laptop: no"])
    assert await approver.queue("approvals").inspect() == {"pending": 0, "dead": []}
    with pytest.raises(UnknownQueue):
        await approver.queue("nope").send({})
    await rt.stop()


async def test_agent_keeps_memory_schedule_and_workflow_across_hibernation_and_restart(
        runtime_factory, tmp_path):
    """The AI-agent shape end to end: memory in state, a cron job, a workflow with a
    retried step and a durable sleep, delivered across hibernation and a restart."""
    rt = runtime_factory(registry, "agent", idle_timeout=0.3)
    await rt.start()
    await agent(rt).call("remember", "the user likes tea")
    await agent(rt).call("subscribe")
    run_id = await agent(rt).call("begin", str(tmp_path / "tools.log"), 1.5, 0.0)

    async def digests() -> int:
        return (await agent(rt).call("memory")).count("digest")

    async def two_digests() -> bool:
        return await digests() >= 2

    # Left alone, it hibernates between ticks, and the cron entry wakes it again.
    await until(lambda: rt.system.loaded_count == 0)
    await until(lambda: rt.system.loads >= 2)
    await until(two_digests)
    await rt.stop()  # mid-nap, with the cron entry pending
    await rt.start()
    status = await finished(rt, run_id)
    assert status["status"] == "done"
    before = await digests()

    async def cron_still_ticks() -> bool:
        return await digests() > before

    await until(cron_still_ticks)
    memory = await agent(rt).call("memory")
    assert memory[0] == "the user likes tea" and "researched GATHER" in memory
    await rt.stop()
