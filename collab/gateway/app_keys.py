"""Typed application state shared by the gateway's handlers."""

from __future__ import annotations

import asyncio

from aiohttp import web

from collab.assembly import Runtime
from collab.config import Settings
from collab.gateway.access import Gatekeeper
from collab.gateway.addresses import ConnectionsPerAddress
from collab.gateway.preauth import PendingAuth
from collab.gateway.socket_peer import SocketPeer
from collab.gateway.traffic import Traffic
from collab.runtime.buckets import Meters
from collab.runtime.registry import Registry
from collab.runtime.system import ActorSystem

SETTINGS = web.AppKey("settings", Settings)
SYSTEM = web.AppKey("system", ActorSystem)
#: The runtime assembled for this app (its system, store and, with Redis, its cluster).
RUNTIME = web.AppKey("runtime", Runtime)
REGISTRY = web.AppKey("registry", Registry)
CONNECTIONS = web.AppKey("connections", set[SocketPeer])
#: The tasks serving open sockets (gateway/upgrade.py): shutdown waits for them.
SESSIONS = web.AppKey("sessions", set[asyncio.Task[None]])
TRAFFIC = web.AppKey("traffic", Traffic)
GATEKEEPER = web.AppKey("gatekeeper", Gatekeeper)
ADDRESSES = web.AppKey("addresses", ConnectionsPerAddress)
#: Actors woken per client address (gateway/ratelimit.py, `Loads`).
LOADS = web.AppKey("loads", Meters)
PENDING_AUTH = web.AppKey("pending_auth", PendingAuth)
