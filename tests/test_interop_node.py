"""Stock Yjs clients (yjs + y-websocket from npm, run by Node) against a real server.

The scripts live in tests/js/ (`npm ci --prefix tests/js` installs them); each
prints one JSON line. These tests check what they report against the server's
own view of the document (`GET /api/docs/<doc>`, decoded by pycrdt), and that
the content survives a restart on the same SQLite file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from pycrdt import Array, Doc, Map, Text

from collab.protocol import ywire
from tests.requires import node_with
from tests.serverproc import TIMEOUT

JS_DIR = Path(__file__).parent / "js"
NODE = shutil.which("node")
#: The scripts' own hard timeout; the subprocess timeout sits above it so a
#: stuck script still prints its JSON line before Python gives up on it.
SCRIPT_TIMEOUT_MS = int(TIMEOUT * 1000) + 5000
SUBPROCESS_TIMEOUT = SCRIPT_TIMEOUT_MS / 1000 + 10


def require_node() -> str:
    """The `node` executable, with tests/js's npm packages installed."""
    return node_with(JS_DIR, "y-websocket")


@pytest.fixture(autouse=True)
def _node_installed():
    require_node()


def run_node(script: str, *args: str, timeout_ms: int = SCRIPT_TIMEOUT_MS) -> dict:
    """Run tests/js/<script> and return its JSON line; fail with its output if it failed."""
    cmd = [NODE, str(JS_DIR / script), *args, "--timeout-ms", str(timeout_ms)]
    proc = subprocess.run(
        cmd, cwd=JS_DIR, capture_output=True, text=True, timeout=timeout_ms / 1000 + 10
    )
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and result.get("ok"), (
        f"{script} failed (exit {proc.returncode})\n"
        f"stdout: {proc.stdout[-6000:]}\nstderr: {proc.stderr[-3000:]}"
    )
    return result


def decode_state_vector(data: bytes) -> dict[str, int]:
    """A Yjs v1 state vector as the JSON the Node scripts print: {"client": clock}."""
    return {str(client): clock for client, clock in ywire.decode_state_vector(data).items()}


def server_content(http_url: str, doc: str) -> dict:
    """The server's copy of `doc` (GET /api/docs/<doc>) decoded with pycrdt."""
    with urllib.request.urlopen(f"{http_url}/api/docs/{doc}", timeout=TIMEOUT) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/octet-stream")
        update = response.read()
    ydoc = Doc()
    ydoc.apply_update(update)
    text = str(ydoc.get("body", type=Text))
    return {
        "text": text,
        "textSha256": hashlib.sha256(text.encode()).hexdigest(),
        "meta": ydoc.get("meta", type=Map).to_py(),
        "items": ydoc.get("items", type=Array).to_py(),
        "stateVector": decode_state_vector(ydoc.get_state()),
    }


CONTENT_KEYS = ("text", "textSha256", "meta", "items", "stateVector")


def content_of(result: dict) -> dict:
    return {key: result[key] for key in CONTENT_KEYS}


def test_node_clients_converge_and_the_content_survives_a_restart(server_factory):
    doc = "interop/node-multi"
    server = server_factory("interop")
    result = run_node(
        "multi_client.mjs", "--url", server.ws_url, "--doc", doc, "--clients", "4", "--seed", "1"
    )

    # Converged, after real concurrent and offline editing.
    assert result["converged"] and result["clients"] == 4
    assert result["offlineDiverged"], "the offline clients' edits never diverged: nothing tested"
    assert hashlib.sha256(result["text"].encode()).hexdigest() == result["textSha256"]
    # Each client's own map key counts its edits: 25 + 15 + 10 rounds, none lost.
    assert [result["meta"][f"client-{i}"]["n"] for i in range(4)] == [50] * 4

    # Every client saw every other's awareness state (name and latest cursor).
    names = [f"client-{i}" for i in range(4)]
    assert result["awareness"] == {name: names for name in names}
    assert result["latestAwarenessSeen"]

    # The server closed nobody, and answered each connect with step 1 and step 2.
    assert result["serverCloses"] == []
    frames = result["frames"]
    connections = 4 + 2  # four connects, two reconnects
    assert frames["received"]["sync.step1"] == connections
    assert frames["received"]["sync.step2"] == connections
    assert frames["firstConnection"][:2] == [">sync.step1", ">awareness"]

    # The server's own copy is the same document.
    assert server_content(server.http_url, doc) == content_of(result)

    # Restart on the same database file: a fresh client gets the same content.
    assert server.stop() == 0, server.log()
    restarted = server_factory("interop")
    assert restarted.db_path == server.db_path
    check = run_node("check_content.mjs", "--url", restarted.ws_url, "--doc", doc)
    assert content_of(check) == content_of(result)
    assert check["serverCloses"] == []
    assert server_content(restarted.http_url, doc) == content_of(result)


def test_unknown_doc_syncs_empty(server):
    check = run_node("check_content.mjs", "--url", server.ws_url, "--doc", "interop/empty")
    assert check["text"] == "" and check["meta"] == {} and check["items"] == []
    assert check["stateVector"] == {}
    assert check["peers"] == ["checker"]


def test_awareness_change_after_an_abrupt_reconnect_is_seen(server):
    """A client whose socket dropped reconnects and moves its cursor: peers must see it.

    y-protocols removes a remote client's state without changing its clock, so
    the client's next change (clock + 1) wins everywhere. A server that removes
    it with clock + 1 makes that change lose, and hides the client until its
    local state is renewed about 15-30 s later.
    """
    result = run_node("drop_reconnect.mjs", "--url", server.ws_url, "--doc", "interop/drop")
    assert [close["code"] for close in result["closeEventsA"]] == [1006]  # the drop itself
    assert result["text"] in ("online-b;offline-a;", "offline-a;online-b;")
    assert server_content(server.http_url, "interop/drop") == content_of(result)


def test_a_deleted_document_is_not_resurrected_by_an_offline_client(server):
    """DELETE /api/docs/<doc> while a client is offline with the content (and edits on
    it): connected clients are closed with 4410, the document created afterwards holds
    only its own content, and the offline client's reconnects are refused with 4410."""
    result = run_node("resurrection.mjs", "--url", server.ws_url, "--http", server.http_url,
                      "--doc", "interop/deleted")
    assert result["serverText"] == result["cText"] == "new;"
    assert [close["code"] for close in result["closesB"]] == [4410]
    # Every reconnect is refused. (A close frame sent while the client is still sending
    # its first frames is sometimes lost to the TCP reset: the client then sees 1006.)
    refused = [close["code"] for close in result["closesA"]]
    assert 4410 in refused and set(refused) <= {4410, 1006}, refused
    # Refused at its first sync message, before it was sent anything of the new document.
    assert "offline-a;" in result["aText"] and "new;" not in result["aText"]


# -- fidelity: embedded objects reach everyone as their writer wrote them ---------------


def exported_view(http_url: str, doc: str, tmp_path: Path) -> dict:
    """The HTTP export (GET /api/docs/<doc>) as a stock Yjs client reads it."""
    with urllib.request.urlopen(f"{http_url}/api/docs/{doc}", timeout=TIMEOUT) as response:
        path = tmp_path / "export.bin"
        path.write_bytes(response.read())
    return run_node("fidelity.mjs", "--mode", "file", "--file", str(path))["view"]


def read_view(server, doc: str) -> dict:
    result = run_node("fidelity.mjs", "--mode", "read", "--url", server.ws_url, "--doc", doc)
    assert result["serverCloses"] == []
    return result["view"]


#: Compaction after a few rows, at once: the objects pass through snapshots while written.
COMPACT_OFTEN = {"COLLAB_COMPACT_ROWS": "3", "COLLAB_COMPACT_DELAY": "0"}


@pytest.mark.parametrize("env", [{}, COMPACT_OFTEN], ids=["log", "compacted"])
def test_embedded_objects_keep_their_writers_key_order(server_factory, tmp_path, env):
    """Objects of 12+ keys set in a Y.Map, pushed to a Y.Array, as a text format
    attribute and as an embed: a client connected meanwhile, one joining later, the
    HTTP export, and clients after a kill -9 (log, or log + snapshots) and after a
    clean restart (compacted) all see every object's keys in the writer's order,
    as clients of the reference Node server do."""
    doc = "interop/fidelity"
    server = server_factory("fidelity", env=env)
    result = run_node("fidelity.mjs", "--mode", "write", "--url", server.ws_url, "--doc", doc)
    written = result["writer"]
    assert len(written["meta"]) == 19 and len(written["items"]) == 3, written
    assert result["serverCloses"] == []
    assert result["reader"] == written, "a client connected while it was written"
    assert result["joiner"] == written, "a client that joined afterwards"
    assert exported_view(server.http_url, doc, tmp_path) == written

    server.kill()  # nothing compacted on the way out: the stored log (and snapshots) as is
    restarted = server_factory("fidelity", env=env)
    assert read_view(restarted, doc) == written
    assert exported_view(restarted.http_url, doc, tmp_path) == written

    assert restarted.stop() == 0  # a clean stop compacts everything into one snapshot
    again = server_factory("fidelity", env=env)
    assert read_view(again, doc) == written
