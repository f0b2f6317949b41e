"""One image of a batch: the task a worker runs and the record it returns.

:func:`process_image` segments the image of an :class:`ImageTask` with
:func:`segment.segment_file.segment_file`, writes its outputs, thumbnails
and JSON summary (last, with the settings digest that resume checks), and
returns an :class:`ImageRecord`. A task never raises: an error becomes a
"failed" record with a one-line cause, and the batch goes on.

The summary records the input's fingerprint (size, modification time,
SHA-256; :mod:`segment.batch.fingerprint`) taken before the image is read;
an input that changes or disappears while its image is made fails with one
line and loses its summary, so a rerun redoes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segment.batch.discover import BatchItem
from segment.batch.fingerprint import fingerprint, unchanged_since
from segment.config import SegmentConfig
from segment.segment_file import planned_outputs, segment_file

THUMBNAIL_DIR = "thumbnails"
SUMMARY_FIELDS = (
    "input", "page", "output", "status", "seconds", "components", "labels", "pixels", "tiled", "error", "warnings",
)
STATUSES = ("done", "skipped", "failed", "interrupted")


@dataclass
class ImageRecord:
    """The outcome of one image of a batch (one row of the summary).

    ``status`` is "done", "skipped" (outputs already current), "failed"
    (``error`` holds a one-line cause) or "interrupted" (not finished when
    the batch was stopped).
    """

    input: str
    page: int | None
    output: str
    status: str
    seconds: float = 0.0
    components: int | None = None
    labels: int | None = None
    pixels: int | None = None
    tiled: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    thumbnail: str | None = None
    segmentation_thumbnail: str | None = None
    outputs: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The summary row: the fields of ``SUMMARY_FIELDS``, pages counted from 1."""
        values = dataclasses.asdict(self)
        values["page"] = None if self.page is None else self.page + 1
        values["seconds"] = round(self.seconds, 4)
        values["warnings"] = "; ".join(self.warnings) or None
        return {name: values[name] for name in SUMMARY_FIELDS}


@dataclass(frozen=True)
class ImageTask:
    """Everything a worker needs for one image (small and picklable)."""

    item: BatchItem
    root: Path
    config: SegmentConfig
    model: Any
    digest: str
    budget: int | None  # None: decided where the task runs (see task_budget)


def record_for(item: BatchItem, root: Path, status: str, **values: Any) -> ImageRecord:
    """The record of ``item`` with ``status``; ``values`` fill the other fields of :class:`ImageRecord`."""
    output = (item.outdir / item.stem).relative_to(root).as_posix()
    return ImageRecord(input=item.relative, page=item.page, output=output, status=status, **values)


def thumbnail_paths(item: BatchItem, root: Path) -> tuple[Path, Path]:
    """Where the thumbnails of ``item`` go: ``root/thumbnails/<folder>/<stem>.jpg`` and ``<stem>_seg.png``."""
    folder = root / THUMBNAIL_DIR / item.outdir.relative_to(root)
    return folder / f"{item.stem}.jpg", folder / f"{item.stem}_seg.png"


def output_folders(item: BatchItem, root: Path) -> tuple[Path, Path]:
    """The folders the task of ``item`` writes to: its output folder and its thumbnail folder."""
    return item.outdir, thumbnail_paths(item, root)[0].parent


def one_line(exc: BaseException, source: Path) -> str:
    """The cause of an error in one line, without the file name (the caller names the file).

    Errors a user can cause (unreadable image, bad settings) keep their
    message; others are prefixed with their type, and an out-of-memory error
    says what to change.

    Examples
    --------
    >>> one_line(RuntimeError("boom\\nsecond line"), Path("a.png"))
    'RuntimeError: boom'
    >>> one_line(ValueError("a.png: too few pixels"), Path("a.png"))
    'too few pixels'
    """
    from segment import io

    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    message = message.removeprefix(f"{source}: ")
    if isinstance(exc, (io.SegmentError, ValueError)) and message:
        return message
    if isinstance(exc, MemoryError):
        return "out of memory (lower --max-memory so that the image is labelled in bands)"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def process_image(task: ImageTask) -> ImageRecord:
    """Segment one image of a batch and write its outputs; never raises an ``Exception``.

    The outputs are written each atomically, then the thumbnails, then the
    JSON summary with the settings digest; an error at any point becomes a
    ``"failed"`` record whose ``error`` is a one-line cause. Warnings are
    caught and returned in the record, for the caller to show.

    Parameters
    ----------
    task : ImageTask

    Returns
    -------
    ImageRecord
    """
    item, root = task.item, task.root
    start = time.perf_counter()
    thumbnails = thumbnail_paths(item, root)
    kinds = tuple(dict.fromkeys(task.config.save + ("json",)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = _process(task, thumbnails, kinds, start)
    record.warnings = list(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))
    return record


def _process(task: ImageTask, thumbnails: tuple[Path, Path], kinds: tuple[str, ...], start: float) -> ImageRecord:
    item, root = task.item, task.root
    source = fingerprint(item.source)  # before the image is read: see segment.batch.fingerprint
    try:
        files = [p.name for p in planned_outputs(item.source, item.outdir, item.stem, kinds, task.config).values()]
        files += [os.path.relpath(p, item.outdir) for p in thumbnails]
        extra = {
            "batch": {
                "settings_digest": task.digest,
                "input": item.relative,
                "page": None if item.page is None else item.page + 1,
                "files": files,
                "source": source,
            }
        }
        result = segment_file(
            item.source,
            item.outdir,
            task.config,
            model=task.model,
            page=item.page,
            stem=item.stem,
            budget=task_budget(task),
            kinds=kinds,
            thumbnails=thumbnails,
            summary_extra=extra,
        )
    except Exception as exc:  # one image's failure, whatever it is, must not stop the batch
        return record_for(item, root, "failed", seconds=time.perf_counter() - start, error=one_line(exc, item.source))
    if source is not None and not unchanged_since(item.source, source):
        # Its outputs may come from the old content or the new: without a summary they count as not done.
        with contextlib.suppress(OSError):
            result.paths["json"].unlink()
        cause = "changed" if item.source.exists() else "was removed"
        return record_for(
            item, root, "failed", seconds=time.perf_counter() - start,
            error=f"input {cause} while it was being segmented; run again to redo it",
        )
    return record_for(
        item,
        root,
        "done",
        seconds=time.perf_counter() - start,
        components=result.n_components,
        labels=result.n_labels,
        pixels=result.pixels,
        tiled=result.tiled,
        thumbnail=thumbnails[0].relative_to(root).as_posix(),
        segmentation_thumbnail=thumbnails[1].relative_to(root).as_posix(),
        outputs=[p.relative_to(root).as_posix() for p in result.paths.values()],
    )


def warm_up(task: ImageTask) -> None:
    """Segment a small synthetic picture with the settings of ``task``, and forget it.

    A fresh worker process loads its compiled kernels on its first image:
    seconds, more on a busy machine. A worker calls this before its first
    image's time limit starts, so that the limit counts the image's own
    work. Any problem is left for the real image to meet.
    """
    import numpy as np

    from segment.pipeline import segment_image

    picture = np.zeros((48, 48, 3), dtype=np.uint8)
    picture[24:] = (40, 60, 200)
    picture += np.random.default_rng(0).integers(0, 16, picture.shape, dtype=np.uint8)
    with warnings.catch_warnings(), contextlib.suppress(Exception):
        warnings.simplefilter("ignore")
        segment_image(picture, task.config, model=task.model)


def task_budget(task: ImageTask) -> int:
    """The memory budget of a task: as given, or half the memory limit of the Dask worker it runs on."""
    if task.budget is not None:
        return task.budget
    from segment import tiles

    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a Dask worker
        worker = None
    manager = getattr(worker, "memory_manager", None)
    limit = getattr(manager, "memory_limit", None) or getattr(worker, "memory_limit", None)
    return max(2**28, int(limit) // 2) if limit else tiles.memory_budget(task.config)
