"""The Python client's pure pieces (collab/client/): backoff, names, frames, tokens,
errors, events, and the rule that it imports nothing of the server but the codec."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from collab.client.backoff import backoff_delay
from collab.client.emitter import Emitter, Event
from collab.client.errors import CollabError
from collab.client.frames import decode_message, encode_message
from collab.client.names import check_actor_type, check_name
from collab.client.tokens import TokenSource

CLIENT_DIR = Path(__file__).resolve().parent.parent / "collab" / "client"
#: What collab/client/ may import from collab: itself and the wire codec.
ALLOWED_IMPORTS = ("collab.client", "collab.protocol.codec")


def test_backoff_is_full_jitter_under_an_exponential_ceiling_capped_at_max():
    almost_one = 1 - 1e-9
    assert [round(backoff_delay(n, 0.25, 10.0, lambda: almost_one), 6) for n in range(8)] == [
        0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff_delay(3, 0.25, 10.0, lambda: 0.0) == 0.0
    assert backoff_delay(10_000, 0.25, 10.0, lambda: 0.5) == 5.0  # no overflow far out


def test_names_follow_the_servers_rule():
    for good in ("notes", "team/notes", "a.b_c~d-e", "x" * 128):
        assert check_name(good, "document name") == good
    for bad in ("", "a b", "a//b", "./a", "a/..", "/a", "x" * 129, "é"):
        with pytest.raises(ValueError, match="invalid document name"):
            check_name(bad, "document name")
    with pytest.raises(TypeError):
        check_name(7, "actor key")
    assert check_actor_type("room") == "room"
    # The server's rule (collab.runtime.actor.KIND_PATTERN): dashes too, up to 64.
    assert check_actor_type("order-book") == "order-book"
    assert check_actor_type("a" * 64) == "a" * 64
    for bad in ("Room", "1room", "", "-room", "ro om", "a" * 65):
        with pytest.raises(ValueError):
            check_actor_type(bad)


def test_frames_are_msgpack_maps_with_raw_bytes():
    message = {"id": 1, "op": "doc.update", "doc": "d", "update": b"\x00\x00"}
    data = encode_message(message)
    assert msgpack.unpackb(data, raw=False) == message
    assert decode_message(data) == message
    # An actor result may have integer keys (MessagePack allows them).
    assert decode_message(msgpack.packb({"result": {1: "a"}})) == {"result": {1: "a"}}
    for bad in ('{"id": 1}', b"\xc1", msgpack.packb([1, 2])):
        with pytest.raises(CollabError) as refused:
            decode_message(bad)
        assert refused.value.code == "protocol"


async def test_a_token_function_is_called_once_and_again_after_invalidate():
    assert await TokenSource(None).get() is None
    assert await TokenSource("fixed").get() == "fixed"
    calls: list[int] = []

    async def issue() -> str:
        calls.append(1)
        return f"t{len(calls)}"

    source = TokenSource(issue)
    assert [await source.get(), await source.get()] == ["t1", "t1"]
    source.invalidate()
    assert await source.get() == "t2"

    def failing() -> str:
        calls.append(1)
        raise OSError("the auth service is down")

    broken = TokenSource(failing)
    for _ in range(2):  # a failure is not kept: the next attempt asks again
        with pytest.raises(OSError):
            await broken.get()
    assert len(calls) == 4
    with pytest.raises(TypeError):
        await TokenSource(lambda: 42).get()
    with pytest.raises(TypeError):
        TokenSource(42)  # type: ignore[arg-type]


def test_errors_carry_the_code_and_message_of_a_failed_response():
    error = CollabError.from_response({"code": "unknown_action", "message": "no 'x'"})
    assert (error.code, error.message, str(error)) == (
        "unknown_action", "no 'x'", "unknown_action: no 'x'")
    assert not error.transient and CollabError("store_unavailable", "").transient
    assert CollabError.from_response(None).code == "protocol"


async def test_events_reach_callbacks_and_streams_and_streams_end_on_close():
    emitter = Emitter()
    seen: list = []

    def broken(_value) -> None:
        raise RuntimeError("a listener's bug")

    emitter.on("x", broken)
    off = emitter.on("x", seen.append)
    named = emitter.stream(named=True)
    only_y = emitter.stream("y")
    emitter._emit("x", 1)  # the broken listener is logged; the others still run
    emitter._emit("y", 2)
    off()
    emitter._emit("x", 3)
    assert seen == [1]
    emitter._end_events()
    assert [event async for event in named] == [Event("x", 1), Event("y", 2), Event("x", 3)]
    assert [value async for value in only_y] == [2]

    closed = Emitter()
    stream = closed.stream("z")
    closed._emit("z", 1)
    stream.close()  # stops it at once; what it buffered is dropped
    closed._emit("z", 2)
    assert [value async for value in stream] == []


def test_the_client_imports_nothing_of_the_server_but_the_codec():
    """A bot's process needs the protocol's codec, not the runtime, gateway, actors
    or storage; this keeps collab/client/ from growing such an import."""
    offenders = []
    for path in sorted(CLIENT_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {name}" for name in names
                          if name.split(".")[0] == "collab"
                          and not name.startswith(ALLOWED_IMPORTS)]
    assert offenders == []
    codec = (CLIENT_DIR.parent / "protocol" / "codec.py").read_text()
    assert "import collab" not in codec and "from collab" not in codec


def test_importing_the_client_loads_none_of_the_server():
    """`collab/__init__.py` loads its names on first use: a bot's `import
    collab.client` stays clear of the runtime (checked in a fresh interpreter)."""
    probe = ("import sys, collab.client; "
             "print(sorted(m for m in sys.modules if m.startswith('collab.')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout
    assert "collab.runtime" not in loaded and "collab.actors" not in loaded, loaded
    assert "collab.client" in loaded
    import collab  # and the server's names are still there when asked for

    assert collab.Actor.__name__ == "Actor" and collab.watch_room.__name__ == "watch_room"
    assert sorted(collab.__all__) == sorted(collab._HOMES)
    with pytest.raises(AttributeError):
        collab.NoSuchThing  # noqa: B018
