"""Every file operation of the grader: reading paths a submission may have shaped (handed-in
folders, the kernel's socket folder), which follows no symbolic link, never blocks on a FIFO or
device, reads a bounded number of bytes and never raises for what it finds; and writing the
grader's own files atomically.

* :func:`read_regular` reads a regular file of at most ``limit`` bytes, or raises
  :class:`UnsafeFile` saying why not (a link, a FIFO, too large, unreadable).
* :func:`tail` and :func:`head` return the end and the start of a regular file ("" for
  anything else).
* :func:`usage` measures a folder (bytes on disk and entries), stopping early at a bound.
* :func:`remove_tree` removes a folder of any depth and shape and reports what it could not
  remove instead of raising.
* :func:`atomic_write` writes a file by a temporary file in the same folder and a rename, so a
  reader (or a rerun after ``kill -9``) sees the old content or the new, never a part;
  :func:`copy_regular` copies a regular file (no link followed, bounded) that way, and
  :func:`link_regular` makes a second name for one (a hard link, so it is stored once).
  :func:`output_mode` is the mode of files written for people (grades, reports, feedback,
  exports): readable by the owner's group, never by others.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
import tempfile

_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR = _OPEN | os.O_DIRECTORY
FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
_FS_IMMUTABLE_FL, _FS_APPEND_FL = 0x10, 0x20
MAX_REMOVALS = 10_000_000


class UnsafeFile(OSError):
    """A path that is not a regular file of acceptable size; ``str()`` says why."""


def _open_regular(path: str) -> tuple[int, os.stat_result]:
    try:
        fd = os.open(path, _OPEN)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile("it is a symbolic link") from None
        raise UnsafeFile(exc.strerror or str(exc)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafeFile("it is not a regular file")
    return fd, st


def read_regular(path: str, limit: int) -> bytes:
    """The content of the regular file ``path`` if it holds at most ``limit`` bytes."""
    fd, st = _open_regular(path)
    try:
        if st.st_size > limit:
            raise UnsafeFile(f"it is too large ({st.st_size} bytes, at most {limit})")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UnsafeFile(f"it is too large (more than {limit} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        if isinstance(exc, UnsafeFile):
            raise
        raise UnsafeFile(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def tail(path: str, n: int) -> str:
    """The last ``n`` bytes of the regular file ``path`` as text ("" for anything else)."""
    return _slice(path, n, from_end=True)


def head(path: str, n: int) -> str:
    """The first ``n`` bytes of the regular file ``path`` as text ("" for anything else)."""
    return _slice(path, n, from_end=False)


def _slice(path: str, n: int, from_end: bool) -> str:
    try:
        fd, st = _open_regular(path)
    except OSError:
        return ""
    try:
        offset = max(0, st.st_size - n) if from_end else 0
        return os.pread(fd, n, offset).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    finally:
        os.close(fd)


def usage(path: str, max_entries: int, max_depth: int = 32) -> tuple[int, int]:
    """(bytes on disk, entries) below ``path``; an unreadable or too deep folder counts as
    ``max_entries + 1`` entries, and the scan stops once more than ``max_entries`` are seen."""
    total, entries = 0, 0
    try:
        stack = [(os.open(path, _DIR), 0)]
    except OSError:
        return 0, 0
    try:
        while stack and entries <= max_entries:
            fd, depth = stack.pop()
            try:
                with os.scandir(fd) as it:
                    for entry in it:
                        entries += 1
                        st = entry.stat(follow_symlinks=False)
                        total += st.st_blocks * 512
                        if stat.S_ISDIR(st.st_mode):
                            if depth >= max_depth:
                                entries = max_entries + 1
                            else:
                                stack.append((os.open(entry.name, _DIR, dir_fd=fd), depth + 1))
                        if entries > max_entries:
                            break
            except OSError:
                entries = max_entries + 1
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return total, entries


def _clear_flags(name: str | None, dir_fd: int) -> None:
    """Drop immutable/append-only flags and give the owner full access (best effort)."""
    with contextlib.suppress(OSError):
        fd = dir_fd if name is None else os.open(name, _OPEN, dir_fd=dir_fd)
        try:
            flags = struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 4))[0]
            if flags & (_FS_IMMUTABLE_FL | _FS_APPEND_FL):
                fcntl.ioctl(fd, FS_IOC_SETFLAGS,
                            struct.pack("i", flags & ~(_FS_IMMUTABLE_FL | _FS_APPEND_FL)))
        except OSError:
            pass
        finally:
            if fd != dir_fd:
                os.close(fd)
    with contextlib.suppress(OSError):
        if name is None:
            os.fchmod(dir_fd, 0o700)
        elif stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            os.chmod(name, 0o700, dir_fd=dir_fd)


def _retry(op, name: str, dir_fd: int):
    """``op()``; on a permission error clear what blocks it and try once more."""
    try:
        return op()
    except PermissionError:
        _clear_flags(None, dir_fd)
        _clear_flags(name, dir_fd)
        return op()


def _empty_into(top: int, name: str, counter: list[int]) -> None:
    """Remove the files of folder ``name`` (in ``top``) and move its folders up into ``top``,
    so no depth of nesting needs more than two open folders or a long path."""
    sub = _retry(lambda: os.open(name, _DIR, dir_fd=top), name, top)
    try:
        with os.scandir(sub) as it:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for child, is_dir in children:
            if not is_dir:
                _retry(lambda c=child: os.unlink(c, dir_fd=sub), child, sub)
                continue
            while True:
                counter[0] += 1
                try:
                    _retry(lambda c=child: os.rename(c, f".ag-rm-{counter[0]}", src_dir_fd=sub,
                                                     dst_dir_fd=top), child, sub)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR,
                                         errno.EISDIR):
                        raise
    finally:
        os.close(sub)


def remove_tree(path: str) -> str:
    """Remove ``path`` and all below it; "" when done, else what is left and why. Never
    raises; follows no link; copes with any depth, with folders without permissions and with
    immutable or append-only files (cleared where the grader may, i.e. as root)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    parent, base = os.path.split(os.path.abspath(path))
    try:
        pfd = os.open(parent, _DIR)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    try:
        if not stat.S_ISDIR(st.st_mode):
            _retry(lambda: os.unlink(base, dir_fd=pfd), base, pfd)
            return ""
        top = _retry(lambda: os.open(base, _DIR, dir_fd=pfd), base, pfd)
        counter, done = [0], 0
        try:
            while done < MAX_REMOVALS:
                with os.scandir(top) as it:
                    entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
                if not entries:
                    break
                for name, is_dir in entries:
                    done += 1
                    if is_dir:
                        _empty_into(top, name, counter)
                        _retry(lambda n=name: os.rmdir(n, dir_fd=top), name, top)
                    else:
                        _retry(lambda n=name: os.unlink(n, dir_fd=top), name, top)
        finally:
            os.close(top)
        _retry(lambda: os.rmdir(base, dir_fd=pfd), base, pfd)
        return ""
    except OSError as exc:
        return f"{path} could not be removed: {exc.strerror or exc}"
    finally:
        os.close(pfd)


def output_mode() -> int:
    """The mode of files written for people (grades.csv, reports, feedback pages, LMS exports):
    0640 (the instructor's group reads them, other users do not), narrowed further by a
    stricter umask."""
    try:
        with open("/proc/self/status") as f:
            umask = next((int(line.split()[1], 8) for line in f if line.startswith("Umask:")),
                         0o022)
    except (OSError, ValueError, IndexError):
        umask = 0o022
    return 0o640 & ~umask


def atomic_write(path: str, data: bytes | str, mode: int | None = None) -> None:
    """Write ``path`` by a temporary file in the same folder and a rename (the temporary file
    is removed again when anything fails); ``mode`` sets the file's permissions (default: as
    :func:`tempfile.mkstemp` creates it, 0600)."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def copy_regular(src: str, dest: str, limit: int = 2**31) -> None:
    """Copy the regular file ``src`` (no link followed, at most ``limit`` bytes, else
    :class:`UnsafeFile`) to ``dest`` atomically."""
    atomic_write(dest, read_regular(src, limit))


def link_regular(src: str, dest: str, limit: int = 2**31) -> None:
    """Make ``dest`` name the same regular file as ``src`` (no link followed), atomically: a
    hard link where the file system allows, else a copy (:func:`copy_regular`)."""
    st = os.lstat(src)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile("it is not a regular file")
    folder = os.path.dirname(dest) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".tmp-link-{os.getpid()}-{os.path.basename(dest)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        os.link(src, tmp, follow_symlinks=False)
    except OSError:
        copy_regular(src, dest, limit)
        return
    try:
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
