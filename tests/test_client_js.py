"""The JavaScript client (client-js/) against real servers.

Runs client-js's Node test suite, the files `npm test` runs there
(test/*.test.js, with `node --test`); it starts its own `collab serve`
processes with this interpreter (COLLAB_PYTHON). `npm ci --prefix client-js`
installs what it needs. Any failing Node test fails this test, with the
runner's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.requires import node_with

CLIENT_DIR = Path(__file__).parent.parent / "client-js"
#: The whole Node suite's budget; it takes about 20 s, and each of its waits
#: is bounded on its own.
SUITE_TIMEOUT = 600


def test_client_js_suite():
    node = node_with(CLIENT_DIR, "yjs")
    test_files = sorted(str(path.relative_to(CLIENT_DIR))
                        for path in (CLIENT_DIR / "test").glob("*.test.js"))
    assert test_files, "client-js/test has no *.test.js files"
    env = dict(os.environ, COLLAB_PYTHON=sys.executable)
    proc = subprocess.run(
        [node, "--test", *test_files], cwd=CLIENT_DIR, env=env, capture_output=True, text=True,
        timeout=SUITE_TIMEOUT,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"client-js tests failed (node --test exit {proc.returncode}):\n{output[-30000:]}"
    )
