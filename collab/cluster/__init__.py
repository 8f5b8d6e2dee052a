"""Several processes, one owner per actor: Redis leases, forwarding and pub/sub fan-out."""
