"""File helpers every writer uses: atomic replacement and inter-process locks.

POSIX only (the package declares it): keys rely on file modes, `O_NOFOLLOW`,
`flock(2)` and `link(2)`, which have no faithful Windows equivalent.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temp_prefix(path: Path) -> str:
    """The hidden prefix of `path`'s temp files: `.<name>.` + random + `.tmp`, so a temp
    file never ends in the final name's suffix (a keystore never reads one as a key)."""
    return f".{path.name}."


def read_regular(fd: int, size: int, limit: int | None = None) -> bytes:
    """The bytes of the regular file open at `fd` (`size`: its size from fstat), up
    to `limit`: in one read(2) when the file is as fstat said, since a read of a
    regular file returns less than asked only at its end (a run reads thousands of
    small files, and each system call counts)."""
    chunks: list[bytes] = []
    total = 0
    while limit is None or total < limit:
        want = max(size + 1 - total, 4096)  # a buffer of that size is allocated
        if limit is not None:
            want = min(want, limit - total)
        chunk = os.read(fd, want)
        chunks.append(chunk)
        total += len(chunk)
        if len(chunk) < want:
            break
    return b"".join(chunks)


def fsync_dir(path: str | Path) -> None:
    """Make a new or renamed directory entry durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: str | Path, data: bytes | str, mode: int = 0o644, *, overwrite: bool = True
) -> bool:
    """Write `data` to `path` so a reader (or a crash) sees the old file or the new one,
    never part of one: a temp file in the same folder, fsync, rename (or link), fsync the
    folder.  `mode` is set exactly, whatever the umask.  With `overwrite=False` an existing
    `path` is kept and False returned (link(2) decides, so two writers cannot both win).
    OSError propagates; the temp file never outlives the call."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.parent / f"{temp_prefix(path)}{secrets.token_hex(8)}{TMP_SUFFIX}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, mode)
        try:
            os.fchmod(fd, mode)  # the open() mode is filtered by the umask
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # contents durable before the name points at them
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        elif not _link_new(tmp, path):
            return False
        fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def remove_stray_temps(path: Path) -> None:
    """Remove the temp files `atomic_write` left for `path` when a writer was killed
    mid-write.  Call only under the lock every writer of `path` holds: then none of
    them is mid-write, and any temp file of `path` is a leftover."""
    prefix = temp_prefix(path)
    for name in os.listdir(path.parent):
        if name.startswith(prefix) and name.endswith(TMP_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path.parent / name)


def _link_new(tmp: Path, path: Path) -> bool:
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        # File systems without hard links: rename still switches the name atomically;
        # callers hold `locked()`, so checking first is the no-overwrite guarantee there.
        if os.path.lexists(path):
            return False
        os.rename(tmp, path)
    return True


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def locked(path: str | Path, mode: int = 0o600) -> Iterator[None]:
    """Hold an exclusive lock named by `path` against other threads and processes.

    `path` is a lock file (created with `mode`) or an existing directory; lock a
    directory or a side file, never a file that is replaced by rename (the lock would
    guard a name nobody reads any more).  flock(2) is released when the descriptor
    closes, so a killed process never leaves it held."""
    key = os.path.abspath(path)
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.Lock())
    with thread_lock:
        is_dir = os.path.isdir(path)
        if is_dir:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            if not is_dir:
                os.fchmod(fd, mode)  # a umask like 0277 must not leave it unopenable
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
