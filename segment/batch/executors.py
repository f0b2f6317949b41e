"""Executors: run the tasks of a batch in this process, in local worker processes, or on Dask.

:func:`run_tasks` is the one entry point; :func:`choose_mode` says which of
the three runs a batch. Every executor runs the same
:func:`segment.batch.task.process_image`, hands each record back in this
process as it finishes, and turns Ctrl-C and SIGTERM into
:class:`~segment.batch.signals.Interrupted` once the images under way have
been abandoned (their temporary files removed). A time limit per image
needs processes that can be killed: the local pool
(:mod:`segment.batch.pool`), or on Dask a child process per image
(:mod:`segment.batch.isolate`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from segment.batch.errors import BatchError
from segment.batch.pool import run_pool
from segment.batch.signals import stop_signals
from segment.batch.task import ImageRecord, ImageTask, process_image, record_for

EXECUTORS = ("local", "dask")
MODES = ("serial", "processes", "dask")
# Called in this process with (index of the task, its record) as each task finishes.
OnRecord = Callable[[int, ImageRecord], None]


def choose_mode(executor: str, workers: int, n_tasks: int, timeout: float | None = None) -> str:
    """How a batch runs: "dask", or for the local executor "serial" (one worker or one task) or "processes".

    A time limit needs a process that can be killed, so it always means "processes" locally.

    Examples
    --------
    >>> choose_mode("local", 4, 10), choose_mode("local", 4, 1), choose_mode("dask", 1, 10)
    ('processes', 'serial', 'dask')
    >>> choose_mode("local", 1, 1, timeout=60)
    'processes'
    """
    if executor == "dask":
        return "dask"
    if timeout is not None:
        return "processes"
    return "serial" if workers == 1 or n_tasks <= 1 else "processes"


def run_tasks(
    tasks: list[ImageTask],
    mode: str,
    on_record: OnRecord,
    *,
    workers: int = 1,
    threads: int = 1,
    scheduler: str | None = None,
    timeout: float | None = None,
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
    timeout : float, optional
        Seconds an image may take; one that takes longer is stopped and
        reported failed (``"timed out after 60 s"``). Not in "serial" mode.

    Raises
    ------
    Interrupted
        On Ctrl-C or SIGTERM (a ``KeyboardInterrupt`` that knows the
        signal), once the tasks under way have been abandoned; tasks not yet
        reported have no record.
    BatchError
        Dask is not installed, or its scheduler cannot be reached.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if mode == "serial" and timeout is not None:
        raise ValueError("a time limit needs worker processes: mode 'processes' or 'dask'")
    if not tasks:
        return
    with stop_signals() as request:
        if mode == "dask":
            _run_dask(tasks, scheduler, workers, on_record, timeout)
        elif mode == "serial":
            for index, task in enumerate(tasks):
                record = process_image(task)
                request.check()  # a stop during a compiled kernel may have come out as a failure
                on_record(index, record)
        else:
            run_pool(tasks, workers, threads, on_record, timeout)


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int):
    """A Dask client: of the scheduler at ``scheduler``, or of a local cluster of ``workers`` processes.

    The local cluster (one thread per worker, listening on 127.0.0.1 only)
    and the client are closed on exit.

    Raises
    ------
    BatchError
        Dask is not installed, or the scheduler cannot be reached.
    """
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
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _run_dask(
    tasks: list[ImageTask], scheduler: str | None, workers: int, on_record: OnRecord, timeout: float | None
) -> None:
    import distributed

    with dask_client(scheduler, workers) as client:
        if timeout is None:
            futures = {
                client.submit(process_image, task, pure=False, key=f"segment-{task.digest}-{i}"): i
                for i, task in enumerate(tasks)
            }
        else:
            from segment.batch.isolate import run_isolated

            futures = {
                client.submit(run_isolated, task, timeout, pure=False, key=f"segment-{task.digest}-{i}"): i
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
            try:
                client.cancel(list(futures))
            except Exception:  # the cluster may be going down with us (SIGTERM to the whole group)
                pass
            raise
