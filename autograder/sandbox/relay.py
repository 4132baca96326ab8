"""The only process that holds ZeroMQ sockets connected to a student's kernel.

Run by :class:`autograder.sandbox.wire.KernelWire` as ``python -I relay.py CONFIG`` (a JSON
object, see :func:`main`); it imports nothing but the standard library and pyzmq.

Why a process of its own: ZeroMQ's ``MAXMSGSIZE`` bounds one frame, not a message, and libzmq
keeps every frame of a multipart message in memory until the last one has arrived. A kernel can
send one message of thousands of large frames (all pointing at one buffer, so it costs the
kernel nothing) or a stream of large messages; whoever receives them must hold them. The relay
receives them in its own process, under its own memory limit (``RLIMIT_DATA``), and passes on
to the grader only messages of at most ``max_frames`` frames and ``max_message`` bytes (larger
ones are replaced by a notice, so a huge print is dropped rather than fatal as long as the
relay can hold it). It counts every byte the kernel sends on any channel and stops
when the notebook's ``budget`` is spent. The grader treats a relay that stopped or died as the
notebook's fault ("output limit exceeded"), and its own memory holds at most a few bounded
messages (the high-water mark of its one socket to the relay).

Kernel side: shell and control (DEALER), iopub (SUB). Grader side: one PAIR socket carrying
``[channel, *frames]`` both ways; the channel ``b"!"`` from the relay announces a dropped
message (``[b"!", channel, frames, bytes]``), ``[b"stop"]`` from the grader ends the relay.

Exit status: 0 stopped by the grader or orphaned, 3 budget spent, 4 out of memory, 5 a kernel
connection broke (libzmq ends a connection it cannot take a message from and never reconnects:
without this the kernel's output would silently stop).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

import zmq
from zmq.utils.monitor import recv_monitor_message

EXIT_BUDGET = 3
EXIT_MEMORY = 4
EXIT_LOST = 5          # a kernel connection broke: the kernel died, or it sent what libzmq
                       # could not take (e.g. a message larger than the memory limit)
KERNEL_SOCKETS = (("shell", zmq.DEALER), ("control", zmq.DEALER), ("iopub", zmq.SUB))
KERNEL_RCVHWM = 1000   # whole messages queued per kernel socket (the memory limit holds)
GRADER_HWM = 2         # whole messages queued towards the grader


def _receive(sock, max_frames: int, max_message: int):
    """(frames kept or None when the message is too large, frame count, byte count)."""
    frames, count, size = [], 0, 0
    while True:
        frame = sock.recv(copy=False)
        count += 1
        size += len(frame.buffer)
        if frames is not None and (count > max_frames or size > max_message):
            frames = None
        if frames is not None:
            frames.append(frame)
        if not frame.more:
            return frames, count, size


def relay(cfg: dict) -> int:
    ctx = zmq.Context()
    ctx.setsockopt(zmq.LINGER, 0)
    # no MAXMSGSIZE: libzmq ends a connection whose peer breaks it and never reconnects, so
    # one oversized frame would silence the kernel; the memory limit bounds frames instead
    grader = ctx.socket(zmq.PAIR)
    grader.setsockopt(zmq.SNDHWM, GRADER_HWM)
    grader.bind(cfg["grader"])
    kernel, names, monitors = {}, {}, []
    poller = zmq.Poller()
    poller.register(grader, zmq.POLLIN)
    for name, kind in KERNEL_SOCKETS:
        sock = ctx.socket(kind)
        sock.setsockopt(zmq.RCVHWM, KERNEL_RCVHWM)
        if kind == zmq.SUB:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        monitors.append(sock.get_monitor_socket(zmq.EVENT_DISCONNECTED))
        poller.register(monitors[-1], zmq.POLLIN)
        sock.connect(cfg["kernel"][name])
        kernel[name.encode()] = sock
        names[sock] = name.encode()
        poller.register(sock, zmq.POLLIN)
    used = 0
    while True:
        events = dict(poller.poll(1000))
        if os.getppid() != cfg["parent"]:
            return 0
        for monitor in monitors:
            if monitor in events and recv_monitor_message(monitor)["event"] \
                    == zmq.EVENT_DISCONNECTED:
                print("relay: a connection to the kernel broke", file=sys.stderr)
                return EXIT_LOST
        if grader in events:
            frames = grader.recv_multipart()
            if frames[0] == b"stop":
                return 0
            if frames[0] in kernel:
                kernel[frames[0]].send_multipart(frames[1:])
        for sock, name in names.items():
            if sock not in events:
                continue
            frames, count, size = _receive(sock, cfg["max_frames"], cfg["max_message"])
            used += size
            if used > cfg["budget"]:
                print(f"relay: the kernel sent more than {cfg['budget']} bytes", file=sys.stderr)
                return EXIT_BUDGET
            if frames is None:
                grader.send_multipart([b"!", name, str(count).encode(), str(size).encode()])
            else:
                grader.send_multipart([name, *frames], copy=False)


def main(argv: list[str]) -> int:
    """``argv[1]``: JSON with ``parent`` (pid of the grader worker), ``grader`` (the address to
    bind for it), ``kernel`` (addresses of the kernel's shell, control and iopub sockets),
    ``max_frames``, ``max_message``, ``budget`` and ``memory`` (bytes)."""
    cfg = json.loads(argv[1])
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the grader worker
    if os.getppid() != cfg["parent"]:
        return 0
    resource.setrlimit(resource.RLIMIT_DATA, (cfg["memory"], cfg["memory"]))
    try:
        return relay(cfg)
    except MemoryError:
        return EXIT_MEMORY


if __name__ == "__main__":
    sys.exit(main(sys.argv))
