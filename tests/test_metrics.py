"""`/metrics` from real server processes: the counters move with real traffic on both
WebSocket endpoints, commits, compactions and queues, and no label ever carries a
document, room, user or key name. In-process: two apps keep their own registries."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from collab.auth import issue_token
from collab.config import Settings
from collab.gateway.app import build_app
from collab.gateway.metrics import METRICS
from collab.protocol.ywire import AwarenessMessage, SyncUpdate, encode_awareness
from tests.nclient import NClient
from tests.waits import until
from tests.yclient import Editor, YClient

APP = ("--app", "tests.apps.counter:registry")
SECRET = "metrics-test-secret-long-enough-for-hs256"
#: Names that must never appear in a scrape (they are keys, not kinds).
DOC = "metrics-private-doc"
WORKER_KEY = "private-worker-key"


async def scrape(session: aiohttp.ClientSession, base_url: str) -> tuple[str, dict]:
    """The raw exposition and {(sample name, sorted labels): value}."""
    resp = await session.get(f"{base_url}/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return text, values


def value(values: dict, name: str, **labels: str) -> float:
    return values[name, tuple(sorted(labels.items()))]


async def test_metrics_move_with_traffic(server_factory, session):
    srv = server_factory(env={"COLLAB_COMPACT_ROWS": "3", "COLLAB_COMPACT_DELAY": "0"},
                         args=APP)
    _, before = await scrape(session, srv.http_url)
    assert value(before, "collab_connections", endpoint="yjs") == 0
    assert value(before, "collab_messages_received_total", endpoint="yjs",
                 kind="sync_update") == 0
    assert value(before, "collab_persist_seconds_count") == 0

    editor = Editor()
    writer = await YClient.connect(session, srv.http_url, DOC)
    reader = await YClient.connect(session, srv.http_url, DOC)
    await writer.recv(), await reader.recv()  # sync step 1 each
    for i in range(5):  # past COLLAB_COMPACT_ROWS: a compaction follows
        update = editor.type(f"<{i}>")
        await writer.send(SyncUpdate(update))
        await writer.recv_until(lambda m, u=update: isinstance(m, SyncUpdate))  # the ack
    await writer.send(AwarenessMessage(encode_awareness([])))
    native = await NClient.connect(session, srv.http_url, json=True)
    await native.request("doc.subscribe", doc=DOC)
    await native.request("ping")
    await native.send_raw("not json")  # refused: counted as invalid, never as its text
    await native.wait_for(lambda: native.orphans)
    resp = await session.post(f"{srv.http_url}/api/actors/patient_worker/{WORKER_KEY}"
                              "/actions/fail_next", json={"args": [5]})
    assert resp.status == 200
    for n in range(2):  # the first one fails and waits to be retried: both wait
        resp = await session.post(f"{srv.http_url}/api/actors/patient_worker/{WORKER_KEY}"
                                  "/queues/jobs", json={"n": n})
        assert resp.status == 200

    async def settled() -> bool:
        _, now = await scrape(session, srv.http_url)
        return value(now, "collab_compactions_total") >= 1 \
            and value(now, "collab_queue_depth", kind="patient_worker") >= 1

    await until(settled)
    text, after = await scrape(session, srv.http_url)
    assert value(after, "collab_connections", endpoint="yjs") == 2
    assert value(after, "collab_connections", endpoint="ws") == 1
    assert value(after, "collab_actors_loaded", kind="doc") == 1
    assert value(after, "collab_actors_loaded", kind="patient_worker") == 1
    assert value(after, "collab_actor_activations_total") >= 2
    assert value(after, "collab_messages_received_total", endpoint="yjs",
                 kind="sync_update") == 5
    assert value(after, "collab_received_bytes_total", endpoint="yjs", kind="sync_update") > 0
    assert value(after, "collab_messages_received_total", endpoint="yjs", kind="awareness") == 1
    # Each update went to the reader at once and back to the writer after its commit.
    assert value(after, "collab_messages_sent_total", endpoint="yjs", kind="sync_update") >= 10
    assert value(after, "collab_sent_bytes_total", endpoint="yjs", kind="sync_step1") > 0
    assert value(after, "collab_messages_received_total", endpoint="ws",
                 kind="doc.subscribe") == 1
    assert value(after, "collab_messages_received_total", endpoint="ws", kind="invalid") == 1
    assert value(after, "collab_messages_sent_total", endpoint="ws", kind="response") == 2
    assert value(after, "collab_messages_sent_total", endpoint="ws", kind="error") == 1
    assert value(after, "collab_commits_total") >= 1
    assert value(after, "collab_committed_ops_total") >= 5
    assert value(after, "collab_persist_seconds_count") == value(after, "collab_commits_total")
    assert value(after, "collab_persist_seconds_sum") > 0
    assert value(after, "collab_draining") == 0
    assert value(after, "process_open_fds") > 0
    for name in (DOC, WORKER_KEY, "not json"):
        assert name not in text

    await writer.ws.close(), await reader.ws.close(), await native.close()
    await until(lambda: scrape_connections(session, srv.http_url, 0))


async def scrape_connections(session: aiohttp.ClientSession, base_url: str,
                             expected: float) -> bool:
    _, values = await scrape(session, base_url)
    return all(value(values, "collab_connections", endpoint=endpoint) == expected
               for endpoint in ("yjs", "ws"))


async def test_timer_wakeups_are_counted(server_factory, session):
    srv = server_factory(env={"COLLAB_IDLE_TIMEOUT": "0.2"}, args=APP)
    resp = await session.post(f"{srv.http_url}/api/actors/reminder/r/actions/remind_in",
                              json={"args": [1.0, "wake up"]})
    assert resp.status == 200

    async def woken() -> bool:
        _, values = await scrape(session, srv.http_url)
        return value(values, "collab_timer_wakeups_total") >= 1

    await until(woken)  # it hibernated after 0.2 s, and its timer woke it


def test_two_apps_in_one_process_keep_their_own_registries():
    first, second = (build_app(Settings()) for _ in range(2))
    assert first[METRICS].registry is not second[METRICS].registry
    for app in (first, second):  # renders before startup too (no actor system yet)
        body, content_type = app[METRICS].render("text/plain")
        assert b"collab_connections" in body and content_type.startswith("text/plain")
    first[METRICS].observe_commit(0.002, 3)
    assert first[METRICS].registry.get_sample_value("collab_persist_seconds_count") == 1
    assert second[METRICS].registry.get_sample_value("collab_persist_seconds_count") == 0


async def test_refusals_and_close_codes_are_counted(server_factory, session):
    srv = server_factory(env={"COLLAB_SECRET": SECRET, "COLLAB_MAX_MESSAGES_PER_SECOND": "5",
                              "COLLAB_RATE_LIMIT_GRACE": "0.5"})
    for _ in range(2):
        async with session.get(f"{srv.http_url}/yjs/{DOC}") as response:
            assert response.status == 401
    token = issue_token(SECRET, "m", docs=["*"])
    flood = await YClient.connect(session, srv.http_url, f"{DOC}?token={token}")
    for _ in range(50):
        if flood.ws.closed:
            break
        await flood.send(AwarenessMessage(encode_awareness([])))
    assert await flood.closed_with() == 4429
    calm = await session.ws_connect(f"{srv.http_url}/ws?token={token}")
    await calm.close()

    async def counted() -> bool:
        _, values = await scrape(session, srv.http_url)
        return value(values, "collab_websocket_closes_total", endpoint="ws", code="1000") == 1

    await until(counted)
    text, values = await scrape(session, srv.http_url)
    assert value(values, "collab_upgrades_refused_total", endpoint="yjs",
                 reason="unauthorized") == 2
    assert value(values, "collab_websocket_closes_total", endpoint="yjs", code="4429") == 1
    assert value(values, "collab_websocket_closes_total", endpoint="yjs", code="other") == 0
    assert DOC not in text and token not in text
