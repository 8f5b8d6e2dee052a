"""Assemble the aiohttp application: routes, middleware, and the runtime's lifetime.

Startup opens the store, starts group commit and the actor system. Shutdown
closes every WebSocket with 1012 (clients reconnect elsewhere or later), then
stops every actor (each flushes and compacts), then drains group commit and
closes the store: nothing acknowledged or pending is lost. (On SIGTERM,
gateway/drain.py runs these steps itself, in order and against a deadline.)
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from collab import __version__
from collab.actors.document import Document
from collab.actors.room import Room
from collab.actors.webhooks import Webhooks
from collab.actors.ydoc import warm_up
from collab.assembly import Runtime
from collab.config import Settings
from collab.gateway import actors_api, admin_actors, admin_api, demo, docs_api, rooms_api
from collab.gateway.access import Gatekeeper
from collab.gateway.addresses import ConnectionsPerAddress
from collab.gateway.app_keys import (
    ADDRESSES,
    CONNECTIONS,
    GATEKEEPER,
    LOADS,
    PENDING_AUTH,
    REGISTRY,
    RUNTIME,
    SESSIONS,
    SETTINGS,
    SYSTEM,
    TRAFFIC,
)
from collab.gateway.drain import close_connections
from collab.gateway.hocuspocus_endpoint import hocuspocus_socket, upgrade_or
from collab.gateway.keepalive import KeepAlive
from collab.gateway.metrics import METRICS, Metrics, metrics
from collab.gateway.middleware import gateway
from collab.gateway.preauth import PendingAuth
from collab.gateway.ratelimit import loads_per_address
from collab.gateway.traffic import Traffic
from collab.gateway.ws_endpoint import OPS, native_socket
from collab.gateway.yjs_endpoint import yjs_socket
from collab.logs import Throttled
from collab.runtime.registry import Registry

log = logging.getLogger(__name__)

#: Seconds a readiness probe waits for the store or Redis to answer.
READY_TIMEOUT = 2.0

#: Actor types every server runs.
BUILTIN_ACTORS = Registry(Document, Room, Webhooks)


async def healthz(request: web.Request) -> web.Response:
    system = request.app[SYSTEM]
    return web.json_response({
        "status": "ok",
        "version": __version__,
        "pid": os.getpid(),
        "node": system.ownership.node,
        "connections": len(request.app[CONNECTIONS]),
        "actors": system.loaded_count,
        "loads": system.loads,
        "commits": system.committer.stats.batches,
    })


async def readyz(request: web.Request) -> web.Response:
    """200 when this process can serve: its store answers and, in cluster mode, Redis
    does; 503 with the failing checks otherwise, or while it shuts down."""
    system = request.app[SYSTEM]
    if system.closing:
        return web.json_response({"status": "draining"}, status=503)
    checks = {"store": _check("store", system.store.ping())}
    cluster = request.app[RUNTIME].cluster
    if cluster is not None:
        checks["redis"] = _check("redis", cluster.redis.ping())
    results = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    ready = all(result == CHECK_OK for result in results.values())
    return web.json_response({"status": "ready" if ready else "not ready", "checks": results},
                             status=200 if ready else 503)


#: What a readiness check answers: the probe's own text (an address, a driver's
#: message) stays in this process's log, where only the operator reads it.
CHECK_OK, CHECK_TIMEOUT, CHECK_ERROR = "ok", "timeout", "error"
#: One log line per failing check per interval: load balancers probe every few seconds.
_check_logs: dict[str, Throttled] = {}


async def _check(name: str, probe: Any) -> str:
    """CHECK_OK, or why `probe` failed; the details go to the log."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await probe
    except TimeoutError:
        outcome, detail = CHECK_TIMEOUT, f"no answer within {READY_TIMEOUT:g} s"
    except Exception as exc:
        outcome, detail = CHECK_ERROR, f"{type(exc).__name__}: {exc}"
    else:
        return CHECK_OK
    throttled = _check_logs.setdefault(name, Throttled(log))
    throttled.log(logging.WARNING, "not ready: the %s check failed: %s", name, detail)
    return outcome


async def runtime_context(app: web.Application) -> AsyncIterator[None]:
    warm_up()
    runtime = Runtime(app[SETTINGS], app[REGISTRY], on_commit=app[METRICS].observe_commit)
    app[RUNTIME] = runtime
    app[SYSTEM] = await runtime.start()
    if runtime.cluster is not None:
        log.info("cluster mode: actor leases in Redis, node %s", runtime.cluster.node)
    try:
        yield
    finally:
        await runtime.stop()


async def user_rules_context(app: web.Application) -> AsyncIterator[None]:
    """Enforce administrators' revocations and limits from startup on (after the
    runtime started: they are read from its store and, in cluster mode, heard on its
    Redis bus)."""
    rules = app[GATEKEEPER].rules
    cluster = app[RUNTIME].cluster
    await rules.start(app[SYSTEM], app[CONNECTIONS], cluster.bus if cluster else None)
    try:
        yield
    finally:
        await rules.stop()


async def keepalive_context(app: web.Application) -> AsyncIterator[None]:
    """One timer pings the quiet WebSockets and drops the silent (gateway/keepalive.py)."""
    keepalive = KeepAlive(app[CONNECTIONS], app[SETTINGS].ping_interval)
    keepalive.start()
    yield
    keepalive.stop()


def build_app(settings: Settings, registry: Registry | None = None) -> web.Application:
    """The server for `settings`, running the built-in actors and those of `registry`."""
    app = web.Application(middlewares=[gateway],
                          client_max_size=settings.max_message_bytes)
    app[SETTINGS] = settings
    app[GATEKEEPER] = Gatekeeper(settings)
    app[ADDRESSES] = ConnectionsPerAddress(settings.max_connections_per_ip)
    app[PENDING_AUTH] = PendingAuth(settings.max_preauth_bytes)
    app[LOADS] = loads_per_address(settings)
    app[REGISTRY] = BUILTIN_ACTORS.merged(registry or Registry())
    app[CONNECTIONS] = set()
    app[SESSIONS] = set()
    app[TRAFFIC] = Traffic(tuple(OPS))
    app[METRICS] = Metrics(app)
    app.cleanup_ctx.append(runtime_context)
    app.cleanup_ctx.append(user_rules_context)
    app.cleanup_ctx.append(keepalive_context)
    app.on_shutdown.append(close_connections)
    demo.add_routes(app, upgrade_or)  # a WebSocket upgrade at `/` speaks Hocuspocus
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/yjs/{name:.+}", yjs_socket)
    app.router.add_get("/ws", native_socket)
    app.router.add_get("/hocuspocus", hocuspocus_socket)
    app.router.add_post("/api/admin/revoke", admin_api.revoke)
    app.router.add_post("/api/admin/permissions", admin_api.set_permissions)
    app.router.add_get("/api/admin/permissions/{user}", admin_api.get_permissions)
    app.router.add_get("/api/admin/actors", admin_actors.list_actors)
    app.router.add_get("/api/admin/actors/{kind}/{key:.+}", admin_actors.show_actor)
    app.router.add_get("/api/docs", docs_api.list_docs)
    # Before the routes below, whose {name:.+} would take "<doc>/versions/..." whole.
    app.router.add_post("/api/docs/{name:.+}/versions", docs_api.post_version)
    app.router.add_get("/api/docs/{name:.+}/versions", docs_api.list_versions)
    app.router.add_get("/api/docs/{name:.+}/versions/{version}", docs_api.get_version)
    app.router.add_post("/api/docs/{name:.+}/versions/{version}/restore",
                        docs_api.restore_version)
    app.router.add_get("/api/docs/{name:.+}", docs_api.get_doc)
    app.router.add_put("/api/docs/{name:.+}", docs_api.put_doc)
    app.router.add_delete("/api/docs/{name:.+}", docs_api.delete_doc)
    app.router.add_post("/api/docs/{name:.+}/update", docs_api.post_update)
    app.router.add_get("/api/rooms/{room:.+}/messages", rooms_api.get_messages)
    app.router.add_post("/api/actors/{kind}/{key:.+}/actions/{action}", actors_api.call_action)
    app.router.add_post("/api/actors/{kind}/{key:.+}/queues/{queue}", actors_api.send_to_queue)
    app.router.add_get("/api/actors/{kind}/{key:.+}/queues/{queue}", actors_api.inspect_queue)
    app.router.add_post("/api/actors/{kind}/{key:.+}/queues/{queue}/redrive",
                        actors_api.redrive_queue)
    app.router.add_post("/api/actors/{kind}/{key:.+}/workflows/{name}", actors_api.start_workflow)
    app.router.add_get("/api/actors/{kind}/{key:.+}/workflows/{run}", actors_api.workflow_status)
    return app
