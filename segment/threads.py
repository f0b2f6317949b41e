"""Run a compiled kernel over parts of a range on several threads.

The kernels are plain serial Numba functions compiled with ``nogil=True``;
this module splits their work into contiguous parts and runs one part per
thread. Serial kernels compile several times faster than Numba's
``parallel=True`` ones, which matters on first use, when every kernel is
compiled. The parts never depend on the number of threads where the result
could (the callers keep per-chunk partial sums), so results are identical
whatever the thread count.

The thread count is ``NUMBA_NUM_THREADS`` (by default the CPUs this process
may use), lowered within :func:`limited`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

_limit: contextvars.ContextVar[int | None] = contextvars.ContextVar("segment_threads", default=None)
_pool: ThreadPoolExecutor | None = None


def available() -> int:
    """Threads a kernel may use here: ``NUMBA_NUM_THREADS`` if set, else the CPUs of this process."""
    configured = os.environ.get("NUMBA_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def count() -> int:
    """Threads the kernels run on now: :func:`available`, or less within :func:`limited`."""
    limit = _limit.get()
    return available() if limit is None else max(1, min(limit, available()))


@contextlib.contextmanager
def limited(n_threads: int | None) -> Iterator[None]:
    """Run the enclosed kernels on at most ``n_threads`` threads (None: no limit).

    Examples
    --------
    >>> from segment import threads
    >>> with threads.limited(1):
    ...     threads.count()
    1
    """
    token = _limit.set(n_threads)
    try:
        yield
    finally:
        _limit.reset(token)


def run_parts(kernel: Callable[..., object], n_items: int, *args, min_part: int = 1) -> list:
    """Call ``kernel(*args, start, stop)`` over contiguous parts of ``range(n_items)``, one thread each.

    Parameters
    ----------
    kernel : callable
        A function releasing the GIL (a ``nogil`` Numba kernel) that does the
        work of items ``start`` to ``stop - 1``.
    n_items : int
        Number of items.
    *args
        Passed to every call before ``start`` and ``stop``.
    min_part : int
        Fewest items worth a thread of their own.

    Returns
    -------
    list
        The calls' results, in the order of the parts.

    Examples
    --------
    >>> run_parts(lambda start, stop: stop - start, 10)[0] <= 10
    True
    """
    n_parts = max(1, min(count(), n_items // max(min_part, 1)))
    if n_parts == 1:
        return [kernel(*args, 0, n_items)]
    bounds = [n_items * i // n_parts for i in range(n_parts + 1)]
    futures = [_executor().submit(kernel, *args, bounds[i], bounds[i + 1]) for i in range(1, n_parts)]
    first = kernel(*args, bounds[0], bounds[1])  # this thread does a part too
    return [first] + [future.result() for future in futures]


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=max(available() - 1, 1), thread_name_prefix="segment-kernel", initializer=leave_signals_to_main
        )
    return _pool


def leave_signals_to_main() -> None:
    """Block Ctrl-C and SIGTERM in this (helper) thread, so that the main thread gets them.

    A signal taken by another thread sets Python's flag but leaves the main
    thread blocked where it is (reading a pipe, say), so its handler, which
    stops the run, would not run until that call returned.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
