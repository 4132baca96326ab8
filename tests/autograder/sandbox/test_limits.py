"""Limits are declared once: each field yields its flag, default, parser and README line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from autograder.sandbox.limits import (
    GIB,
    MIB,
    Limits,
    defaults_line,
    human_size,
    limit_fields,
    limit_options,
    limits_from,
    parse_size,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("text, n", [("2G", 2 * GIB), ("512M", 512 * MIB), ("64k", 64 * 1024),
                                     ("1.5g", int(1.5 * GIB)), ("300", 300), (" 8 MiB ", 8 * MIB)])
def test_sizes_are_read_in_binary_units(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "2X", "-1G", "G", "1e9"])
def test_bad_sizes_are_refused_with_the_text(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_human_size():
    assert human_size(2 * GIB) == "2 GiB" and human_size(300) == "300 bytes"


def test_every_option_round_trips_through_the_parser():
    """The parser made from the fields gives back the defaults, and a flag sets its field."""
    p = argparse.ArgumentParser()
    limit_options(p)
    assert limits_from(p.parse_args([])) == Limits()
    changed = limits_from(p.parse_args(["--memory", "1G", "--cell-timeout", "5"]))
    assert changed.memory == GIB and changed.cell_timeout == 5.0


@pytest.mark.parametrize("argv", [["--memory", "lots"], ["--cpus", "-1"], ["--processes", "0"],
                                  ["--cell-timeout", "0"]])
def test_bad_limits_are_refused_by_the_parser(argv, capsys):
    """A bad value stops the command with argparse's message naming the option."""
    p = argparse.ArgumentParser()
    limit_options(p)
    with pytest.raises(SystemExit):
        p.parse_args(argv)
    assert argv[0] in capsys.readouterr().err


def test_flags_are_unique_and_documented():
    flags = [opt.flag for _, opt in limit_fields()]
    assert len(flags) == len(set(flags)) and all(opt.help for _, opt in limit_fields())


def test_readme_states_the_defaults():
    """The README's line of default limits is the one the fields give."""
    assert defaults_line() in (ROOT / "README.md").read_text()
