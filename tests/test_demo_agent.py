"""The agent example in the demo, in headless Chromium (demo/test/agent.mjs): a
page writes notes and sends /summarize in the chat; the agent (examples/agent, on
the server with --app) answers in the chat, shows its named caret while typing, and
the summary lands in the editor. Screenshots in tests/artifacts/demo-agent-*.png."""

from __future__ import annotations

import asyncio

from examples.agent import models
from examples.agent.writing import answer_block
from tests.test_demo import run_browser_test

NOTES = "We met on Monday. The launch moves to March."


def test_the_agent_types_a_summary_the_page_sees_with_its_caret(server_factory):
    # Slow enough typing that its caret is on screen for a while.
    server = server_factory("agent", env={"COLLAB_AGENT_TYPING_DELAY": "0.2"},
                            args=("--app", "examples.agent:registry"))
    result = run_browser_test(server, "--notes", NOTES, script="agent.mjs", doc="agent-demo")
    summary = asyncio.run(models.local("summarize", NOTES))
    assert result["text"] == NOTES + answer_block("summarize", "ann", summary)
    assert result["caretSeen"] and "Summary (asked by ann):" in result["visible"]
    assert not result.get("pageErrors"), result["pageErrors"]
