"""The Redis client a process's cluster parts share.

Commands are retried (three times, with jittered backoff up to half a second)
when the connection turns out to be dead, as every pooled connection is after
a Redis restart: without that, the first command on each of them would fail,
and a lost publish can be an answer someone waits for.

With `verify_tls=False`, a `rediss://` server's certificate is not checked (the
connection is still encrypted): Heroku Redis presents a self-signed one.

Every key and channel of a deployment starts with its `namespace`: pub/sub
channels ignore Redis database numbers, so two deployments on one Redis (db 0
and db 1, or one prefix each) would otherwise hear each other's broadcasts,
requests and revocations.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff


def connect(url: str, verify_tls: bool = True) -> Redis:
    tls = {} if verify_tls or not url.startswith("rediss://") else {
        "ssl_cert_reqs": "none", "ssl_check_hostname": False}
    return Redis.from_url(url, retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3),
                          **tls)


def namespace(url: str, prefix: str = "collab") -> str:
    """The first part of every Redis key and channel of the deployment at `url`:
    `prefix` (COLLAB_REDIS_PREFIX), then the database number unless it is 0."""
    db = int(parse_url(url).get("db") or 0)
    return prefix if db == 0 else f"{prefix}:db{db}"
