"""Prepare OpenCV's colour tables and Numba's code generator in a background thread.

A fresh process pays two one-off costs before its first segmentation, both
the same whatever the image:

- OpenCV builds its colour-conversion tables on the first RGB → Lab
  conversion (about 0.16 s on a 2-core machine). That work is C++ and
  releases the GIL.
- Numba loads the implementations of its CPU target the first time a
  compiled kernel is called, even one loaded from the cache (about 0.6 s).
  That work is Python and holds the GIL.

In a thread started as ``segment image`` begins, OpenCV's part runs beside
the command's own Python work, and Numba's beside the main thread's work
that does not hold the GIL (reading and converting the image), instead of
one after the other. Nothing else changes: the main thread's first
conversion and first kernel call wait for whatever part of this work is
still under way.
"""

from __future__ import annotations

import threading

import numpy as np

from segment import threads

_started = threading.Event()


def start() -> None:
    """Start the background preparation once per process; later calls do nothing."""
    if _started.is_set():
        return
    _started.set()
    # Imported here, not in the thread: Numba's modules import each other in cycles, and two threads
    # importing them at once can each see the other's half-initialised module.
    import cv2
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target

    def prepare() -> None:
        threads.leave_signals_to_main()
        try:
            cv2.cvtColor(np.zeros((1, 1, 3), np.float32), cv2.COLOR_RGB2Lab)
            # Dispatchers refresh the target under this lock before their first compile or cache load.
            with global_compiler_lock:
                cpu_target.target_context.refresh()
        except Exception:  # only a head start: the main thread does the same work and reports any failure
            pass

    # Not a daemon: the interpreter waits for it before exiting, since killing it inside OpenCV aborts the process.
    threading.Thread(target=prepare, name="segment-preload").start()
