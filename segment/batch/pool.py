"""Local worker processes that run one image at a time, each of which can be stopped and replaced.

The parent hands each worker one task and waits for its record, so it
always knows which image a worker runs and since when. A worker that dies
(killed, out of memory) costs only its own image, which gets a second try
in a fresh worker; a worker that runs past the time limit is killed and its
image reported failed (a fresh worker's first image gets its full limit
once the worker has loaded its compiled kernels); a stop request (Ctrl-C,
SIGTERM) kills every worker. The temporary files of a killed worker are
removed at once.

Workers are spawned processes: they size their thread pools to their share
of the cores before NumPy, OpenCV or Numba load.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait

from segment.batch.errors import BatchError
from segment.batch.resume import remove_temporary_files
from segment.batch.signals import ignore_stop_signals_in_worker, signals_blocked
from segment.batch.task import ImageRecord, ImageTask, output_folders, process_image, record_for, warm_up

_READY = "ready"
_WARM = "warm"
WORKER_DIED = "worker process died (killed, or out of memory: try a lower --max-memory)"


def timed_out(seconds: float) -> str:
    """The error of an image stopped by the time limit.

    Examples
    --------
    >>> timed_out(60.0), timed_out(2.5)
    ('timed out after 60 s', 'timed out after 2.5 s')
    """
    return f"timed out after {seconds:g} s"


def run_pool(
    tasks: list[ImageTask],
    workers: int,
    threads: int,
    on_record: Callable[[int, ImageRecord], None],
    timeout: float | None = None,
) -> None:
    """Run ``tasks`` in up to ``workers`` processes of ``threads`` threads; ``on_record(index, record)`` as each ends.

    An image whose worker dies is tried once more in a new worker, then
    reported failed; an image that runs longer than ``timeout`` seconds is
    stopped and reported failed. Any exception in this process (a stop
    request, an error raised by ``on_record``) kills the workers before it
    propagates; tasks not reported by then have no record.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = deque(range(len(tasks)))
    attempts: dict[int, int] = {}
    starting: list[_Worker] = []  # importing: the time limit starts with the task, not with the imports
    idle: list[_Worker] = []
    busy: dict[_Worker, int] = {}
    try:
        while queue or busy:
            while queue and idle:
                worker, index = idle.pop(), queue.popleft()
                worker.start(tasks[index])
                busy[worker] = index
            while len(starting) + len(idle) + len(busy) < min(workers, len(queue) + len(busy)):
                starting.append(_Worker(context, threads))
            watched = starting + list(busy)
            ready = wait([w.connection for w in watched] + [w.process.sentinel for w in watched], _time_left(busy, timeout))
            for worker in list(starting):
                if worker.connection in ready or worker.process.sentinel in ready:
                    starting.remove(worker)
                    if worker.result() == _READY:
                        idle.append(worker)
                    else:
                        worker.close()
                        raise BatchError("a worker process could not start (see the messages above)")
            for worker, index in list(busy.items()):
                if worker.connection in ready or worker.process.sentinel in ready:
                    record = worker.result()
                    if record == _WARM:  # its first image's time starts now
                        worker.started = time.monotonic()
                        continue
                    if record is None:  # the worker died
                        del busy[worker]
                        _stop(worker, tasks[index])
                        attempts[index] = attempts.get(index, 0) + 1
                        if attempts[index] < 2:
                            queue.append(index)
                            continue
                        record = record_for(tasks[index].item, tasks[index].root, "failed", error=WORKER_DIED)
                    else:
                        del busy[worker]
                        idle.append(worker)
                    on_record(index, record)
                elif timeout is not None and time.monotonic() - worker.started > timeout:
                    del busy[worker]
                    _stop(worker, tasks[index])
                    task = tasks[index]
                    on_record(index, record_for(task.item, task.root, "failed", seconds=timeout, error=timed_out(timeout)))
    finally:
        for worker, index in busy.items():
            _stop(worker, tasks[index])
        for worker in starting + idle:
            worker.close()


def _time_left(busy: dict[_Worker, int], timeout: float | None) -> float | None:
    if timeout is None or not busy:
        return None
    deadline = min(worker.started for worker in busy) + timeout
    return max(0.0, deadline - time.monotonic()) + 0.01


def _stop(worker: _Worker, task: ImageTask) -> None:
    """Kill a worker, wait for it, and remove the temporary files it left."""
    worker.process.kill()
    worker.process.join()
    worker.connection.close()
    remove_temporary_files(output_folders(task.item, task.root), worker.process.pid)


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self, context, threads: int) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, threads, os.getpid()), daemon=True)
        with signals_blocked():  # see ignore_stop_signals_in_worker
            self.process.start()
        child.close()
        self.started = 0.0

    def start(self, task: ImageTask) -> None:
        self.started = time.monotonic()
        self.connection.send(task)

    def result(self) -> ImageRecord | str | None:
        """What the worker sent (a record, or that it is ready), or None if it died."""
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            return None

    def close(self) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


def exit_with_parent(parent: int) -> None:
    """Kill this process as soon as its parent ``parent`` is gone (SIGKILLed, crashed): a worker outlives no run."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="segment-parent-watch", daemon=True).start()


def _serve(connection, threads: int, parent: int) -> None:
    """A worker: thread pools sized to its share of the cores, then one task after another until told to stop."""
    ignore_stop_signals_in_worker()
    for variable in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)

    exit_with_parent(parent)
    import cv2

    cv2.setNumThreads(threads)
    import segment.pipeline  # noqa: F401  (the imports are not part of any image's time)

    connection.send(_READY)
    warm = False
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        if not warm:  # the time limit restarts once this is done: see warm_up
            warm_up(task)
            warm = True
            connection.send(_WARM)
        connection.send(process_image(task))
