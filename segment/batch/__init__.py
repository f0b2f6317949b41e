"""Folders of images: discovery, resume, executors (local processes, Dask), summaries.

One task per image (per page of a multi-page TIFF) segments it and writes its
outputs, each atomically, and its JSON summary last; a later run skips the
images already done with the same settings. :func:`run_batch` ties it
together:

- :mod:`~segment.batch.discover`: which images, and the names of their outputs;
- :mod:`~segment.batch.resume`: settings digests, images already done, stale temporary files;
- :mod:`~segment.batch.task`: one image (never raises; an error is a record);
- :mod:`~segment.batch.executors`: in this process, local processes or Dask;
- :mod:`~segment.batch.summary` and :mod:`~segment.batch.contact_sheet`:
  ``summary.json``, ``summary.csv`` and ``index.html``;
- :mod:`~segment.batch.run`: the whole batch.

The modules of this package import only the standard library (and
:mod:`segment.config`) at the top, so that worker processes can limit their
thread pools before NumPy and Numba are loaded.
"""

from segment.batch.discover import BatchItem, discover, find_images
from segment.batch.errors import BatchError
from segment.batch.resume import sweep_temporary_files
from segment.batch.run import run_batch
from segment.batch.summary import BatchResult
from segment.batch.task import ImageRecord, ImageTask

__all__ = [
    "BatchError",
    "BatchItem",
    "BatchResult",
    "ImageRecord",
    "ImageTask",
    "discover",
    "find_images",
    "run_batch",
    "sweep_temporary_files",
]
