"""Where a client connects from, and how many connections each address holds open: every
TCP connection of its peer address (gateway/sockets.py), or behind proxies the WebSockets
of the address they forwarded (gateway/upgrade.py).

Behind proxies (Heroku's router, a load balancer) the TCP peer is the proxy; each
proxy appends the address it saw to X-Forwarded-For, so with `hops` trusted
proxies the client is the entry `hops` places from the right. Entries further
left were written by the client itself and prove nothing.
"""

from __future__ import annotations

from collections import Counter

from aiohttp import hdrs, web

from collab.errors import BadRequest


class TooManyConnections(BadRequest):
    code = "too_many_connections"
    status = 429


def client_address(request: web.Request, hops: int) -> str:
    """The client's address: the TCP peer's, or the one `hops` trusted proxies saw."""
    if hops:
        seen = [part.strip() for value in request.headers.getall(hdrs.X_FORWARDED_FOR, ())
                for part in value.split(",") if part.strip()]
        if len(seen) >= hops:
            return seen[-hops]
    return request.remote or "?"


class ConnectionsPerAddress:
    """Open connections by client address, refused past `limit` (0: no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def enter(self, address: str) -> None:
        """Count one more connection from `address`; raises TooManyConnections (429) past
        the limit."""
        if self.limit and self._open[address] >= self.limit:
            raise TooManyConnections(
                f"{address} already holds {self.limit} connections, this server's limit "
                "(COLLAB_MAX_CONNECTIONS_PER_IP)")
        self._open[address] += 1

    def leave(self, address: str) -> None:
        remaining = self._open[address] - 1
        if remaining > 0:
            self._open[address] = remaining
        else:
            del self._open[address]
