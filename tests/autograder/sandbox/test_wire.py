"""Tests for autograder.kernel_wire.parse: any frames the kernel sends either parse into a
well-formed message or raise BadMessage, never anything else."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jupyter_client.session import DELIM, Session

from autograder.sandbox.wire import BadMessage, parse

SESSION = Session(key=b"k" * 32, signature_scheme="hmac-sha256", username="t")


def _frames(header, parent=b"{}", metadata=b"{}", content=b"{}", sign=True):
    parts = [p if isinstance(p, bytes) else json.dumps(p).encode()
             for p in (header, parent, metadata, content)]
    return [b"ident", DELIM, SESSION.sign(parts) if sign else b"0" * 64, *parts]


HEADER = {"msg_id": "m", "msg_type": "stream"}


def test_a_well_formed_message_parses():
    """Identities are skipped, JSON parts become dicts, extra frames are buffers."""
    msg = parse(_frames(HEADER, content={"text": "hi"}) + [b"buf"], SESSION)
    assert msg["msg_type"] == "stream" and msg["content"] == {"text": "hi"}
    assert msg["buffers"] == [b"buf"]


@pytest.mark.parametrize("frames", [
    [b"junk"],
    [DELIM, b"sig"],
    _frames(HEADER, sign=False),
    _frames([1]),
    _frames({"msg_id": "m"}),
    _frames({"msg_type": 3, "msg_id": "m"}),
    _frames(HEADER, parent=b"not json"),
    _frames(HEADER, content=b"[" * 100_000),
    _frames(HEADER, content=b'{"a": ' + b"9" * 5000 + b"}"),
    _frames(HEADER, content=b"\xff\xfe"),
    _frames(HEADER, content=b"[1, 2]"),
    _frames(HEADER, metadata=b"null"),
])
def test_malformed_messages_raise_bad_message(frames):
    """Junk, short, unsigned, non-object, too deep, huge-int and non-UTF-8 messages."""
    with pytest.raises(BadMessage):
        parse(frames, SESSION)


@given(st.lists(st.binary(max_size=40), max_size=8), st.booleans())
def test_arbitrary_frames_never_raise_anything_else(frames, with_delim):
    """Random frames (with or without a delimiter) give a message or BadMessage."""
    if with_delim:
        frames = [DELIM, *frames]
    try:
        parse(frames, SESSION)
    except BadMessage:
        pass
    unsigned = Session(key=b"", username="t")
    try:
        parse(frames, unsigned)
    except BadMessage:
        pass
