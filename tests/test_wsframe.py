from collab.protocol.wsframe import binary_frame


def test_small_medium_large_headers():
    assert binary_frame(b"ab") == b"\x82\x02ab"
    medium = binary_frame(b"x" * 300)
    assert medium[:4] == b"\x82\x7e\x01\x2c" and len(medium) == 304
    large = binary_frame(b"x" * 70000)
    assert large[:2] == b"\x82\x7f" and int.from_bytes(large[2:10], "big") == 70000
