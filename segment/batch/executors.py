"""Executors: run the tasks of a batch in this process, in local worker processes, or on Dask.

:func:`run_tasks` is the one entry point; :func:`choose_mode` says which of
the three runs a batch. Every executor runs the same
:func:`segment.batch.task.process_image`, hands each record back in this
process as it finishes, and turns Ctrl-C into ``KeyboardInterrupt`` once
the images under way have stopped (their temporary files removed).

Local workers are spawned processes: they set their thread pools to their
share of the cores before NumPy, OpenCV or Numba load, which is why the
modules of :mod:`segment.batch` import only the standard library at the top.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

from segment.batch.errors import BatchError
from segment.batch.task import ImageRecord, ImageTask, process_image, record_for

EXECUTORS = ("local", "dask")
MODES = ("serial", "processes", "dask")
# Called in this process with (index of the task, its record) as each task finishes.
OnRecord = Callable[[int, ImageRecord], None]


def choose_mode(executor: str, workers: int, n_tasks: int) -> str:
    """How a batch runs: "dask", or for the local executor "serial" (one worker or one task) or "processes".

    Examples
    --------
    >>> choose_mode("local", 4, 10), choose_mode("local", 4, 1), choose_mode("dask", 1, 10)
    ('processes', 'serial', 'dask')
    """
    if executor == "dask":
        return "dask"
    return "serial" if workers == 1 or n_tasks <= 1 else "processes"


def run_tasks(
    tasks: list[ImageTask],
    mode: str,
    on_record: OnRecord,
    *,
    workers: int = 1,
    threads: int = 1,
    scheduler: str | None = None,
) -> None:
    """Process every task; call ``on_record(index, record)`` in this process as each one finishes.

    Parameters
    ----------
    tasks : list of ImageTask
    mode : {"serial", "processes", "dask"}
        In this process, in ``workers`` local processes of ``threads`` threads
        each, or on a Dask cluster (at ``scheduler``, or a local one of
        ``workers`` processes); see :func:`choose_mode`.
    on_record : callable
        Told the index of each task and its :class:`ImageRecord`.
    workers, threads : int
    scheduler : str, optional
        Address of a running Dask scheduler.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, once the tasks under way have stopped; tasks not yet
        reported have no record.
    BatchError
        Dask is not installed, or its scheduler cannot be reached.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if not tasks:
        return
    if mode == "dask":
        _run_dask(tasks, scheduler, workers, on_record)
    elif mode == "serial":
        _run_serial(tasks, on_record)
    else:
        _run_processes(tasks, workers, threads, on_record)


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Interrupt:
    """A SIGINT handler that remembers the request and raises KeyboardInterrupt.

    The request must be remembered: a KeyboardInterrupt raised while a
    compiled (Numba) kernel runs comes out as another exception (SystemError),
    which a task would record as an ordinary failure.
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        self.requested = True
        raise KeyboardInterrupt


_worker_interrupt: _Interrupt | None = None


def _init_worker(threads: int, parent: int, interruptible: bool) -> None:
    """Set up a local worker process: thread pools sized to its share of the cores.

    Ctrl-C is left to the parent (which cancels the queue), except while a
    task runs (see :func:`_pool_task`), and only when the parent itself
    listens to it. The worker exits if its parent dies.
    """
    global _worker_interrupt
    for variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_interrupt = _Interrupt() if interruptible else None

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="segment-parent-watch", daemon=True).start()
    import cv2

    cv2.setNumThreads(threads)


def _pool_task(task: ImageTask) -> ImageRecord:
    """:func:`segment.batch.task.process_image` in a pool worker: Ctrl-C stops this image (its temporary files are removed)."""
    interrupt = _worker_interrupt
    if interrupt is None:
        return process_image(task)
    if interrupt.requested:  # Ctrl-C came during an earlier task: the parent is stopping
        return record_for(task.item, task.root, "interrupted")
    signal.signal(signal.SIGINT, interrupt)
    try:
        record = process_image(task)
    except KeyboardInterrupt:
        record = None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if record is None or interrupt.requested:
        return record_for(task.item, task.root, "interrupted")
    return record


def _listens_to_ctrl_c() -> bool:
    return threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) not in (
        signal.SIG_IGN,
        None,
    )


def _run_serial(tasks: list[ImageTask], on_record: OnRecord) -> None:
    interrupt = _Interrupt() if _listens_to_ctrl_c() else None
    previous = signal.signal(signal.SIGINT, interrupt) if interrupt is not None else None
    try:
        for index, task in enumerate(tasks):
            record = process_image(task)
            if interrupt is not None and interrupt.requested:
                raise KeyboardInterrupt
            on_record(index, record)
    finally:
        if interrupt is not None:
            signal.signal(signal.SIGINT, previous)


def _run_processes(tasks: list[ImageTask], workers: int, threads: int, on_record: OnRecord) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    interruptible = _listens_to_ctrl_c()
    attempts: dict[int, int] = {}
    pending = list(range(len(tasks)))
    while pending:
        with ProcessPoolExecutor(
            max_workers=min(workers, len(pending)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(threads, os.getpid(), interruptible),
        ) as pool:
            futures = {pool.submit(_pool_task, tasks[i]): i for i in pending}
            pending = []
            try:
                for future in as_completed(futures):
                    index = futures[future]
                    try:
                        record = future.result()
                    except BrokenProcessPool:
                        # A worker died (killed, out of memory): the whole pool is gone. Give every
                        # unfinished image a second chance in a new pool; twice is a failure.
                        attempts[index] = attempts.get(index, 0) + 1
                        if attempts[index] < 2:
                            pending.append(index)
                            continue
                        record = record_for(
                            tasks[index].item, tasks[index].root, "failed",
                            error="worker process died (killed, or out of memory: try a lower --max-memory)",
                        )
                    on_record(index, record)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        pending.sort()


def _run_dask(
    tasks: list[ImageTask], scheduler: str | None, workers: int, on_record: OnRecord
) -> None:
    try:
        import distributed
    except ImportError:
        raise BatchError("the dask executor needs the optional extra: pip install 'segment[dask]'") from None
    import logging

    cluster = None
    try:
        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise BatchError(f"cannot connect to the Dask scheduler at {scheduler}: {exc}") from None
        else:
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                # Its HTTP server would otherwise take the fixed port 8787 on every interface.
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster)
        try:
            futures = {
                client.submit(process_image, task, pure=False, key=f"segment-{task.digest}-{i}"): i
                for i, task in enumerate(tasks)
            }
            try:
                for future in distributed.as_completed(futures):
                    index = futures[future]
                    try:
                        record = future.result()
                    except Exception as exc:  # the cluster lost the task (KilledWorker, ...)
                        record = record_for(
                            tasks[index].item, tasks[index].root, "failed",
                            error=f"Dask task failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                        )
                    on_record(index, record)
            except BaseException:
                client.cancel(list(futures))
                raise
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
