"""The kernel's writable scratch space as tmpfs mounts of the grader's, bounded in bytes and in
files, and the private mount namespace they live in.

bubblewrap's own ``--tmpfs`` takes a size but no bound on the number of files, so a kernel can
fill its scratch space with millions of empty folders: they cost no bytes of the tmpfs but
kernel memory, and freeing them when the kernel ends takes seconds. Where the grader is root it
therefore mounts the scratch space itself (:func:`scratch_mounts`: home, ``/tmp`` and
``/dev/shm``, each with ``size`` and ``nr_inodes``) in a mount namespace of its own
(:func:`private_namespace`, made once per worker process, so every mount vanishes with the
worker whatever happens), and binds them into the sandbox; it unmounts them when the kernel
is done (:func:`unmount`). Elsewhere (no root) the sandbox falls back to bubblewrap's tmpfs.
"""

from __future__ import annotations

import ctypes
import os

from .command import SANDBOX_HOME
from .limits import Limits

SCRATCH_INODES = 32_768   # files and folders in each scratch tmpfs
RUN_DIR_INODES = 1_024    # in the socket folder's tmpfs
_CLONE_NEWNS, _MS_REC, _MS_PRIVATE, _MNT_DETACH = 0x00020000, 16384, 1 << 18, 2
_PRIVATE = False
SCRATCH = {"home": SANDBOX_HOME, "tmp": "/tmp", "shm": "/dev/shm"}


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def private_namespace() -> bool:
    """Give this process a mount namespace of its own (root only); whether it has one."""
    global _PRIVATE
    if not _PRIVATE and os.geteuid() == 0:
        libc = _libc()
        if libc.unshare(_CLONE_NEWNS) == 0:
            _PRIVATE = libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) == 0
    return _PRIVATE


def mount_tmpfs(path: str, size: int, inodes: int, uid: int | None = None) -> bool:
    """Mount a tmpfs of ``size`` bytes and ``inodes`` files on ``path`` (owned by ``uid``,
    mode 0700), in this process's private mount namespace only; whether it was mounted."""
    if not _PRIVATE:
        return False
    options = f"size={size},nr_inodes={inodes},mode=0700"
    if uid is not None:
        options += f",uid={uid},gid={uid}"
    return _libc().mount(b"tmpfs", path.encode(), b"tmpfs", 0, options.encode()) == 0


def unmount(path: str) -> None:
    """Detach whatever is mounted on ``path`` (nothing happens when nothing is)."""
    if _PRIVATE:
        _libc().umount2(path.encode(), _MNT_DETACH)


def scratch_mounts(base: str, limits: Limits, uid: int | None = None) -> dict[str, str]:
    """Mount the kernel's scratch space under ``base`` (made here): {path in the sandbox: host
    path}, or {} when the grader cannot mount (then bubblewrap's tmpfs is used)."""
    mounted: dict[str, str] = {}
    for name, inside in SCRATCH.items():
        host = os.path.join(base, name)
        os.makedirs(host, exist_ok=True)
        size = limits.shm_bytes if name == "shm" else limits.tmpfs_bytes
        if not mount_tmpfs(host, size, SCRATCH_INODES, uid):
            for done in mounted.values():
                unmount(done)
            return {}
        mounted[inside] = host
    return mounted
