"""The output folder of a batch: one run at a time, and a check that it is still there and writable.

:class:`OutputLock` is an exclusive ``flock`` on ``OUTDIR/.segment-batch.lock``:
a second run on the same folder is refused with one line naming the run
that holds it. The kernel releases the lock when its process ends, however
it ends (SIGKILL, a crash, a lost machine's NFS lease), so no crash leaves a
folder locked; the file itself is removed on release and means nothing
without the lock. :meth:`OutputLock.problem` tells whether the folder was
removed, replaced or made read-only during the run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from segment.batch.errors import BatchError

LOCK_NAME = ".segment-batch.lock"


class OutputLock:
    """Exclusive use of an output folder by this process (see the module's notes).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with OutputLock(folder) as lock:
    ...         lock.problem() is None
    True
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BatchError(f"{root}: cannot create output folder ({exc.strerror or exc})") from None
        self._identity = _identity(self.root)
        self._fd = self._acquire(self.root / LOCK_NAME)

    def _acquire(self, path: Path) -> int:
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise BatchError(f"{self.root}: cannot write to the output folder ({exc.strerror or exc})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise BatchError(
                    f"{self.root}: another segment batch (pid {holder}) is writing to this folder; "
                    "wait for it to finish, or choose another output folder"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except OSError:
                same = False
            if not same:  # the run before removed the file as we opened it: lock the new one
                os.close(fd)
                continue
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError as exc:
                os.close(fd)
                raise BatchError(f"{self.root}: cannot write to the output folder ({exc.strerror or exc})") from None
            return fd

    def problem(self) -> str | None:
        """Why the folder can no longer take outputs (removed, replaced, read-only, full), or None."""
        if _identity(self.root) != self._identity:
            return "the output folder was removed or replaced during the run"
        probe = self.root / f".segment-probe.{os.getpid()}.tmp"
        try:
            probe.write_bytes(b"probe")
            probe.unlink()
        except OSError as exc:
            return f"the output folder can no longer be written ({exc.strerror or exc})"
        return None

    def release(self) -> None:
        """Give the folder up: remove the lock file (if still ours), then unlock."""
        if self._fd < 0:
            return
        try:
            if os.fstat(self._fd).st_ino == os.stat(self.root / LOCK_NAME).st_ino:
                os.unlink(self.root / LOCK_NAME)
        except OSError:
            pass
        os.close(self._fd)  # closing releases the flock
        self._fd = -1

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if os.path.isdir(folder) else None
