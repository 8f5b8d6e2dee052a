"""The Tiptap page at `/tiptap` (demo/src/tiptap*.js): Tiptap's Collaboration and
CollaborationCaret over @hocuspocus/provider on the server's root, in two headless
Chromium pages (demo/test/tiptap.mjs): shared text, named carets, the saved badge
from the provider's unsyncedChanges, a reload, an edit made offline, the links to
the CodeMirror page, phone width, an invalid ?doc=, tokens; and the server's copy of the
`tiptap` fragment. Screenshots land in tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import json
import time
import urllib.request

from collab.auth import issue_token
from tests.requires import node_with
from tests.serverproc import TIMEOUT
from tests.test_demo import ARTIFACTS, DEMO, SECRET, STATIC, TOKEN_COMMAND, run_browser_test

TEXT = "Hello from Ann. Bob was here."


def run_tiptap_test(server, doc: str, *args: str) -> dict:
    """Run demo/test/tiptap.mjs against `server` on `doc`; its JSON result, once it passed."""
    node_with(DEMO, "@tiptap/core")
    result = run_browser_test(server, *args, script="tiptap.mjs", doc=doc)
    assert not result.get("pageErrors"), result["pageErrors"]
    assert not result.get("notFound"), result["notFound"]
    return result


def server_fragment(server, doc: str, token: str | None = None) -> str:
    """The server's copy of `doc`'s `tiptap` fragment, as XML (the JSON view of the docs API)."""
    request = urllib.request.Request(f"{server.http_url}/api/docs/{doc}?format=json&xml=tiptap")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return json.load(response)["xml"]["tiptap"]


async def test_the_tiptap_page_is_served_beside_the_hocuspocus_endpoint(server, session):
    resp = await session.get(server.http_url + "/tiptap")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert '<script type="module" src="/static/tiptap.js">' in await resp.text()
    resp = await session.get(server.http_url + "/static/tiptap.js")
    assert resp.status == 200 and "javascript" in resp.content_type
    # A WebSocket upgrade at `/` is still the Hocuspocus endpoint, and GET / the CodeMirror page.
    async with session.ws_connect(f"ws://127.0.0.1:{server.port}/") as ws:
        assert not ws.closed
    resp = await session.get(server.http_url + "/")
    assert '<script type="module" src="/static/demo.js">' in await resp.text()


def test_each_bundle_holds_one_yjs():
    # yjs warns with this sentence when a second copy is loaded: one copy, one sentence.
    for bundle in ("demo.js", "tiptap.js"):
        assert (STATIC / bundle).read_text().count("Yjs was already imported") == 1, bundle


def test_two_browsers_edit_in_tiptap_together(server):
    result = run_tiptap_test(server, "tiptap")
    for seen in (result["ann"], result["bob"], result["afterReload"]):
        assert seen == {"text": TEXT, "fragment": f"<paragraph>{TEXT}</paragraph>"}, seen
    for who, label in (("bob", result["carets"]["onAnn"]), ("ann", result["carets"]["onBob"])):
        assert label["text"] == who and label["inside"] and label["hit"], label
        assert label["background"] != "rgba(0, 0, 0, 0)", label  # the user's colour
    assert len(result["badgeTexts"]) <= 2, result["badgeTexts"]  # no saved/saving flicker

    assert result["links"]["toCodeMirror"] == "/?doc=tiptap&user=ann"
    assert result["links"]["toTiptap"] == "/tiptap?doc=tiptap&user=ann"
    assert "tiptap" in result["links"]["note"] and "codemirror" in result["links"]["note"]
    assert result["phoneScrollWidth"] <= 390, result["phoneScrollWidth"]
    invalid = result["invalid"]
    assert "cannot be a document name" in invalid["text"] and "a space" in invalid["text"]
    assert invalid["link"] == "/tiptap?doc=welcome", invalid
    assert not invalid["editorVisible"] and invalid["sockets"] == 0, invalid

    # Cut off, Cara's edit waited unsaved; back, it was saved and Bob has it.
    assert result["offline"]["badge"] in ("offline", "connecting…"), result["offline"]
    assert result["offline"]["unsaved"] > 0, result["offline"]
    assert result["textAfterOffline"].endswith("Cara offline.")
    assert server_fragment(server, "tiptap") == (
        f"<paragraph>{TEXT} typing twenty chars Cara offline.</paragraph>")
    for shot in ("tiptap-ann.png", "tiptap-bob.png", "tiptap-invalid-doc.png",
                 "tiptap-offline.png", "tiptap-phone.png"):
        assert (ARTIFACTS / shot).stat().st_size > 0, shot


def test_with_auth_the_tiptap_page_takes_a_token(server_factory):
    server = server_factory("auth", env={"COLLAB_SECRET": SECRET})
    ann, bob = (issue_token(SECRET, user, docs=["*"], rooms=["*"]) for user in ("ann", "bob"))
    expired = issue_token(SECRET, "eve", docs=["*"], rooms=["*"], ttl=60, now=time.time() - 3600)
    result = run_tiptap_test(server, "tiptap-auth", "--token-ann", ann, "--token-bob", bob,
                             "--bad-token", expired)

    no_token, bad_token = result["refused"]
    assert "needs a token" in no_token["title"]
    assert "refused your token" in bad_token["title"] and "expired" in bad_token["reason"]
    for page in (no_token, bad_token):
        assert TOKEN_COMMAND in page["text"] and "/tiptap?doc=tiptap-auth#token=" in page["text"]
        assert not page["editorVisible"]
        assert page["socketsAtEnd"] == page["sockets"] >= 1  # it stopped reconnecting
    # Ann came in by #token=, Bob by ?token= with ?user=mallory: the token's sub wins.
    assert result["names"] == ["ann", "bob"]
    assert result["afterReload"]["text"] == TEXT
    assert server_fragment(server, "tiptap-auth", ann) == f"<paragraph>{TEXT}</paragraph>"
