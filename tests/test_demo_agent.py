"""The agent example in the demo, in headless Chromium (demo/test/agent.mjs): a
page writes notes and sends /summarize in the chat; the agent (examples/agent, on
the server with --app) answers in the chat, shows its named caret while typing, and
the summary lands in the editor. Screenshots in tests/artifacts/demo-agent-*.png."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from examples.agent import models
from examples.agent.writing import answer_block
from tests.requires import node_with, require
from tests.serverproc import TIMEOUT
from tests.test_demo import ARTIFACTS, CHROMIUM, DEMO

NOTES = "We met on Monday. The launch moves to March."


def test_the_agent_types_a_summary_the_page_sees_with_its_caret(server_factory):
    # Slow enough typing that its caret is on screen for a while.
    server = server_factory("agent", env={"COLLAB_AGENT_TYPING_DELAY": "0.2"},
                            args=("--app", "examples.agent:registry"))
    node = node_with(DEMO, "playwright-core")
    require("chromium", Path(CHROMIUM).exists(), "apt-get install chromium")
    proc = subprocess.run(
        [node, str(DEMO / "test" / "agent.mjs"), "--url", server.http_url, "--doc", "agent-demo",
         "--shots", str(ARTIFACTS), "--timeout-ms", str(int(TIMEOUT * 1000)), "--notes", NOTES],
        capture_output=True, text=True, timeout=TIMEOUT * 4, cwd=DEMO)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and result.get("ok"), (
        f"stdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-3000:]}"
        f"\nserver log: {server.log()[-3000:]}")
    summary = asyncio.run(models.local("summarize", NOTES))
    assert result["text"] == NOTES + answer_block("summarize", "ann", summary)
    assert result["caretSeen"] and "Summary (asked by ann):" in result["visible"]
    assert not result.get("pageErrors"), result["pageErrors"]
