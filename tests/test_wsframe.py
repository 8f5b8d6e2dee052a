import os
import struct

from hypothesis import given
from hypothesis import strategies as st

from collab.protocol.wsframe import FirstMessage, binary_frame

TEXT, BINARY, CONTINUATION, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


def test_small_medium_large_headers():
    assert binary_frame(b"ab") == b"\x82\x02ab"
    medium = binary_frame(b"x" * 300)
    assert medium[:4] == b"\x82\x7e\x01\x2c" and len(medium) == 304
    large = binary_frame(b"x" * 70000)
    assert large[:2] == b"\x82\x7f" and int.from_bytes(large[2:10], "big") == 70000


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True,
                 length_bytes: int | None = None) -> bytes:
    """A frame as a client sends it: masked, with the shortest length encoding unless
    `length_bytes` (0, 2 or 8) asks for another."""
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 65536 else 8
    if length_bytes == 0:
        header = bytes((first, mask_bit | n))
    elif length_bytes == 2:
        header = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, n)
    key = os.urandom(4) if masked else b""
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if masked \
        else header + payload


def feed_in_pieces(data: bytes, cuts: list[int]) -> int | None:
    """Feed `data` cut at `cuts`; the offset in the whole stream where it said the
    first message ended, or None."""
    scanner, start = FirstMessage(), 0
    for stop in [*sorted(set(cuts)), len(data)]:
        offset = scanner.feed(data[start:stop])
        if offset is not None:
            return start + offset
        start = stop
    return None


def test_one_frame_ends_where_it_ends_whatever_follows():
    frame = client_frame(BINARY, b"auth message")
    assert FirstMessage().feed(frame) == len(frame)
    assert FirstMessage().feed(frame + client_frame(BINARY, b"next")) == len(frame)
    assert FirstMessage().feed(frame[:-1]) is None


def test_byte_by_byte_and_every_length_encoding():
    for payload, length_bytes in [(b"", 0), (b"x" * 125, 0), (b"x" * 126, 2), (b"x" * 3, 8),
                                  (b"y" * 70000, 8)]:
        frame = client_frame(TEXT, payload, length_bytes=length_bytes)
        assert feed_in_pieces(frame, list(range(1, len(frame)))) == len(frame)


def test_control_frames_before_or_inside_it_do_not_end_it():
    ping = client_frame(PING, b"p")
    start = client_frame(TEXT, b"{\"op\": ", fin=False)
    end = client_frame(CONTINUATION, b"\"auth\"}")
    stream = ping + start + ping + end + client_frame(BINARY, b"after")
    assert FirstMessage().feed(stream) == len(ping + start + ping + end)


def test_a_huge_declared_length_is_counted_not_kept():
    header = client_frame(BINARY, b"", length_bytes=8)[:2] + (8 << 20).to_bytes(8, "big") + \
        b"\0\0\0\0"
    scanner = FirstMessage()
    assert scanner.feed(header) is None
    assert scanner.feed(b"\0" * ((8 << 20) - 1)) is None
    assert scanner.feed(b"\0" + b"rest") == 1


frames = st.lists(st.tuples(st.sampled_from([PING, CLOSE]), st.binary(max_size=20)), max_size=3)


@given(before=frames, fragments=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
       after=st.binary(max_size=50), cuts=st.lists(st.integers(0, 2000), max_size=8),
       masked=st.booleans())
def test_any_split_of_any_stream_finds_the_same_end(before, fragments, after, cuts, masked):
    stream = b"".join(client_frame(op, body[:125], masked=masked) for op, body in before)
    for i, fragment in enumerate(fragments):
        stream += client_frame(BINARY if i == 0 else CONTINUATION, fragment,
                               fin=i == len(fragments) - 1, masked=masked)
    end = len(stream)
    assert feed_in_pieces(stream + after, [c for c in cuts if c <= len(stream + after)]) == end
