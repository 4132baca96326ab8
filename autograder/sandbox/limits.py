"""The resource limits of one notebook, declared once: each field of :class:`Limits` carries its
command-line flag, its help text and how its value is read, so the ``grade`` command's options,
their defaults and the README's list of defaults all come from here (:func:`limit_options`,
:func:`defaults_line`).

Sizes are bytes, times seconds. :func:`parse_size` reads "2G", "512M", "64k" or a plain number
of bytes (binary units); :func:`human_size` writes bytes back as e.g. "2 GiB".
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KIB, MIB, GIB, TIB = 2**10, 2**20, 2**30, 2**40
SHM_BYTES = 64 * MIB
_UNITS = {"": 1, "k": KIB, "m": MIB, "g": GIB, "t": TIB}


def parse_size(text: str) -> int:
    """``text`` such as "2G", "512M", "64k", "1.5g" or "300" as a number of bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not m:
        raise ValueError(f"not a size: {text!r} (e.g. 2G, 512M)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def human_size(n: float) -> str:
    """``n`` bytes as e.g. "2 GiB", "512 MiB", "300 bytes"."""
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


def _flag_size(n: int) -> str:
    """Bytes the way a flag is written: "2G", "512M", "64k" or the plain number."""
    for suffix, scale in (("T", TIB), ("G", GIB), ("M", MIB), ("k", KIB)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


@dataclass(frozen=True)
class Option:
    """How a limit appears on the command line: flag, help text, parser and printer."""

    flag: str
    help: str
    parse: Callable[[str], Any]
    show: Callable[[Any], str] = lambda v: f"{v:g}" if isinstance(v, float) else str(v)


def _limit(default, flag: str | None = None, help: str = "", parse=float, show=None):
    meta = {}
    if flag is not None:
        meta["option"] = Option(flag, help, parse, show or Option.show)
    return field(default=default, metadata=meta)


def _size_limit(default: int, flag: str, help: str):
    return _limit(default, flag, help, parse_size, _flag_size)


def _positive_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(f"must be 0 or more, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be more than 0, got {text}")
    return value


@dataclass(frozen=True)
class Limits:
    """Resource limits for one notebook (defaults: a correct solution finishes far inside)."""

    cell_timeout: float = _limit(120.0, "--cell-timeout", "seconds per cell", _positive)
    notebook_timeout: float = _limit(600.0, "--notebook-timeout", "seconds per notebook",
                                     _positive)
    memory: int = _size_limit(2 * GIB, "--memory", "memory per notebook, all its processes "
                                                   "and files in its scratch space together")
    processes: int = _limit(128, "--processes", "processes and threads per notebook",
                            _positive_count)
    cpus: float = _limit(1.0, "--cpus", "CPU quota per notebook where cgroups allow (0: none)",
                         _non_negative)
    file_size: int = _size_limit(64 * MIB, "--file-size", "largest file a notebook may write")
    output_bytes: int = _size_limit(8 * MIB, "--output-limit", "notebook output kept")
    receive_bytes: int = _size_limit(GIB, "--receive-limit",
                                     "all the kernel may send to the grader, outputs included")
    tmpfs_bytes: int = _size_limit(512 * MIB, "--scratch",
                                   "size of the kernel's writable home and /tmp (each)")
    open_files: int = _limit(512)  # not an option: a guard, not a policy

    @property
    def shm_bytes(self) -> int:
        """Size of the kernel's /dev/shm."""
        return min(SHM_BYTES, self.tmpfs_bytes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def limit_fields() -> list[tuple[dataclasses.Field, Option]]:
    """The fields of :class:`Limits` that are command-line options, in declaration order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(Limits)
            if "option" in f.metadata]


def limit_options(parser: argparse.ArgumentParser) -> None:
    """Add one option per limit to ``parser`` (destination: the field's name)."""
    group = parser.add_argument_group("limits per notebook")
    for f, opt in limit_fields():

        def parse(text, _opt=opt):
            try:
                return _opt.parse(text)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None

        parse.__name__ = f.name.replace("_", " ")
        group.add_argument(opt.flag, dest=f.name, type=parse, default=f.default,
                           help=f"{opt.help} (default {opt.show(f.default)})")


def limits_from(namespace: Any) -> Limits:
    """The :class:`Limits` an argparse namespace (from :func:`limit_options`) asks for."""
    return Limits(**{f.name: getattr(namespace, f.name) for f, _ in limit_fields()})


def defaults_line() -> str:
    """The default limits as flags, e.g. ``--cell-timeout 120 --memory 2G ...`` (the README
    shows this line; a test keeps them equal)."""
    return " ".join(f"{opt.flag} {opt.show(f.default)}" for f, opt in limit_fields())
