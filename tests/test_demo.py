"""The demo at `/`: served by a plain `collab serve`, its committed bundle rebuilt
from demo/ byte for byte, and two headless Chromium pages (Debian's chromium,
driven by playwright-core from demo/node_modules) editing and chatting together.
Screenshots land in tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.requires import node_with, require
from tests.serverproc import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
STATIC = ROOT / "collab" / "static"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


async def test_the_demo_page_and_its_assets_are_served(server, session):
    resp = await session.get(server.http_url + "/")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert '<script type="module" src="/static/demo.js">' in page
    for asset, kind in [("demo.js", "javascript"), ("demo.css", "text/css")]:
        resp = await session.get(f"{server.http_url}/static/{asset}")
        assert resp.status == 200 and kind in resp.content_type, asset
    resp = await session.get(server.http_url + "/static/../pyproject.toml")
    assert resp.status in (403, 404)


def test_the_committed_bundle_is_current(tmp_path):
    node = node_with(DEMO, "esbuild")
    proc = subprocess.run([node, str(DEMO / "build.mjs"), "--outdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    built = sorted(p.name for p in tmp_path.iterdir())
    assert built == sorted(p.name for p in STATIC.iterdir())
    stale = [name for name in built
             if (tmp_path / name).read_bytes() != (STATIC / name).read_bytes()]
    assert not stale, f"collab/static/ is stale ({stale}): run `npm run build --prefix demo`"


def test_two_browsers_edit_and_chat_together(server):
    node = node_with(DEMO, "esbuild")
    require("chromium", Path(CHROMIUM).exists(), "apt-get install chromium")
    node_with(DEMO, "playwright-core")
    proc = subprocess.run(
        [node, str(DEMO / "test" / "browser.mjs"), "--url", server.http_url, "--doc", "browser",
         "--shots", str(ARTIFACTS), "--timeout-ms", str(int(TIMEOUT * 1000))],
        capture_output=True, text=True, timeout=TIMEOUT * 6, cwd=DEMO)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and result.get("ok"), (
        f"browser test failed\nstdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-3000:]}"
        f"\nserver log: {server.log()[-3000:]}")
    assert result["textAnn"] == result["textBob"] == "Hello from Ann. Bob was here."
    assert result["textAfterReload"] == "Hello from Ann. Bob was here."
    assert "Bob was here." in result["visibleAfterReload"]  # on screen, beside Ann's caret
    assert not result.get("pageErrors"), result["pageErrors"]
    assert (ARTIFACTS / "demo-ann.png").stat().st_size > 0
