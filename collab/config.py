"""One settings object, read from environment variables and overridden by CLI flags.

Every limit and default lives here as a named constant with its unit and the
reason for its value; README.md's configuration table mirrors this module.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace

from collab.auth import load_public_key
from collab.eventloop import EVENT_LOOPS, uvloop_installed

DEFAULT_HOST = "127.0.0.1"
#: When PORT is set (Heroku and friends) and no host is given, listen on every interface.
PUBLIC_HOST = "0.0.0.0"
#: The port y-websocket's own server uses, so examples carry over.
DEFAULT_PORT = 1234
DEFAULT_DATABASE_URL = "sqlite:///./collab.db"
#: SQLite, or Postgres under either scheme (Heroku sets `postgres://`).
SUPPORTED_DATABASE_URLS = ("sqlite:///", "postgres://", "postgresql://")

#: Seconds without connections before a document is compacted and unloaded.
DEFAULT_IDLE_TIMEOUT = 30.0
#: Seconds a document whose clients are all connected but quiet (presence renewals
#: only) keeps its CRDT in memory; then it keeps only their sockets and presence and
#: loads the CRDT again on the next edit or sync (a few ms). 0 keeps it loaded.
DEFAULT_CONNECTED_IDLE_TIMEOUT = 60.0
#: Largest WebSocket message or HTTP update accepted (bytes). 8 MiB fits a pasted
#: chapter with images inlined as base64, while one bad client can pin at most
#: this much memory per read.
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: Seconds between server pings: a peer that does not answer within half the
#: interval is dropped. (y-websocket clients reconnect after 30 s without a
#: message, and a ping is not one: what keeps them is the awareness renewal every
#: 15 s, echoed back to its sender too.)
DEFAULT_PING_INTERVAL = 20.0
#: Compact a document's log once it holds this many rows or bytes since the last snapshot.
DEFAULT_COMPACT_ROWS = 500
DEFAULT_COMPACT_BYTES = 1024 * 1024
#: Seconds between a log passing its threshold and the compaction that folds it.
#: Short, so a compaction never has to fold a large backlog (under 15k updates/s a
#: 1 s delay let 15,000 rows pile up); rows arriving while one compaction runs
#: wait for the next, so fast writers still get few, larger compactions.
DEFAULT_COMPACT_DELAY = 0.1
#: Bytes a connection may have waiting in its socket buffer before it is treated
#: as a slow consumer and dropped (it resyncs on reconnect). Bounds memory per peer.
DEFAULT_MAX_OUTBOUND_BYTES = 16 * 1024 * 1024
#: What one connection may send, per second (bursts of twice that): far above any
#: editor or chat client (a fast typist sends ~20 updates/s), low enough that a flood
#: from one socket cannot monopolise the server. 0 turns a limit off.
DEFAULT_MAX_MESSAGES_PER_SECOND = 2000
DEFAULT_MAX_BYTES_PER_SECOND = 16 * 1024 * 1024
#: Seconds a connection may be paced at those rates without a break before it is
#: closed with 4429: a bulk import of tens of thousands of updates gets through at
#: the rate; a flood that never lets up is cut off.
DEFAULT_RATE_LIMIT_GRACE = 10.0
#: Seconds a `/ws` client that upgraded without a token has to send its `auth`
#: message; until then it may send nothing else. Long enough for a slow phone
#: network, short enough that idle unauthenticated sockets do not pile up.
DEFAULT_AUTH_TIMEOUT = 10.0
#: Bytes the first frame of a not-yet-authenticated `/ws` socket may have: a token
#: with generous claims fits in a few KiB; nothing else is read before it.
MAX_PREAUTH_MESSAGE_BYTES = 64 * 1024
#: Seconds a new TCP connection has to send its first request's head (request line and
#: headers). A real client sends it at once, in one packet; a socket that sends nothing,
#: or a byte at a time, holds a descriptor until then. Generous for a slow mobile link;
#: nginx's client_header_timeout is 60 s, Go servers commonly set 5-10 s.
DEFAULT_HEADER_TIMEOUT = 10.0
#: Seconds a request's body may take to arrive once its head is in. A body of the
#: largest size (COLLAB_MAX_MESSAGE_BYTES, 8 MiB) needs 67 s at 1 Mbit/s; a client
#: slower than that is holding a connection and a buffer, not uploading.
DEFAULT_BODY_TIMEOUT = 120.0
#: Seconds an HTTP connection may sit idle between requests before it is closed (it
#: also bounds a later request's head). aiohttp's own default is 3,630 s. Longer than
#: the 60 s idle timeout of common load balancers (AWS ALB): they must close first, or
#: they may send a request on a connection being closed. nginx's default is 75 s too.
DEFAULT_KEEPALIVE_TIMEOUT = 75.0
#: Bytes a request's head (request line and every header) may have in all; a longer
#: one is answered 431 and the connection closed. Node's default (16 KiB) and h11's:
#: cookies and a token fit; what a client can make the server hold before it
#: authenticates stays small.
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
#: Bytes the server may hold, in all, for connections that have not authenticated yet:
#: unfinished request heads (each up to COLLAB_MAX_HEADER_BYTES) and unfinished `/ws`
#: auth messages (each up to MAX_PREAUTH_MESSAGE_BYTES). Past it, the connections
#: waiting longest while holding much are closed. Honest clients hold next to nothing
#: while they wait, so thousands reconnecting at once are never closed; a flood of
#: half-sent heads and frames is. Measured resident memory is ~1.3x the bytes for
#: frames and ~3.5x for heads (parsed into many small objects): 32 MiB is 40-110 MiB
#: at worst. 0: no limit.
DEFAULT_MAX_PREAUTH_BYTES = 32 * 1024 * 1024
#: Connections (every TCP connection; behind proxies, WebSockets) one client address
#: may hold open at once. High, because many real clients share an address (an
#: office behind NAT, every client of a proxy whose hops are not configured), yet
#: far below a process's file descriptor limit, so one host cannot exhaust it. 0
#: turns it off.
DEFAULT_MAX_CONNECTIONS_PER_IP = 10_000
#: Documents plus actor connections one `/ws` socket may hold at once (an editor
#: with many open tabs multiplexed, a sidebar of rooms); 0 turns it off.
DEFAULT_MAX_SUBSCRIPTIONS = 256
#: Actors (documents, rooms, your own) one `/ws` socket may wake per second when they
#: are not loaded yet: subscribe, connect, call. The burst is COLLAB_MAX_SUBSCRIPTIONS,
#: so a client reconnecting after a restart re-subscribes all it may hold at once;
#: past it the socket is paced (as for its message rate). Unsubscribing and subscribing
#: to 3,000 names loaded 3,000 documents in 2.7 s without it. 0 turns it off.
DEFAULT_MAX_LOADS_PER_SECOND = 20
#: The same for all the sockets of one client address together, `/yjs` joins
#: included, with bursts of ten times that: a host opening many sockets wakes at most
#: this many actors per second (an idle actor stays loaded for COLLAB_IDLE_TIMEOUT).
#: 0 turns it off.
DEFAULT_MAX_LOADS_PER_SECOND_PER_IP = 200
#: Bytes a document may take in the store (its snapshot plus the log since);
#: updates that would pass it are refused. 64 MiB is a long book with images
#: inlined; every loaded document is held in memory whole. 0 turns it off.
DEFAULT_MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
#: Versions (GET/POST /api/docs/<doc>/versions): an automatic one after this many
#: seconds of editing since the last version (0: none, not even at hibernation);
#: automatic ones kept per document (the oldest go first); every version of a
#: document at most, and all their bytes (named ones are refused past either).
DEFAULT_AUTO_VERSION_SECONDS = 600.0
DEFAULT_AUTO_VERSIONS_KEPT = 20
DEFAULT_MAX_VERSIONS = 100
DEFAULT_MAX_VERSION_BYTES = 256 * 1024 * 1024
#: Bytes of one client's awareness state (its JSON: cursor, name, colour); real
#: editors send well under 1 KiB. A bigger state closes the sender (1009).
DEFAULT_MAX_AWARENESS_BYTES = 16 * 1024
#: Awareness updates one connection may send per second (bursts of twice that);
#: past it only the latest waiting one is relayed when the budget allows, so a
#: cursor storm costs the others nothing. Cursors at 60 Hz fit. 0: no limit.
DEFAULT_MAX_AWARENESS_PER_SECOND = 60
#: SQLite `synchronous`: NORMAL survives a process crash in WAL mode; FULL also a power loss.
DEFAULT_SQLITE_SYNCHRONOUS = "NORMAL"
SQLITE_SYNCHRONOUS_CHOICES = ("OFF", "NORMAL", "FULL", "EXTRA")
#: Seconds a graceful shutdown (SIGTERM) may take from the signal to the exit: closing
#: sockets, stopping actors, flushing writes. Heroku and Kubernetes (by default) send
#: SIGKILL 30 s after SIGTERM; 20 leaves room for the interpreter to exit.
DEFAULT_SHUTDOWN_TIMEOUT = 20.0
#: Seconds an actor's ownership lease lasts in Redis without renewal (renewed every
#: third of it): how long a dead owner's actors stay unavailable to the others.
DEFAULT_LEASE_TTL = 10.0
#: Seconds a process's heartbeat in Redis lasts: after kill -9, its actors are taken
#: over this long after its last heartbeat (cluster/liveness.py).
DEFAULT_LIVENESS_TTL = 1.5
#: The default first part of every Redis key and channel collab uses.
DEFAULT_REDIS_PREFIX = "collab"
REDIS_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: Postgres connections per process at most. Writes use one at a time (group
#: commit), the rest serve concurrent loads; processes x this must stay below the
#: server's max_connections (Heroku's smallest plans allow 20 in all).
DEFAULT_DATABASE_POOL_SIZE = 10
#: Bytes below which COLLAB_SECRET draws a warning: RFC 7518 section 3.2 asks for an
#: HS256 key at least as long as its 256-bit hash output.
MIN_SECRET_BYTES = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: `text`: one human-readable line per record; `json`: one JSON object per line, for
#: log pipelines that parse fields.
LOG_FORMATS = ("text", "json")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    database_url: str = DEFAULT_DATABASE_URL
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    connected_idle_timeout: float = DEFAULT_CONNECTED_IDLE_TIMEOUT
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ping_interval: float = DEFAULT_PING_INTERVAL
    compact_rows: int = DEFAULT_COMPACT_ROWS
    compact_bytes: int = DEFAULT_COMPACT_BYTES
    compact_delay: float = DEFAULT_COMPACT_DELAY
    max_outbound_bytes: int = DEFAULT_MAX_OUTBOUND_BYTES
    max_messages_per_second: float = DEFAULT_MAX_MESSAGES_PER_SECOND
    max_bytes_per_second: float = DEFAULT_MAX_BYTES_PER_SECOND
    rate_limit_grace: float = DEFAULT_RATE_LIMIT_GRACE
    sqlite_synchronous: str = DEFAULT_SQLITE_SYNCHRONOUS
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT
    log_level: str = "INFO"
    log_format: str = "text"
    #: The event loop `collab serve` runs on (collab/eventloop.py), one of EVENT_LOOPS.
    event_loop: str = "auto"
    #: One log line per HTTP request, a WebSocket's at its upgrade (aiohttp's access log).
    access_log: bool = False
    #: Redis for actor ownership when several processes share the store; None: one process.
    redis_url: str | None = None
    lease_ttl: float = DEFAULT_LEASE_TTL
    liveness_ttl: float = DEFAULT_LIVENESS_TTL
    #: False: a `rediss://` Redis's certificate is not checked (the link stays encrypted);
    #: Heroku Redis presents a self-signed one.
    redis_verify_tls: bool = True
    #: Prepended to every Redis key and channel of this deployment (default "collab"),
    #: so that deployments sharing one Redis never hear each other.
    redis_prefix: str = DEFAULT_REDIS_PREFIX
    #: Webhooks (actors/webhooks.py): where events are POSTed, the HMAC key that
    #: signs them, which documents' changes are sent, and their debounce.
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_docs: tuple[str, ...] = ("*",)
    webhook_quiet: float = 2.0
    webhook_at_most: float = 30.0
    #: Most Postgres connections this process opens (its asyncpg pool's size).
    database_pool_size: int = DEFAULT_DATABASE_POOL_SIZE
    #: Heroku sets DYNO (`web.1`) in every dyno; its presence means the disk is ephemeral.
    dyno: str | None = None
    #: HS256 key for client tokens (docs/auth.md); None with no public key: development mode.
    secret: str | None = field(default=None, repr=False)
    #: PEM text or path of an RSA (RS256) or EC (ES256) public key for client tokens.
    jwt_public_key: str | None = field(default=None, repr=False)
    #: Origins a browser may open WebSockets from (`*`: any); empty: Origin not checked.
    allowed_origins: tuple[str, ...] = ()
    #: `module:function` of an application's authentication hook (docs/auth.md);
    #: set, it turns auth on even without a key.
    auth_hook: str | None = None
    auth_timeout: float = DEFAULT_AUTH_TIMEOUT
    max_preauth_bytes: int = DEFAULT_MAX_PREAUTH_BYTES
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_connections_per_ip: int = DEFAULT_MAX_CONNECTIONS_PER_IP
    #: Proxies in front of the server that append to X-Forwarded-For: the client's
    #: address is that many entries from the right. 0: the TCP peer's address.
    forwarded_hops: int = 0
    max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS
    max_loads_per_second: float = DEFAULT_MAX_LOADS_PER_SECOND
    max_loads_per_second_per_ip: float = DEFAULT_MAX_LOADS_PER_SECOND_PER_IP
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
    #: Bytes of memory for the whole process (0: no budget): past it the least recently
    #: used idle actors hibernate first (runtime/budget.py).
    memory_budget: int = 0
    max_awareness_bytes: int = DEFAULT_MAX_AWARENESS_BYTES
    max_awareness_per_second: float = DEFAULT_MAX_AWARENESS_PER_SECOND
    auto_version_seconds: float = DEFAULT_AUTO_VERSION_SECONDS
    auto_versions_kept: int = DEFAULT_AUTO_VERSIONS_KEPT
    max_versions: int = DEFAULT_MAX_VERSIONS
    max_version_bytes: int = DEFAULT_MAX_VERSION_BYTES

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **flags) -> Settings:
        """Build settings from `env` (default os.environ); non-None `flags` win over env."""
        env = dict(os.environ if env is None else env)
        port_env = env.get("PORT")
        values = {
            "host": env.get("HOST") or (PUBLIC_HOST if port_env else DEFAULT_HOST),
            "port": _int(env, "PORT", DEFAULT_PORT),
            "database_url": env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            "idle_timeout": _float(env, "COLLAB_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT),
            "connected_idle_timeout": _float(env, "COLLAB_CONNECTED_IDLE_TIMEOUT",
                                             DEFAULT_CONNECTED_IDLE_TIMEOUT),
            "max_message_bytes": _int(env, "COLLAB_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES),
            "ping_interval": _float(env, "COLLAB_PING_INTERVAL", DEFAULT_PING_INTERVAL),
            "compact_rows": _int(env, "COLLAB_COMPACT_ROWS", DEFAULT_COMPACT_ROWS),
            "compact_bytes": _int(env, "COLLAB_COMPACT_BYTES", DEFAULT_COMPACT_BYTES),
            "compact_delay": _float(env, "COLLAB_COMPACT_DELAY", DEFAULT_COMPACT_DELAY),
            "max_outbound_bytes": _int(env, "COLLAB_MAX_OUTBOUND_BYTES",
                                       DEFAULT_MAX_OUTBOUND_BYTES),
            "max_messages_per_second": _float(env, "COLLAB_MAX_MESSAGES_PER_SECOND",
                                              DEFAULT_MAX_MESSAGES_PER_SECOND),
            "max_bytes_per_second": _float(env, "COLLAB_MAX_BYTES_PER_SECOND",
                                           DEFAULT_MAX_BYTES_PER_SECOND),
            "rate_limit_grace": _float(env, "COLLAB_RATE_LIMIT_GRACE",
                                       DEFAULT_RATE_LIMIT_GRACE),
            "sqlite_synchronous": env.get("COLLAB_SQLITE_SYNCHRONOUS",
                                          DEFAULT_SQLITE_SYNCHRONOUS).upper(),
            "shutdown_timeout": _float(env, "COLLAB_SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT),
            "log_level": env.get("COLLAB_LOG_LEVEL", "INFO").upper(),
            "log_format": env.get("COLLAB_LOG_FORMAT", "text").lower(),
            "event_loop": (env.get("COLLAB_EVENT_LOOP") or "auto").lower(),
            "access_log": _bool(env, "COLLAB_ACCESS_LOG", False),
            "redis_url": env.get("REDIS_URL") or None,
            "lease_ttl": _float(env, "COLLAB_LEASE_TTL", DEFAULT_LEASE_TTL),
            "liveness_ttl": _float(env, "COLLAB_LIVENESS_TTL", DEFAULT_LIVENESS_TTL),
            "redis_verify_tls": _bool(env, "COLLAB_REDIS_VERIFY_TLS", True),
            "redis_prefix": env.get("COLLAB_REDIS_PREFIX") or DEFAULT_REDIS_PREFIX,
            "webhook_url": env.get("COLLAB_WEBHOOK_URL") or None,
            "webhook_secret": env.get("COLLAB_WEBHOOK_SECRET") or None,
            "webhook_docs": tuple(p.strip() for p in env.get("COLLAB_WEBHOOK_DOCS", "*").split(",")
                                  if p.strip()),
            "webhook_quiet": _float(env, "COLLAB_WEBHOOK_QUIET", 2.0),
            "webhook_at_most": _float(env, "COLLAB_WEBHOOK_AT_MOST", 30.0),
            "database_pool_size": _int(env, "COLLAB_DATABASE_POOL_SIZE",
                                       DEFAULT_DATABASE_POOL_SIZE),
            "dyno": env.get("DYNO") or None,
            "secret": env.get("COLLAB_SECRET") or None,
            "jwt_public_key": env.get("COLLAB_JWT_PUBLIC_KEY") or None,
            "allowed_origins": _list(env, "COLLAB_ALLOWED_ORIGINS"),
            "auth_hook": env.get("COLLAB_AUTH_HOOK") or None,
            "auth_timeout": _float(env, "COLLAB_AUTH_TIMEOUT", DEFAULT_AUTH_TIMEOUT),
            "max_preauth_bytes": _int(env, "COLLAB_MAX_PREAUTH_BYTES", DEFAULT_MAX_PREAUTH_BYTES),
            "header_timeout": _float(env, "COLLAB_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT),
            "body_timeout": _float(env, "COLLAB_BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT),
            "keepalive_timeout": _float(env, "COLLAB_KEEPALIVE_TIMEOUT",
                                        DEFAULT_KEEPALIVE_TIMEOUT),
            "max_header_bytes": _int(env, "COLLAB_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES),
            "max_connections_per_ip": _int(env, "COLLAB_MAX_CONNECTIONS_PER_IP",
                                           DEFAULT_MAX_CONNECTIONS_PER_IP),
            # Heroku's router is one proxy hop that appends the client's address.
            "forwarded_hops": _int(env, "COLLAB_FORWARDED_HOPS", 1 if env.get("DYNO") else 0),
            "max_subscriptions": _int(env, "COLLAB_MAX_SUBSCRIPTIONS", DEFAULT_MAX_SUBSCRIPTIONS),
            "max_loads_per_second": _float(env, "COLLAB_MAX_LOADS_PER_SECOND",
                                           DEFAULT_MAX_LOADS_PER_SECOND),
            "max_loads_per_second_per_ip": _float(env, "COLLAB_MAX_LOADS_PER_SECOND_PER_IP",
                                                  DEFAULT_MAX_LOADS_PER_SECOND_PER_IP),
            "auto_version_seconds": _float(env, "COLLAB_AUTO_VERSION_SECONDS",
                                           DEFAULT_AUTO_VERSION_SECONDS),
            "auto_versions_kept": _int(env, "COLLAB_AUTO_VERSIONS_KEPT",
                                       DEFAULT_AUTO_VERSIONS_KEPT),
            "max_versions": _int(env, "COLLAB_MAX_VERSIONS", DEFAULT_MAX_VERSIONS),
            "max_version_bytes": _int(env, "COLLAB_MAX_VERSION_BYTES",
                                      DEFAULT_MAX_VERSION_BYTES),
            "max_document_bytes": _int(env, "COLLAB_MAX_DOCUMENT_BYTES",
                                       DEFAULT_MAX_DOCUMENT_BYTES),
            "memory_budget": _int(env, "COLLAB_MEMORY_BUDGET", 0),
            "max_awareness_bytes": _int(env, "COLLAB_MAX_AWARENESS_BYTES",
                                        DEFAULT_MAX_AWARENESS_BYTES),
            "max_awareness_per_second": _float(env, "COLLAB_MAX_AWARENESS_PER_SECOND",
                                               DEFAULT_MAX_AWARENESS_PER_SECOND),
        }
        values.update({k: v for k, v in flags.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.database_url.startswith(SUPPORTED_DATABASE_URLS):
            scheme = self.database_url.split(":", 1)[0]
            raise ConfigError(f"unsupported DATABASE_URL scheme {scheme!r}; "
                              f"use one of {', '.join(SUPPORTED_DATABASE_URLS)}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"PORT must be 0-65535, got {self.port}")
        if self.sqlite_synchronous not in SQLITE_SYNCHRONOUS_CHOICES:
            raise ConfigError(
                f"COLLAB_SQLITE_SYNCHRONOUS must be one of {SQLITE_SYNCHRONOUS_CHOICES}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"COLLAB_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                              f"got {self.log_level!r}")
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(f"COLLAB_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, "
                              f"got {self.log_format!r}")
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError(f"COLLAB_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}, "
                              f"got {self.event_loop!r}")
        if self.event_loop == "uvloop" and not uvloop_installed():
            raise ConfigError("COLLAB_EVENT_LOOP is uvloop, which is not installed "
                              "(pip install uvloop; it does not run on Windows)")
        for name in ("idle_timeout", "ping_interval", "max_message_bytes", "compact_rows",
                     "compact_bytes", "max_outbound_bytes", "shutdown_timeout", "lease_ttl",
                     "liveness_ttl",
                     "auth_timeout", "max_awareness_bytes", "rate_limit_grace",
                     "header_timeout", "body_timeout", "keepalive_timeout",
                     "max_header_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        for name in ("connected_idle_timeout", "memory_budget",
                     "max_messages_per_second", "max_bytes_per_second", "max_connections_per_ip",
                     "max_preauth_bytes",
                     "forwarded_hops", "max_subscriptions", "max_document_bytes",
                     "max_awareness_per_second", "max_loads_per_second",
                     "max_loads_per_second_per_ip", "auto_version_seconds",
                     "auto_versions_kept"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 (no limit) or positive")
        if not REDIS_PREFIX_PATTERN.fullmatch(self.redis_prefix):
            raise ConfigError("COLLAB_REDIS_PREFIX must be 1 to 64 letters, digits, '-', '_' "
                              f"or '.', got {self.redis_prefix!r}")
        if self.webhook_url is not None:
            if not self.webhook_url.startswith(("http://", "https://")):
                raise ConfigError("COLLAB_WEBHOOK_URL must be an http:// or https:// URL")
            if not self.webhook_secret or len(self.webhook_secret) < 16:
                raise ConfigError("COLLAB_WEBHOOK_URL needs COLLAB_WEBHOOK_SECRET (16 characters "
                                  "or more): receivers check each event's signature with it")
            if not 0 < self.webhook_quiet <= self.webhook_at_most:
                raise ConfigError("COLLAB_WEBHOOK_QUIET must be positive and at most "
                                  "COLLAB_WEBHOOK_AT_MOST")
        if self.max_versions < 1 or self.max_version_bytes < 1:
            raise ConfigError("COLLAB_MAX_VERSIONS and COLLAB_MAX_VERSION_BYTES must be positive")
        if self.database_pool_size < 1:
            raise ConfigError("COLLAB_DATABASE_POOL_SIZE must be at least 1")
        if self.jwt_public_key:
            try:
                load_public_key(self.jwt_public_key)
            except ValueError as exc:
                raise ConfigError(f"COLLAB_JWT_PUBLIC_KEY: {exc}") from None

    @property
    def auth_enabled(self) -> bool:
        """Clients must authenticate: a key for signed tokens (COLLAB_SECRET or
        COLLAB_JWT_PUBLIC_KEY) or an application hook (COLLAB_AUTH_HOOK) is set."""
        return bool(self.secret or self.jwt_public_key or self.auth_hook)

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")


def deployment_warnings(settings: Settings) -> list[str]:
    """What an operator must hear about before these settings lose data; empty if nothing.
    Each entry is one complete sentence or two, for a WARNING log line."""
    warnings = []
    if settings.dyno and settings.uses_sqlite:
        warnings.append(
            f"running on Heroku (DYNO={settings.dyno}) with a SQLite store "
            f"({redact_url(settings.database_url)}): a dyno's disk is wiped on every restart "
            "and deploy (at least once a day), so every document, room and actor state "
            "written here WILL BE LOST, and dynos do not share it. Attach Heroku Postgres "
            "(heroku addons:create heroku-postgresql), which sets DATABASE_URL.")
    return warnings


def security_warnings(settings: Settings) -> list[str]:
    """What an operator must hear about before these settings expose data; empty if
    nothing. Each entry is one complete sentence or two, for a WARNING log line."""
    warnings = []
    if not settings.auth_enabled:
        warnings.append(
            "AUTHENTICATION IS OFF (development mode): none of COLLAB_SECRET, "
            "COLLAB_JWT_PUBLIC_KEY and COLLAB_AUTH_HOOK is set, so every client may read "
            "and write every document, room and actor, under any user id it claims. Set "
            "COLLAB_SECRET (or COLLAB_JWT_PUBLIC_KEY, or COLLAB_AUTH_HOOK) before exposing "
            "this server (docs/auth.md).")
    elif settings.secret and len(settings.secret.encode()) < MIN_SECRET_BYTES:
        warnings.append(
            f"COLLAB_SECRET is {len(settings.secret.encode())} bytes; HS256 needs at least "
            f"{MIN_SECRET_BYTES} random bytes to resist guessing (e.g. `openssl rand -hex 32`).")
    return warnings


def redact_url(url: str) -> str:
    """`url` with any password hidden, for printing (a Postgres URL often has one)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not (sep and at and ":" in creds):
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _list(env: dict[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list; blanks dropped, surrounding spaces and trailing slashes
    trimmed (browsers send an Origin without one)."""
    return tuple(item.strip().rstrip("/") for item in env.get(name, "").split(",")
                 if item.strip())


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    if raw.strip().lower() in _TRUE:
        return True
    if raw.strip().lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), got {raw!r}")


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
