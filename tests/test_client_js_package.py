"""client-js installed the way a user installs it, outside this repository.

`npm pack` makes the tarball; a temporary app installs it with yjs and ws
(npm's cache first, `--prefer-offline`) and imports it from Node
(tests/js/packaged_app.mjs), syncing a document through a real server. The app
must load a single copy of Yjs, the one it installed itself: the client finds
the same `yjs` the app does, and Yjs never warns "Yjs was already imported".
A linked install (`npm install <folder>`) is the counter-example: it loads the
checkout's own copy as well, which is why the README says to pack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.requires import node_with, require
from tests.waits import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIR = ROOT / "client-js"
APP_SCRIPT = ROOT / "tests" / "js" / "packaged_app.mjs"
#: Seconds an `npm pack` or `npm install` may take: from the cache they take a
#: second or two; from the registry on a slow link, longer.
NPM_TIMEOUT = 180
#: The app's own budget (ms), and the subprocess's, above it so the app still reports.
APP_TIMEOUT_MS = int(TIMEOUT * 1000)
APP_SUBPROCESS_TIMEOUT = TIMEOUT + 10
#: What Yjs prints when a second copy of it is imported into the same process.
TWO_COPIES_WARNING = "Yjs was already imported"


@pytest.fixture(scope="module")
def npm() -> str:
    node_with(CLIENT_DIR, "yjs")
    path = shutil.which("npm")
    require("npm", path is not None, "install npm (it comes with Node)")
    return path


def run_npm(npm: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run([npm, *args, "--no-audit", "--no-fund"], cwd=cwd, capture_output=True,
                          text=True, timeout=NPM_TIMEOUT)
    assert proc.returncode == 0, f"npm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def make_app(directory: Path) -> Path:
    """An empty application in `directory`, outside the repository."""
    directory.mkdir()
    assert ROOT not in directory.resolve().parents, directory
    (directory / "package.json").write_text(
        json.dumps({"name": "collab-client-user", "private": True, "type": "module"}))
    shutil.copy(APP_SCRIPT, directory / "app.mjs")
    return directory


def peers() -> list[str]:
    """yjs and ws at the versions client-js is tested with (so npm's cache has them)."""
    dev = json.loads((CLIENT_DIR / "package.json").read_text())["devDependencies"]
    return [f"yjs@{dev['yjs']}", f"ws@{dev['ws']}"]


def run_app(app: Path, server=None) -> dict:
    """Run the app: its imports, and a document synced through `server` (if given)."""
    env = {k: v for k, v in os.environ.items() if k != "NODE_PATH"}
    target = "imports-only" if server is None else f"ws://127.0.0.1:{server.port}/ws"
    proc = subprocess.run(
        [shutil.which("node"), "app.mjs", target, str(APP_TIMEOUT_MS)],
        cwd=app, env=env, capture_output=True, text=True, timeout=APP_SUBPROCESS_TIMEOUT,
    )
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and result.get("ok"), (
        f"the app failed (exit {proc.returncode})\nstdout: {proc.stdout[-6000:]}\n"
        f"stderr: {proc.stderr[-3000:]}"
    )
    return result


def test_packed_tarball_installs_with_one_yjs(npm, server, tmp_path):
    packed = json.loads(run_npm(npm, "pack", "--json", "--pack-destination", str(tmp_path),
                                cwd=CLIENT_DIR))
    tarball = tmp_path / packed[0]["filename"]
    assert tarball.name.startswith("collab-client-") and tarball.is_file()
    shipped = {entry["path"] for entry in packed[0]["files"]}
    assert {"index.js", "index.d.ts", "package.json", "README.md", "src/client.js"} <= shipped
    assert not any(path.startswith(("test/", "node_modules/")) for path in shipped), shipped

    app = make_app(tmp_path / "app")
    run_npm(npm, "install", "--prefer-offline", str(tarball), *peers(), cwd=app)
    # Copied from the tarball, not linked back into the repository.
    installed = app / "node_modules" / "@collab" / "client"
    assert installed.is_dir() and not installed.is_symlink()
    yjs_copies = sorted(str(p.parent.relative_to(app))
                        for p in (app / "node_modules").rglob("yjs/package.json"))
    assert yjs_copies == ["node_modules/yjs"], yjs_copies

    result = run_app(app, server)
    assert result["text"] == "hello from the tarball"
    assert Path(result["clientEntry"]).is_relative_to(installed)
    assert result["yjsForClient"] == result["yjsForApp"]
    assert Path(result["yjsForApp"]).is_relative_to(app / "node_modules" / "yjs")
    assert result["textIsAppsYText"] is True
    assert not [w for w in result["warnings"] if TWO_COPIES_WARNING in w], result["warnings"]


def test_a_linked_install_loads_a_second_yjs(npm, tmp_path):
    """What the README warns about, and proof that the checks above can fail (a
    document does not even sync then: the two copies' types do not mix)."""
    app = make_app(tmp_path / "app")
    run_npm(npm, "install", "--prefer-offline", "--install-links=false", str(CLIENT_DIR),
            *peers(), cwd=app)
    assert (app / "node_modules" / "@collab" / "client").is_symlink()
    result = run_app(app)
    assert result["yjsForClient"] != result["yjsForApp"]
    assert [w for w in result["warnings"] if TWO_COPIES_WARNING in w], result["warnings"]
