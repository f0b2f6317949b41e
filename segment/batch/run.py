"""A batch from start to end: discover the images, skip those done, run the rest, write the summaries.

:func:`run_batch` segments every image of a folder (tree) into a mirrored
output tree; an image whose outputs are complete and made with the same
settings is skipped (:mod:`segment.batch.resume`), one failure never stops
the others (:mod:`segment.batch.task`), the images run in this process, in
local processes or on Dask (:mod:`segment.batch.executors`), and the
summaries are written also after Ctrl-C (:mod:`segment.batch.summary`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from segment.batch.discover import discover
from segment.batch.errors import BatchError
from segment.batch.executors import EXECUTORS, available_cores, choose_mode, run_tasks
from segment.batch.resume import completed_record, settings_digest, skipped_record, sweep_temporary_files
from segment.batch.summary import BatchResult, write_summary
from segment.batch.task import ImageRecord, ImageTask, record_for
from segment.config import SegmentConfig

if TYPE_CHECKING:
    from segment.gmm import GaussianMixture
    from segment.progress import Progress


def run_batch(
    indir: str | os.PathLike,
    outdir: str | os.PathLike,
    config: SegmentConfig | None = None,
    *,
    model: GaussianMixture | None = None,
    patterns: Sequence[str] | None = None,
    recursive: bool = False,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    on_record: Callable[[ImageRecord], None] | None = None,
) -> BatchResult:
    """Segment every image of a folder (tree) into a mirrored output tree.

    Parameters
    ----------
    indir : path-like
        Input folder.
    outdir : path-like
        Output folder (created if missing); receives the outputs of each
        image in the input's relative folder, ``thumbnails/``,
        ``summary.json``, ``summary.csv`` and ``index.html``.
    config : SegmentConfig, optional
        Settings of every image.
    model : GaussianMixture, optional
        A shared model (``segment fit``): every image is labelled with it,
        so a label id is the same class in every image.
    patterns : sequence of str, optional
        File globs (default: every type the loader reads); see :func:`segment.batch.find_images`.
    recursive : bool
        Include sub-folders.
    workers : int, optional
        Concurrent images (processes); default: the cores available.
        ``1`` runs in this process. Each worker gets ``cores // workers``
        threads unless ``config.n_jobs`` says otherwise.
    executor : {"local", "dask"}
        Local processes, or a Dask distributed cluster.
    scheduler : str, optional
        Address of a running Dask scheduler; without one, ``executor="dask"``
        starts a local cluster of ``workers`` processes on 127.0.0.1.
    overwrite : bool
        Redo images whose outputs are already complete and current.
    progress : Progress, optional
        Told the number of images to do and each one done.
    on_record : callable, optional
        Called in this process with each :class:`ImageRecord` (skipped ones first).

    Returns
    -------
    BatchResult
        Also when interrupted by Ctrl-C: the summaries then cover what finished.

    Raises
    ------
    BatchError
        Missing input folder, unusable output folder, unknown executor, or
        a Dask scheduler that cannot be reached.
    """
    from segment import progress as progress_module
    from segment import tiles

    started = time.perf_counter()
    cfg = config if config is not None else SegmentConfig()
    if executor not in EXECUTORS:
        raise BatchError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    if scheduler and executor != "dask":
        raise BatchError("a scheduler address needs executor='dask'")
    progress = progress if progress is not None else progress_module.NullProgress()
    root = Path(outdir).absolute()
    if root.resolve() == Path(indir).resolve():
        raise BatchError(f"{outdir}: the output folder must differ from the input folder")
    items = discover(indir, root, patterns=patterns, recursive=recursive)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"{outdir}: cannot create output folder ({exc.strerror or exc})") from None
    sweep_temporary_files(root)
    workers = max(1, workers or available_cores())
    threads = max(1, available_cores() // workers)
    digest = settings_digest(cfg, model)  # thread counts are not part of it
    # On a Dask cluster each worker knows its own memory limit; see task_budget.
    budget = tiles.memory_budget(cfg, workers=workers) if executor == "local" or cfg.max_memory else None

    records: dict[int, ImageRecord] = {}
    todo: list[int] = []
    for index, item in enumerate(items):
        stored = None if overwrite else completed_record(item, digest)
        if stored is None:
            todo.append(index)
        else:
            records[index] = skipped_record(item, root, stored)
            if on_record is not None:
                on_record(records[index])
    mode = choose_mode(executor, workers, len(todo))
    if cfg.n_jobs is None and mode != "serial" and not scheduler:
        cfg = cfg.replace(n_jobs=threads)  # workers x threads = the cores
    tasks = [ImageTask(items[i], root, cfg, model, digest, budget) for i in todo]

    def finished(task_index: int, record: ImageRecord) -> None:
        records[todo[task_index]] = record
        progress.advance()
        if on_record is not None:
            on_record(record)

    interrupted = False
    skipped = len(items) - len(todo)
    progress.start(len(tasks), f"segment ({skipped} up to date)" if skipped else "segment")
    try:
        run_tasks(tasks, mode, finished, workers=workers, threads=threads, scheduler=scheduler)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.stop()
        sweep_temporary_files(root)
    for index, item in enumerate(items):
        if index not in records:
            records[index] = record_for(item, root, "interrupted")
    result = BatchResult(
        records=[records[i] for i in range(len(items))],
        seconds=time.perf_counter() - started,
        interrupted=interrupted,
    )
    result.summary_paths = write_summary(root, result, cfg, digest, model)
    return result
