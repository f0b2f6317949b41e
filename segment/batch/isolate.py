"""One task in a child process with a time limit: how a Dask worker stops an image that takes too long.

A Dask worker runs tasks in threads, which cannot be stopped from outside;
with ``--timeout`` each image runs in a child process of the worker
(``python -m segment.batch.isolate``: the task goes in on stdin, pickled;
once the child has loaded the package and its compiled kernels
(:func:`segment.batch.task.warm_up`) it says so on stdout, and later sends
the pickled record), which is killed when its time is up. The time limit
starts with the image, not with the child's start-up.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys

from segment.batch.pool import WORKER_DIED, exit_with_parent, timed_out
from segment.batch.resume import remove_temporary_files
from segment.batch.task import ImageRecord, ImageTask, output_folders, process_image, record_for, warm_up


def run_isolated(task: ImageTask, timeout: float) -> ImageRecord:
    """:func:`segment.batch.task.process_image` in a child process, killed after ``timeout`` seconds.

    Returns
    -------
    ImageRecord
        The child's record; or "failed" with ``"timed out after <timeout> s"``,
        or with the cause when the child died.
    """
    child = subprocess.Popen(
        [sys.executable, "-m", "segment.batch.isolate", str(os.getpid())], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        with contextlib.suppress(BrokenPipeError):  # a child that died at start: see below
            child.stdin.write(pickle.dumps(task))
            child.stdin.flush()
        child.stdout.readline()  # the child has loaded the package and its kernels; its image's time starts now
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        remove_temporary_files(output_folders(task.item, task.root), child.pid)
        return record_for(task.item, task.root, "failed", seconds=timeout, error=timed_out(timeout))
    finally:
        if child.poll() is None:  # this thread was stopped: take the child along
            child.kill()
            child.wait()
    if child.returncode != 0 or not output:
        remove_temporary_files(output_folders(task.item, task.root), child.pid)
        return record_for(task.item, task.root, "failed", error=WORKER_DIED)
    return pickle.loads(output)


def _main() -> None:
    exit_with_parent(int(sys.argv[1]))
    task = pickle.load(sys.stdin.buffer)
    warm_up(task)
    sys.stdout.buffer.write(b"ready\n")
    sys.stdout.buffer.flush()
    record = process_image(task)
    sys.stdout.buffer.write(pickle.dumps(record))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _main()
