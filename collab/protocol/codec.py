"""The one MessagePack codec: what collab stores and forwards, and what clients send.

`pack` and `unpack` are for collab's own data (actor state, timer arguments, queue
messages, workflow steps, messages between processes): maps may have any keys, as
the Python values that made them did. `unpack_client` is for a client's bytes (a
`/ws` frame, an HTTP body): maps keyed by strings, no extension types.
"""

from __future__ import annotations

from typing import Any

import msgpack


def pack(value: Any) -> bytes:
    """`value` as MessagePack (bytes as `bin`, strings as `str`). Raises TypeError
    (or ValueError, for text UTF-8 cannot carry) if MessagePack cannot hold it."""
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """What `pack` made, integer map keys included."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def unpack_client(data: bytes) -> Any:
    """A client's MessagePack: string (or bytes) map keys only, no extension types.
    Raises ValueError or a msgpack exception for anything else."""
    return msgpack.unpackb(data, raw=False, ext_hook=_no_ext)


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not part of the protocol")
