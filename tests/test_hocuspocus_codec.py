"""The Hocuspocus codec (protocol/hocuspocus.py): golden bytes as @hocuspocus/provider
4.x writes and reads them (its OutgoingMessages and MessageReceiver), round trips,
and each kind of bad input refused with the error that carries its close code."""

from __future__ import annotations

import pytest

from collab.errors import CloseCode, RemoteProtocolError, close_code_for
from collab.protocol import hocuspocus as hp
from collab.protocol import ywire
from collab.protocol.hocuspocus import Frame

GOLDEN = [
    # The provider's AuthenticationMessage: key, Auth, Token, token, its version.
    pytest.param(Frame("a", hp.Auth("t", "4.8.0")),
                 "01 61 02 00 01 74 05 34 2e 38 2e 30", id="auth"),
    pytest.param(Frame("a", hp.Auth("")), "01 61 02 00 00", id="auth-old-provider"),
    pytest.param(Frame("a", hp.Authenticated(hp.READ_WRITE)),
                 "01 61 02 02 0a 72 65 61 64 2d 77 72 69 74 65", id="authenticated"),
    pytest.param(Frame("a", hp.Authenticated(hp.READ_ONLY)),
                 "01 61 02 02 08 72 65 61 64 6f 6e 6c 79", id="authenticated-readonly"),
    pytest.param(Frame("a", hp.PermissionDenied("no")), "01 61 02 01 02 6e 6f", id="denied"),
    # Yjs messages: the y-websocket bytes behind the key.
    pytest.param(Frame("a", ywire.SyncStep1(b"\x00")), "01 61 00 00 01 00", id="step1"),
    pytest.param(Frame("a", ywire.SyncUpdate(b"\x00\x00")), "01 61 00 02 02 00 00",
                 id="update"),
    pytest.param(Frame("a", ywire.AwarenessMessage(b"\x00")), "01 61 01 01 00",
                 id="awareness"),
    pytest.param(Frame("a", ywire.QueryAwareness()), "01 61 03", id="query-awareness"),
    pytest.param(Frame("a", hp.Stateless("hi")), "01 61 05 02 68 69", id="stateless"),
    pytest.param(Frame("a", hp.Close("bye")), "01 61 07 03 62 79 65", id="close"),
    pytest.param(Frame("a", hp.SyncStatus(True)), "01 61 08 01", id="sync-status"),
    pytest.param(Frame("a", hp.SyncStatus(False)), "01 61 08 00", id="sync-status-false"),
    # A session-aware provider's key: name, NUL, session id.
    pytest.param(Frame("a\0s1", ywire.QueryAwareness()), "04 61 00 73 31 03", id="session-key"),
    pytest.param(hp.Ping(), "09", id="ping"),
    pytest.param(hp.Pong(), "0a", id="pong"),
]


@pytest.mark.parametrize(("frame", "golden"), GOLDEN)
def test_golden_bytes(frame, golden):
    data = bytes.fromhex(golden)
    assert hp.serialize(frame) == data
    assert hp.parse(data) == frame


def test_a_clients_close_has_no_reason():
    """The provider's CloseMessage is the key and the type alone."""
    assert hp.parse(bytes.fromhex("01 61 07")) == Frame("a", hp.Close(""))


def test_document_is_the_key_without_its_session():
    assert Frame("team/notes\0abc", hp.Close()).document == "team/notes"
    assert Frame("notes", hp.Close()).document == "notes"


def test_a_key_of_nine_or_ten_bytes_is_not_a_ping():
    frame = Frame("x" * 9, ywire.QueryAwareness())
    assert hp.parse(hp.serialize(frame)) == frame


BAD = [
    pytest.param("", CloseCode.PROTOCOL_ERROR, id="empty"),
    pytest.param("05 61 62", CloseCode.PROTOCOL_ERROR, id="truncated-key"),
    pytest.param("01 61", CloseCode.PROTOCOL_ERROR, id="no-type"),
    pytest.param("01 61 0b", CloseCode.UNSUPPORTED_DATA, id="unknown-type"),
    pytest.param("01 61 06 00", CloseCode.UNSUPPORTED_DATA, id="broadcast-stateless"),
    pytest.param("01 61 04 00 00 00", CloseCode.UNSUPPORTED_DATA, id="sync-reply"),
    pytest.param("01 61 02 07", CloseCode.UNSUPPORTED_DATA, id="unknown-auth-type"),
    pytest.param("01 61 02 00", CloseCode.PROTOCOL_ERROR, id="auth-without-token"),
    pytest.param("01 61 02 00 00 00 00", CloseCode.PROTOCOL_ERROR, id="auth-trailing"),
    pytest.param("01 61 02 02 03 61 6c 6c", CloseCode.INVALID_PAYLOAD, id="unknown-scope"),
    pytest.param("01 ff 03", CloseCode.INVALID_PAYLOAD, id="key-not-utf8"),
    pytest.param("01 61 05 02 c3 28", CloseCode.INVALID_PAYLOAD, id="stateless-not-utf8"),
    pytest.param("01 61 05", CloseCode.PROTOCOL_ERROR, id="stateless-truncated"),
    pytest.param("01 61 08 02", CloseCode.INVALID_PAYLOAD, id="sync-status-2"),
    pytest.param("01 61 03 00", CloseCode.PROTOCOL_ERROR, id="query-awareness-trailing"),
    pytest.param("01 61 00 09 00", CloseCode.UNSUPPORTED_DATA, id="unknown-sync-type"),
    pytest.param("01 61 07 01 78 00", CloseCode.PROTOCOL_ERROR, id="close-trailing"),
]


@pytest.mark.parametrize(("hex_frame", "code"), BAD)
def test_bad_input_is_refused_with_its_close_code(hex_frame, code):
    with pytest.raises(RemoteProtocolError) as refused:
        hp.parse(bytes.fromhex(hex_frame))
    assert close_code_for(refused.value) == code


def test_overlong_key_is_refused():
    data = hp.prefix("k" * (hp.MAX_KEY_CHARS + 1)) + b"\x03"
    with pytest.raises(RemoteProtocolError):
        hp.parse(data)


def test_overlong_texts_are_refused():
    reason = "r" * (hp.MAX_TEXT_CHARS + 1)
    with pytest.raises(RemoteProtocolError):
        hp.parse(hp.prefix("a") + b"\x07" + hp.prefix(reason))
    with pytest.raises(RemoteProtocolError):
        hp.parse(hp.prefix("a") + b"\x02\x00" + hp.prefix("t" * (hp.MAX_TOKEN_CHARS + 1)))


def test_invalid_messages_cannot_be_built():
    with pytest.raises(ValueError):
        hp.Authenticated("admin")
    with pytest.raises(ValueError):
        Frame("k" * (hp.MAX_KEY_CHARS + 1), hp.Close())
    with pytest.raises(ValueError):
        hp.PermissionDenied("r" * (hp.MAX_TEXT_CHARS + 1))
    with pytest.raises(TypeError):
        hp.serialize_body(object())  # type: ignore[arg-type]
