"""The grader's end of the connection to a student's kernel: messages through the relay.

The grader holds no socket connected to the kernel: :class:`KernelWire` starts
:mod:`autograder.sandbox.relay` (one process per kernel, memory-limited) and talks to it over
one PAIR socket whose receive high-water mark is small, so the grader's memory holds at most a
few messages, each bounded by the relay. :func:`parse` turns the frames of one message into a
dict and raises :class:`BadMessage` for anything that is not a well-formed, correctly signed
Jupyter message with dict header (with string ``msg_type`` and ``msg_id``), parent header,
metadata and content; nothing the kernel sends can make it raise anything else. Each JSON part
is parsed within a bound on the values it holds (:data:`MAX_MESSAGE_VALUES`,
:func:`autograder.untrusted_json.loads`), so what parsing builds stays near the message's
size: a message of millions of empty lists is refused, not parsed."""

from __future__ import annotations

import enum
import hmac
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import zmq
from jupyter_client.session import DELIM, Session

from ..untrusted_json import TooManyValues, loads
from . import relay
from .limits import human_size

MAX_FRAMES = 64           # identities, delimiter, signature, 4 JSON parts and some buffers
GRADER_RCVHWM = 2         # whole messages queued in the grader
MAX_MESSAGE_VALUES = 200_000  # JSON values in one part of a message (real messages: dozens)
RELAY_BASE_MEMORY = 256 * 2**20
RELAY_EXITS = {relay.EXIT_BUDGET: "the notebook sent more than {budget} to the grader",
               relay.EXIT_MEMORY: "the notebook's messages overflowed the memory set aside for "
                                  "them",
               relay.EXIT_LOST: "the kernel's connection to the grader broke (it sent a message "
                                "too large for the memory set aside for messages, or closed its "
                                "sockets)"}


class BadMessage(ValueError):
    """A message from the kernel that is not a well-formed Jupyter message."""


class Arrival(enum.Enum):
    """What came from the relay: a parsed message, a notice that a message was too large and
    dropped by the relay, or a message that is not a well-formed Jupyter message."""

    MESSAGE = "message"
    DROPPED = "dropped"
    MALFORMED = "malformed"


@dataclass
class Received:
    """One message from the kernel (``msg``), or a notice that one was refused (``bad`` says
    why; ``kind`` says which of :class:`Arrival`)."""

    channel: str
    msg: dict | None
    size: int
    bad: str = ""
    kind: Arrival = Arrival.MESSAGE


def _json(frame: bytes, what: str) -> dict:
    try:
        value = loads(frame, MAX_MESSAGE_VALUES)
    except TooManyValues as exc:
        raise BadMessage(f"{what} is too large to parse: {exc}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # bad UTF-8, JSON, huge ints
        raise BadMessage(f"{what} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise BadMessage(f"{what} is not a JSON object")
    return value


def parse(frames: list[bytes], session: Session) -> dict:
    """The message carried by ``frames`` (identities first), checked and signed."""
    try:
        start = frames.index(DELIM) + 1
    except ValueError:
        raise BadMessage("no message delimiter") from None
    parts = frames[start:]
    if len(parts) < 5:
        raise BadMessage(f"{len(parts)} message parts, at least 5 expected")
    if session.auth is not None:
        if not hmac.compare_digest(parts[0], session.sign(parts[1:5])):
            raise BadMessage("invalid signature")
    header = _json(parts[1], "header")
    msg = {"header": header, "parent_header": _json(parts[2], "parent header"),
           "metadata": _json(parts[3], "metadata"), "content": _json(parts[4], "content"),
           "buffers": parts[5:]}
    for key in ("msg_type", "msg_id"):
        if not isinstance(header.get(key), str):
            raise BadMessage(f"header has no string {key!r}")
    msg["msg_type"], msg["msg_id"] = header["msg_type"], header["msg_id"]
    return msg


class KernelWire:
    """Messages to and from one kernel via its relay (``sock_base`` names the relay's socket,
    in a folder the kernel cannot reach)."""

    def __init__(self, session: Session, kernel_urls: dict[str, str], sock_base: str, *,
                 max_message: int, budget: int):
        self.session, self.budget = session, budget
        self.ctx = zmq.Context()
        self.ctx.setsockopt(zmq.LINGER, 0)
        self.ctx.setsockopt(zmq.MAXMSGSIZE, max_message)
        address = f"ipc://{sock_base}-relay"
        cfg = {"parent": os.getpid(), "grader": address, "kernel": kernel_urls,
               "max_frames": MAX_FRAMES, "max_message": max_message, "budget": budget,
               "memory": RELAY_BASE_MEMORY + 3 * max_message}
        self.relay = subprocess.Popen([sys.executable, "-I", relay.__file__, json.dumps(cfg)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, close_fds=True,
                                      start_new_session=True)
        self.sock = self.ctx.socket(zmq.PAIR)
        self.sock.setsockopt(zmq.RCVHWM, GRADER_RCVHWM)
        self.sock.connect(address)

    def send(self, channel: str, msg_type: str, content: dict) -> str:
        """Send a request on ``channel`` (shell or control); returns its msg_id."""
        msg = self.session.msg(msg_type, content)
        self.sock.send_multipart([channel.encode(), *self.session.serialize(msg)])
        return msg["header"]["msg_id"]

    def recv(self, timeout: float) -> Received | None:
        """The next message within ``timeout`` seconds, or None."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        frames = self.sock.recv_multipart()
        channel = frames[0].decode("ascii", "replace")
        if channel == "!":
            what = frames[1].decode("ascii", "replace") if len(frames) > 1 else "?"
            size = int(frames[3]) if len(frames) > 3 and frames[3].isdigit() else 0
            return Received(what, None, size, bad=f"a message of {size} bytes was too large",
                            kind=Arrival.DROPPED)
        size = sum(len(f) for f in frames)
        try:
            return Received(channel, parse(frames[1:], self.session), size)
        except BadMessage as exc:
            return Received(channel, None, size, bad=str(exc), kind=Arrival.MALFORMED)

    def failure(self) -> str:
        """Why the relay has stopped ("" while it runs)."""
        rc = self.relay.poll()
        if rc is None:
            return ""
        text = RELAY_EXITS.get(rc, "the notebook's messages overflowed the memory set aside "
                                   "for them")
        return "output limit exceeded: " + text.format(budget=human_size(self.budget))

    def close(self) -> None:
        try:
            self.sock.send_multipart([b"stop"], flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        try:
            self.relay.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            self.relay.kill()
            self.relay.wait()
        self.ctx.destroy(linger=0)

