"""Tests for autograder.safefs: reading and removing what a submission may have shaped."""

import fcntl
import os
import struct
import subprocess

import pytest

from autograder import files as safefs


def test_read_regular_reads_a_small_file(tmp_path):
    """A regular file within the limit is read whole."""
    (tmp_path / "f").write_bytes(b"abc")
    assert safefs.read_regular(str(tmp_path / "f"), 3) == b"abc"


@pytest.mark.parametrize("kind", ["symlink", "fifo", "dir", "large", "missing"])
def test_read_regular_refuses_without_blocking(tmp_path, kind):
    """Links, FIFOs, folders, oversized and missing files are refused at once, with a reason
    (a FIFO would block a plain open() forever)."""
    path = tmp_path / "f"
    secret = tmp_path / "secret"
    secret.write_text("secret")
    if kind == "symlink":
        path.symlink_to(secret)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    elif kind == "large":
        path.write_bytes(b"x" * 101)
    with pytest.raises(safefs.UnsafeFile) as err:
        safefs.read_regular(str(path), 100)
    assert str(err.value)
    if kind == "symlink":
        assert "symbolic link" in str(err.value)


def test_tail_of_a_fifo_or_link_is_empty(tmp_path):
    """tail() returns "" for a FIFO or a link instead of blocking or following it."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("/etc/passwd")
    (tmp_path / "log").write_text("a" * 1000 + "end")
    assert safefs.tail(str(tmp_path / "fifo"), 10) == ""
    assert safefs.tail(str(tmp_path / "link"), 10) == ""
    assert safefs.tail(str(tmp_path / "log"), 3) == "end"


def _deep(root, depth):
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        new = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = new
    with open(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "w") as f:
        f.write("bottom")
    os.close(fd)


def test_remove_tree_of_any_shape(tmp_path):
    """A tree deeper than PATH_MAX and Python's recursion limit, with FIFOs, links out of it,
    folders without permissions and a read-only folder, is removed; the link targets stay."""
    top = tmp_path / "top"
    top.mkdir()
    _deep(str(top), 3000)
    outside = tmp_path / "outside"
    outside.write_text("keep me")
    (top / "link").symlink_to(outside)
    (top / "dirlink").symlink_to(tmp_path)
    os.mkfifo(top / "fifo")
    for mode in (0, 0o500):
        d = top / f"mode{mode}"
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "file").write_text("x")
        d.chmod(mode)
    assert safefs.remove_tree(str(top)) == ""
    assert not top.exists() and outside.read_text() == "keep me"


def test_remove_tree_clears_immutable_files(tmp_path):
    """Immutable and append-only files (set by a root kernel without a sandbox) are removed."""
    top = tmp_path / "top"
    top.mkdir()
    for name, flag in (("immutable", 0x10), ("append", 0x20)):
        (top / name).write_text("x")
        fd = os.open(top / name, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, safefs.FS_IOC_SETFLAGS, struct.pack("i", flag))
        except OSError:
            pytest.skip("this file system or user cannot set inode flags")
        finally:
            os.close(fd)
    assert safefs.remove_tree(str(top)) == ""
    assert not top.exists()


def test_remove_tree_reports_instead_of_raising(tmp_path):
    """What cannot be removed (here a mount point) is reported, never raised."""
    top = tmp_path / "top"
    (top / "mnt").mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(top / "mnt")], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount here")
    try:
        left = safefs.remove_tree(str(top))
        assert "could not be removed" in left
    finally:
        subprocess.run(["umount", "-l", str(top / "mnt")], capture_output=True)
    assert safefs.remove_tree(str(top)) == ""
    assert safefs.remove_tree(str(tmp_path / "never-existed")) == ""


def test_usage_stops_early(tmp_path):
    """usage() counts bytes and entries and gives up beyond the bound."""
    for i in range(20):
        (tmp_path / f"f{i}").write_bytes(b"x" * 5000)
    size, entries = safefs.usage(str(tmp_path), 100)
    assert entries == 20 and size >= 20 * 4096
    assert safefs.usage(str(tmp_path), 5)[1] == 6
