"""The Redis client a process's cluster parts share.

Commands are retried (three times, with jittered backoff up to half a second)
when the connection turns out to be dead, as every pooled connection is after
a Redis restart: without that, the first command on each of them would fail,
and a lost publish can be an answer someone waits for.

With `verify_tls=False`, a `rediss://` server's certificate is not checked (the
connection is still encrypted): Heroku Redis presents a self-signed one.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff


def connect(url: str, verify_tls: bool = True) -> Redis:
    tls = {} if verify_tls or not url.startswith("rediss://") else {
        "ssl_cert_reqs": "none", "ssl_check_hostname": False}
    return Redis.from_url(url, retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3),
                          **tls)
