"""The demo at `/`: served by a plain `collab serve`, its committed bundle rebuilt
from demo/ byte for byte, and two headless Chromium pages (Debian's chromium,
driven by playwright-core from demo/node_modules) editing and chatting together,
also on a server that checks tokens, where a page without a good one says how to
get one; and what new users tripped over (issue 17): caret names, a pending chat
message while offline, offline presence, invalid ?doc=, phone width, long words,
the favicon and a calm saved badge. Screenshots land in tests/artifacts/
(git-ignored; the test makes them anew each run)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from collab.auth import issue_token
from tests.requires import node_with, require
from tests.serverproc import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
STATIC = ROOT / "collab" / "static"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SECRET = "demo-test-secret-long-enough-for-hs256"
#: What the page tells a visitor it refuses (demo/src/index.html).
TOKEN_COMMAND = "collab token --user NAME --doc '*' --room '*'"


async def test_the_demo_page_and_its_assets_are_served(server, session):
    resp = await session.get(server.http_url + "/")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert '<script type="module" src="/static/demo.js">' in page
    for asset, kind in [("demo.js", "javascript"), ("demo.css", "text/css"),
                        ("favicon.svg", "image/svg+xml")]:
        resp = await session.get(f"{server.http_url}/static/{asset}")
        assert resp.status == 200 and kind in resp.content_type, asset
    resp = await session.get(server.http_url + "/favicon.ico")
    assert resp.status == 200 and resp.content_type == "image/svg+xml"
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


def run_browser_test(server, *args: str, script: str = "browser.mjs",
                     doc: str = "browser") -> dict:
    """Run demo/test/<script> against `server` on `doc`; its JSON result, once it passed."""
    node = node_with(DEMO, "esbuild")
    require("chromium", Path(CHROMIUM).exists(), "apt-get install chromium")
    node_with(DEMO, "playwright-core")
    proc = subprocess.run(
        [node, str(DEMO / "test" / script), "--url", server.http_url, "--doc", doc,
         "--shots", str(ARTIFACTS), "--timeout-ms", str(int(TIMEOUT * 1000)), *args],
        capture_output=True, text=True, timeout=TIMEOUT * 8, cwd=DEMO)
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and result.get("ok"), (
        f"{script} failed\nstdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-3000:]}"
        f"\nserver log: {server.log()[-3000:]}")
    return result


def test_two_browsers_edit_and_chat_together(server):
    result = run_browser_test(server)
    assert result["textAnn"] == result["textBob"] == "Hello from Ann. Bob was here."
    assert result["textAfterReload"] == "Hello from Ann. Bob was here."
    assert "Bob was here." in result["visibleAfterReload"]  # on screen, beside Ann's caret
    assert not result.get("pageErrors"), result["pageErrors"]
    assert not result.get("notFound"), result["notFound"]
    for shot in ("demo-ann.png", "demo-phone.png", "demo-invalid-doc.png", "demo-pending.png"):
        assert (ARTIFACTS / shot).stat().st_size > 0, shot

    # Bob's caret name on Ann's page: shown without hovering, on line 1, not clipped.
    label = result["caretLabel"]
    assert label["opacity"] == "1" and label["line"] == 1, label
    assert label["inside"] and label["hit"], label
    # Typing 20 characters quickly: the badge stays "saved" (a slow ack may show
    # "saving…" once, and "saved" again).
    assert len(result["badgeTexts"]) <= 2, result["badgeTexts"]
    assert result["wraps"] == {"editor": True, "chat": True}
    assert result["phone"]["scrollWidth"] <= 390 and result["phone"]["stacked"], result["phone"]
    for page in result["invalid"]:
        assert "cannot be a document name" in page["text"] and "1-128 characters" in page["text"]
        assert not page["editorVisible"] and page["sockets"] == 0, page
    too_long, spaced = result["invalid"]
    assert "129 characters long" in too_long["text"] and "a space" in spaced["text"]
    assert [icon["status"] for icon in result["favicon"]] == [200, 200], result["favicon"]

    # Cara, cut off: Bob sees her offline; her message waits, greyed, "sending…".
    assert "offline: cara" in result["presenceCut"], result["presenceCut"]
    pending = result["pending"]
    assert pending["state"] == "pending" and "sending…" in pending["text"], pending
    assert pending["colour"] != "rgb(29, 35, 48)", pending  # greyed, not the body's colour
    assert "you are offline" in pending["presence"], pending
    # Back: posted once, shown as sent.
    assert "sending" not in result["sent"]["text"] and result["sent"]["copies"] == [1, 1]


def test_with_auth_on_the_page_asks_for_a_token_and_works_with_one(server_factory):
    server = server_factory("auth", env={"COLLAB_SECRET": SECRET})
    ann, bob = (issue_token(SECRET, user, docs=["*"], rooms=["*"]) for user in ("ann", "bob"))
    expired = issue_token(SECRET, "eve", docs=["*"], rooms=["*"], ttl=60, now=time.time() - 3600)
    result = run_browser_test(server, "--token-ann", ann, "--token-bob", bob,
                              "--bad-token", expired)

    no_token, bad_token = result["refused"]
    assert "needs a token" in no_token["title"]
    assert "refused your token" in bad_token["title"] and "token expired" in bad_token["reason"]
    for page in (no_token, bad_token):
        assert TOKEN_COMMAND in page["text"] and "#token=" in page["text"]
        assert not page["editorVisible"]
        # It gave up: not one more socket while the others edited and chatted.
        assert page["socketsAtEnd"] == page["sockets"] >= 1
        assert page["statusAtEnd"] == "disconnected"

    # Ann came in by #token=, Bob by ?token= with ?user=mallory: the token's sub wins.
    assert result["names"] == ["ann", "bob"]
    assert result["accessShown"] == [False, False]
    assert result["textAnn"] == result["textBob"] == "Hello from Ann. Bob was here."
    assert result["textAfterReload"] == "Hello from Ann. Bob was here."
    assert not result.get("pageErrors"), result["pageErrors"]
    assert (ARTIFACTS / "demo-no-token.png").stat().st_size > 0
