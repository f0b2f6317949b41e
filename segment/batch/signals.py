"""Stop requests: Ctrl-C (SIGINT) and SIGTERM (timeout, systemd, Slurm, Kubernetes) stop a run cleanly.

:func:`stop_signals` turns both signals into :class:`Interrupted` (a
``KeyboardInterrupt`` that knows its signal) in the main thread and
remembers the request, because an exception raised while a compiled (Numba)
kernel runs comes out as another exception (``SystemError``), which a task
would record as an ordinary failure. :func:`signals_blocked` keeps both
signals pending while worker processes start, so that a worker never sees a
stop request before it has set itself up to ignore it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; ``signum`` is the signal, ``128 + signum`` the shell's exit code."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def signal_of(exc: KeyboardInterrupt) -> int:
    """The signal behind ``exc``: its own for :class:`Interrupted`, SIGINT for a plain ``KeyboardInterrupt``."""
    return getattr(exc, "signum", int(signal.SIGINT))


class StopRequest:
    """A signal handler that remembers the first stop request and raises :class:`Interrupted`.

    Later signals are only remembered, so that the clean-up after the first
    one (stopping workers, removing temporary files) is not cut short.
    """

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame) -> None:
        if self.signum is None:
            self.signum = int(signum)
            raise Interrupted(signum)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop was requested."""
        if self.signum is not None:
            raise Interrupted(self.signum)


@contextlib.contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread.

    A signal that is ignored (a job started with ``nohup`` or in the
    background) stays ignored; outside the main thread nothing changes.

    Examples
    --------
    >>> with stop_signals() as request:
    ...     pass
    >>> request.signum is None
    True
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {}
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, request)
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold SIGINT and SIGTERM pending in this thread; a process started meanwhile inherits the block."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_stop_signals_in_worker() -> None:
    """In a worker process: ignore Ctrl-C (the parent stops the run), die at once on SIGTERM, then unblock both."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
