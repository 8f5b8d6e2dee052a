"""The README's stock Yjs clients ("Stock Yjs clients in Node and Python") run as written.

Each snippet is taken from README.md, pointed at a real server (its URL and
document name replaced), and run in a process of its own: the Python one with
this interpreter, the Node one beside tests/js's y-websocket and ws. Each must
read the document and write to it, which the server's copy then shows.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_interop_node import JS_DIR, require_node, server_content
from tests.waits import POLL_INTERVAL, TIMEOUT

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "### Stock Yjs clients in Node and Python"
#: The snippets' server and document, replaced by the test's.
README_HOST = "ws://127.0.0.1:1234/yjs"
README_DOC = "my-document"
#: A snippet's process may take this long (seconds); each waits on the network only.
RUN_TIMEOUT = TIMEOUT


def snippet(language: str) -> str:
    """The first ```language block of the README's section on stock clients."""
    section = README.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block under {SECTION!r} in README.md"
    return match.group(1)


def pointed_at(code: str, server, doc: str) -> str:
    assert README_HOST in code and README_DOC in code
    return code.replace(README_HOST, f"ws://127.0.0.1:{server.port}/yjs").replace(README_DOC, doc)


def until_server_text(server, doc: str, expected: str) -> str:
    deadline = time.monotonic() + TIMEOUT
    while (text := server_content(server.http_url, doc)["text"]) != expected:
        assert time.monotonic() < deadline, f"the server's {doc} holds {text!r}"
        time.sleep(POLL_INTERVAL * 10)
    return text


def run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def node() -> str:
    return require_node()


def test_python_snippet_reads_and_writes(server, tmp_path):
    script = tmp_path / "readme_client.py"
    script.write_text(pointed_at(snippet("python"), server, "readme/python"))
    out = run([sys.executable, str(script)], tmp_path)
    assert out == "the server has: \n"
    until_server_text(server, "readme/python", "hello from Python\n")
    # A second run reads what the first wrote, and adds to it.
    out = run([sys.executable, str(script)], tmp_path)
    assert out == "the server has: hello from Python\n\n"
    until_server_text(server, "readme/python", "hello from Python\nhello from Python\n")


def test_node_snippet_syncs_and_writes(server, node, tmp_path):
    # Beside tests/js's packages: its node_modules, linked, resolve the imports.
    (tmp_path / "node_modules").symlink_to(JS_DIR / "node_modules")
    script = tmp_path / "readme_client.mjs"
    script.write_text(pointed_at(snippet("js"), server, "readme/node") + f"""
// Added by the test: once synced (the insert is sent by then), destroy the
// provider and the doc (its awareness), and their timers with them, so Node exits.
setTimeout(() => process.exit(2), {int(RUN_TIMEOUT * 1000) // 2}).unref()
provider.on('sync', (synced) => {{
  if (synced) setTimeout(() => {{ provider.destroy(); ydoc.destroy() }}, 0)
}})
""")
    run([node, str(script)], tmp_path)
    until_server_text(server, "readme/node", "hello from Node\n")
