"""`GET /metrics`: this process in the Prometheus text format.

Almost everything is read at scrape time from counts the server keeps anyway
(connections, loaded actors, traffic by kind, group commit, queues), through one
custom collector, so serving a client costs nothing extra for being measured.
The one exception is the persist-latency histogram, fed by the group committer
once per batch (not per update). Each application has its own registry, so
several in one process (tests) never clash. Labels are an endpoint, an actor
kind or a message kind: fixed sets named in code, never a document, room, user
or key name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from collab.gateway.app_keys import (
    CONNECTIONS,
    PENDING_AUTH,
    REGISTRY,
    RUNTIME,
    SYSTEM,
    TRAFFIC,
)
from collab.gateway.sockets import LIMIT_REASONS, SOCKETS
from collab.runtime.actor import Actor

#: Upper bounds (seconds) of the persist-latency buckets. A group-committed batch
#: takes ~0.1-1 ms on SQLite NORMAL and ~3.5 ms on Postgres on one host
#: (docs/architecture.md); the long tail is there to show a store in trouble
#: (fsync stalls, a remote database, retries) before it becomes an outage.
PERSIST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


class Metrics:
    """One application's metrics: its registry, and the hook group commit reports to."""

    def __init__(self, app: web.Application) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ServerCollector(app))
        self.persist_seconds = Histogram(
            "collab_persist_seconds",
            "Seconds one group-committed batch of writes took to commit (one store "
            "transaction).", buckets=PERSIST_BUCKETS, registry=self.registry)
        # The process's own numbers (memory, CPU, open files, GC), as prometheus_client's
        # global registry has them; fresh instances, since that registry is not ours.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe_commit(self, seconds: float, ops: int) -> None:
        """GroupCommitter's `on_commit`: one committed batch."""
        self.persist_seconds.observe(seconds)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition the scraper asked for (text format, or OpenMetrics if its
        Accept header prefers it) and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class ServerCollector:
    """Reads the server's own counters whenever Prometheus scrapes."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def describe(self) -> list[Metric]:
        return []  # names are only known once the runtime has started; no clash checks

    def collect(self) -> Iterator[Metric]:
        app = self._app
        yield from self._connections(app)
        yield from self._traffic(app)
        system = app.get(SYSTEM)
        if system is None:  # scraped before startup finished
            return
        kinds = [cls.kind for cls in app[REGISTRY]]
        loaded: Counter[str] = Counter()
        estimated: Counter[str] = Counter()
        waiting: Counter[str] = Counter()
        dead: Counter[str] = Counter()
        for actor in system.loaded():
            loaded[actor.kind] += 1
            estimated[actor.kind] += actor.memory_estimate()
            if isinstance(actor, Actor):
                waiting[actor.kind] += actor.queues.depth()
                dead[actor.kind] += actor.queues.dead_count()
        yield _by_kind(GaugeMetricFamily(
            "collab_actors_loaded", "Actor instances in memory (live or saving), by actor kind.",
            labels=["kind"]), kinds, loaded)
        yield _by_kind(GaugeMetricFamily(
            "collab_actor_memory_bytes", "What loaded actor instances hold in memory, "
            "estimated (runtime/budget.py), by actor kind.", labels=["kind"]), kinds, estimated)
        budget = system.budget
        yield GaugeMetricFamily(
            "collab_memory_budget_bytes", "COLLAB_MEMORY_BUDGET (0: none); the process's "
            "resident memory is process_resident_memory_bytes.",
            value=budget.budget if budget is not None else 0)
        yield CounterMetricFamily(
            "collab_memory_budget_shed", "Actors asked to hibernate, and documents to unload "
            "their CRDT, to stay within COLLAB_MEMORY_BUDGET since start.",
            value=budget.shed if budget is not None else 0)
        yield _by_kind(GaugeMetricFamily(
            "collab_queue_depth", "Messages waiting in the durable queues of loaded actors, "
            "by actor kind.", labels=["kind"]), kinds, waiting)
        yield _by_kind(GaugeMetricFamily(
            "collab_queue_dead_letters", "Dead letters in the durable queues of loaded "
            "actors, by actor kind.", labels=["kind"]), kinds, dead)
        yield CounterMetricFamily(
            "collab_actor_activations", "Actor instances created since start (a request or "
            "a due timer woke them): wake-ups.", value=system.loads)
        yield CounterMetricFamily(
            "collab_timer_wakeups", "Hibernated actors woken by a due durable timer since "
            "start.", value=system.timer_waker.woken)
        yield CounterMetricFamily(
            "collab_compactions", "Document logs folded into a snapshot since start.",
            value=system.compactions)
        yield CounterMetricFamily(
            "collab_documents_deleted", "Document incarnations ended since start: deleted "
            "(DELETE /api/docs/<doc>) or replaced (PUT).", value=system.documents_deleted)
        yield CounterMetricFamily(
            "collab_documents_unloaded", "Document CRDTs unloaded while their clients stayed "
            "connected but quiet (COLLAB_CONNECTED_IDLE_TIMEOUT) since start.",
            value=system.documents_unloaded)
        yield CounterMetricFamily(
            "collab_documents_reloaded", "Unloaded document CRDTs loaded again for an edit "
            "or a sync since start.", value=system.documents_reloaded)
        yield CounterMetricFamily(
            "collab_document_versions", "Document versions stored since start: named, "
            "automatic, and the states restores replaced.", value=system.versions_made)
        yield CounterMetricFamily(
            "collab_document_restores", "Document versions restored since start.",
            value=system.restores)
        ignored = CounterMetricFamily(
            "collab_awareness_ignored", "Awareness entries documents ignored since start, "
            "by reason: 'foreign' (a client id another connection holds: a forgery or a "
            "stale socket), 'crowded' (past a document's awareness bounds).",
            labels=["reason"])
        for reason, count in system.awareness_ignored.items():
            ignored.add_metric([reason], count)
        yield ignored
        stats = system.committer.stats
        yield CounterMetricFamily(
            "collab_commits", "Group-committed batches (store transactions) since start.",
            value=stats.batches)
        yield CounterMetricFamily(
            "collab_committed_ops", "Write operations committed since start.", value=stats.ops)
        yield CounterMetricFamily(
            "collab_commit_failures", "Batches the store failed to commit since start.",
            value=stats.failures)
        yield CounterMetricFamily(
            "collab_commit_isolations", "Failed batches split to fail only the submissions "
            "at fault (a row the store refused) since start.", value=stats.isolations)
        yield GaugeMetricFamily(
            "collab_unstored_ops", "Write operations whose commit failed, kept in memory "
            "and written again before anything newer of their actor.",
            value=sum(actor.writes.kept for actor in system.loaded()))
        yield GaugeMetricFamily(
            "collab_commit_pending_ops", "Write operations waiting for the next transaction.",
            value=system.committer.pending)
        yield GaugeMetricFamily(
            "collab_draining", "1 once a graceful shutdown has begun.",
            value=1 if system.closing else 0)
        runtime = app.get(RUNTIME)
        cluster = runtime.cluster if runtime is not None else None
        if cluster is not None:
            placement = cluster.placement
            yield GaugeMetricFamily(
                "collab_cluster_owned_actors", "Actors this process owns through an entry "
                "in Redis (several processes).", value=len(placement.held))
            yield CounterMetricFamily(
                "collab_cluster_takeovers", "Actors taken over from processes found gone "
                "since start.", value=placement.takeovers)
            yield GaugeMetricFamily(
                "collab_cluster_replay_bytes", "Bytes owned actors keep for relays that "
                "missed messages (at most 1 MiB per actor, 30 s).",
                value=cluster.remote_peers.replay_bytes())

    def _connections(self, app: web.Application) -> Iterator[Metric]:
        open_by_endpoint = Counter(conn.traffic.endpoint for conn in app[CONNECTIONS])
        gauge = GaugeMetricFamily("collab_connections", "Open WebSocket connections, by "
                                  "endpoint (yjs: /yjs/<doc>, ws: /ws, hocuspocus: / and "
                                  "/hocuspocus).",
                                  labels=["endpoint"])
        for endpoint in app[TRAFFIC].endpoints():
            gauge.add_metric([endpoint.endpoint], open_by_endpoint[endpoint.endpoint])
        yield gauge
        sockets = app.get(SOCKETS)
        if sockets is None:  # served by something else than collab's Listener (tests)
            return
        yield GaugeMetricFamily("collab_tcp_connections", "Open TCP connections, every kind "
                                "(idle, HTTP, WebSocket).", value=sockets.open)
        limits = CounterMetricFamily(
            "collab_connection_limits", "Connections refused or closed by a connection limit "
            "since start, and failed accepts, by reason (docs/operations.md).",
            labels=["reason"])
        for reason in LIMIT_REASONS:
            limits.add_metric([reason], sockets.limited[reason])
        limits.add_metric(["preauth_budget"], app[PENDING_AUTH].closed)
        yield limits

    def _traffic(self, app: web.Application) -> Iterator[Metric]:
        families = {
            ("received", 0): CounterMetricFamily(
                "collab_messages_received", "WebSocket messages received, by endpoint and "
                "message kind ('invalid': refused before reaching an actor).",
                labels=["endpoint", "kind"]),
            ("received", 1): CounterMetricFamily(
                "collab_received_bytes", "Payload bytes of WebSocket messages received "
                "(characters for text frames), by endpoint and message kind.",
                labels=["endpoint", "kind"]),
            ("sent", 0): CounterMetricFamily(
                "collab_messages_sent", "WebSocket messages written to sockets, by endpoint "
                "and message kind (a broadcast counts once per socket).",
                labels=["endpoint", "kind"]),
            ("sent", 1): CounterMetricFamily(
                "collab_sent_bytes", "Bytes of WebSocket frames written to sockets, by "
                "endpoint and message kind.", labels=["endpoint", "kind"]),
        }
        for endpoint in app[TRAFFIC].endpoints():
            for direction in ("received", "sent"):
                for kind, counts in getattr(endpoint, direction).items():
                    for index in (0, 1):
                        families[direction, index].add_metric([endpoint.endpoint, kind],
                                                              counts[index])
        yield from families.values()
        closes = CounterMetricFamily(
            "collab_websocket_closes", "WebSockets ended, by endpoint and close code (sent "
            "or received; 1006: no close frame, e.g. a dropped peer or an aborted slow "
            "consumer; 4401/4403/4410/4413/4429: auth, permissions, document deleted, "
            "document quota, rate limit; 'other': a code a client chose).",
            labels=["endpoint", "code"])
        refused = CounterMetricFamily(
            "collab_upgrades_refused", "WebSocket upgrades answered with an HTTP error "
            "instead, by endpoint and error code.", labels=["endpoint", "reason"])
        for endpoint in app[TRAFFIC].endpoints():
            for code, count in endpoint.closes.items():
                closes.add_metric([endpoint.endpoint, code], count)
            for reason, count in endpoint.refused.items():
                refused.add_metric([endpoint.endpoint, reason], count)
        yield closes
        yield refused


def _by_kind(family: GaugeMetricFamily, kinds: list[str],
             values: Counter[str]) -> GaugeMetricFamily:
    for kind in kinds:  # every registered kind, so a zero is a zero and not a gap
        family.add_metric([kind], values[kind])
    return family


async def metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[METRICS].render(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


METRICS = web.AppKey("metrics", Metrics)
