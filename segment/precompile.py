"""Compile the region-graph kernels in a second process on first use.

With an empty Numba cache, ``segment image`` spends most of its first run
compiling kernels, one after another: Numba compiles under one lock per
process. About half of that work is the region graph's kernels
(:mod:`segment._region_kernels`), which the pipeline needs only after the
mixture is fitted and the labels smoothed. So on first use the command
starts :mod:`segment.region_warmup` in a new process, which runs the region stage on a
small made-up label map and so compiles those kernels into the shared cache
while this process compiles the mixture and smoothing kernels. The pipeline
waits for it (:func:`wait`) before its region stage, then loads the kernels
from the cache.

The two processes never compile the same function at the same time: the
region kernels are used nowhere before the region stage. When the cache is
already filled, nothing is started.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from segment import threads

# Longest wait for the helper process, in seconds; after it the pipeline compiles what is missing itself.
WAIT_LIMIT = 300.0

_helper: subprocess.Popen | None = None


def region_kernels_cached() -> bool:
    """Whether Numba's cache already holds a compiled region-merging kernel.

    Reads the cache index of :func:`segment._region_kernels.merge_by_cost`;
    an index that cannot be read counts as cached, so that nothing is started.
    """
    from segment._region_kernels import merge_by_cost

    try:
        return bool(merge_by_cost._cache._cache_file._load_index())
    except Exception:  # a Numba without this cache layout: never start a helper
        return True


@contextlib.contextmanager
def region_kernels_in_background(mode: str) -> Iterator[None]:
    """Within the block, the region kernels for ``mode`` compile in a second process if the cache lacks them.

    Nothing is started on a single CPU, with Numba's JIT disabled, or when
    a helper is already running. A helper still running when the block
    ends (the command failed before its region stage) is killed: its
    cache entries are written whole or not at all.

    Parameters
    ----------
    mode : {"regions", "classes"}
        The segmentation mode the pipeline will run (classes mode needs
        fewer region kernels).
    """
    global _helper
    from numba.core import config

    if _helper is None and threads.available() >= 2 and not config.DISABLE_JIT and not region_kernels_cached():
        # The package's own folder first, so the helper compiles the same source files (the cache is keyed by path).
        code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent.parent)!r}); from segment import region_warmup; region_warmup.main()"
        _helper = subprocess.Popen(
            [sys.executable, "-c", code, "--mode", mode],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    try:
        yield
    finally:
        _stop()


def wait() -> None:
    """Wait for the helper of :func:`region_kernels_in_background`, if any (at most ``WAIT_LIMIT`` seconds)."""
    if _helper is not None:
        try:
            _helper.wait(WAIT_LIMIT)
        except subprocess.TimeoutExpired:
            pass
        _stop()


def _stop() -> None:
    global _helper
    if _helper is not None:
        if _helper.poll() is None:
            _helper.kill()
            _helper.wait()
        _helper = None
