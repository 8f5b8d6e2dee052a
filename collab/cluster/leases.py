"""Actor ownership in Redis: at most one process owns (kind, key) at a time.

A lease is a Redis key holding "<node>:<token>" with a TTL, renewed while the
owner lives. The token comes from a per-actor counter that only grows, so a
newer owner always holds a larger token than any older one: the store refuses
writes carrying a smaller token than the last it accepted (fencing), which
makes a paused or partitioned old owner harmless even after its lease expired.
Every check-and-set is one Lua script, so it is atomic in Redis; no consensus
of our own.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from collab.errors import CollabError

#: Milliseconds a fence counter outlives the last time its actor was owned: counters
#: of actors nobody owns any more go away. One that expired counts again from the
#: store's last token (the floor), as after a Redis restart without its data.
FENCE_TTL_MS = 30 * 24 * 3600 * 1000

#: KEYS: lease, fence counter. ARGV: node, ttl ms, floor (the store's last token:
#: a Redis restarted without its data starts counting again above it), fence ttl ms,
#: and the value of a lease to take over (its holder is gone), or "".
#: Returns {1, token} when the caller owns the lease (new or already its own),
#: {0, "<owner>:<token>"} when another node does.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[5] then
  local sep = string.find(current, ':[^:]*$')
  if string.sub(current, 1, sep - 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
    return {1, tonumber(string.sub(current, sep + 1))}
  end
  return {0, current}
end
local token = redis.call('INCR', KEYS[2])
if token <= tonumber(ARGV[3]) then
  token = tonumber(ARGV[3]) + 1
  redis.call('SET', KEYS[2], token)
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return {1, token}
"""

#: KEYS: lease, fence counter. ARGV: "<node>:<token>", ttl ms, fence ttl ms.
#: 1 if renewed, 0 if lost.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: KEYS: lease. ARGV: "<node>:<token>". 1 if released, 0 if it was not ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaseLost(CollabError):
    code = "lease_lost"


@dataclass(frozen=True, slots=True)
class Lease:
    kind: str
    key: str
    node: str
    token: int

    @property
    def value(self) -> str:
        return f"{self.node}:{self.token}"


@dataclass(frozen=True, slots=True)
class HeldElsewhere:
    """Another node holds the lease: requests for the actor go to `node`."""

    node: str
    token: int


class Leases:
    """This node's view of actor ownership in Redis."""

    def __init__(self, redis: Redis, node: str, ttl: float = 10.0,
                 namespace: str = "collab") -> None:
        if ":" in node:
            raise ValueError("a node id may not contain ':'")
        self.redis = redis
        #: The first part of every key: one deployment's (cluster/client.py).
        self.namespace = namespace
        self.node = node
        self.ttl_ms = int(ttl * 1000)
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    def _keys(self, kind: str, key: str) -> list[str]:
        # One hash tag per actor: the lease and its counter live on one Redis Cluster slot.
        ns = self.namespace
        return [f"{ns}:lease:{{{kind}:{key}}}", f"{ns}:fence:{{{kind}:{key}}}"]

    async def acquire(self, kind: str, key: str, floor: int = 0,
                      steal: HeldElsewhere | None = None) -> Lease | HeldElsewhere:
        """Own (kind, key), or learn who does. Owning it again is a renewal. A new
        token is above `floor` (the store's last), even if Redis lost its counter.
        With `steal` (a holder known to be gone), take its lease over if it still
        holds it: the new token is higher, so its writes are refused from then on."""
        mine, value = await self._acquire(
            keys=self._keys(kind, key),
            args=[self.node, self.ttl_ms, floor, FENCE_TTL_MS,
                  f"{steal.node}:{steal.token}" if steal is not None else ""])
        if mine:
            return Lease(kind, key, self.node, int(value))
        node, _, token = (value.decode() if isinstance(value, bytes) else value).rpartition(":")
        return HeldElsewhere(node, int(token))

    async def renew(self, leases: list[Lease]) -> list[Lease]:
        """Extend every lease in one round trip; returns those that were lost."""
        if not leases:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for lease in leases:
                await self._renew(keys=self._keys(lease.kind, lease.key),
                                  args=[lease.value, self.ttl_ms, FENCE_TTL_MS], client=pipe)
            results = await pipe.execute()
        return [lease for lease, ok in zip(leases, results, strict=True) if not ok]

    async def release(self, lease: Lease) -> bool:
        """Give the actor up (after its last write committed); False if it was not ours."""
        return bool(await self._release(keys=self._keys(lease.kind, lease.key)[:1],
                                        args=[lease.value]))

    async def holders(self, kind: str, keys: list[str]) -> dict[str, str]:
        """The process holding each of `keys` that has an entry: {key: node}, one round trip."""
        if not keys:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:  # not MGET: keys span slots
            for key in keys:
                pipe.get(self._keys(kind, key)[0])
            values = await pipe.execute()
        return {key: (value.decode() if isinstance(value, bytes) else value).rpartition(":")[0]
                for key, value in zip(keys, values, strict=True) if value is not None}

    async def owner(self, kind: str, key: str) -> HeldElsewhere | None:
        """Who holds (kind, key) now, if anyone."""
        value = await self.redis.get(self._keys(kind, key)[0])
        if value is None:
            return None
        node, _, token = (value.decode() if isinstance(value, bytes) else value).rpartition(":")
        return HeldElsewhere(node, int(token))
