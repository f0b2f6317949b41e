"""A batch from start to end: discover the images, skip those done, run the rest, write the summaries.

:func:`run_batch` segments every image of a folder (tree) into a mirrored
output tree; an image whose outputs are complete and made with the same
settings is skipped (:mod:`segment.batch.resume`), one failure never stops
the others (:mod:`segment.batch.task`), the images run in this process, in
local processes or on Dask (:mod:`segment.batch.executors`), and the
summaries are written also after Ctrl-C or SIGTERM (:mod:`segment.batch.summary`).
One run at a time holds the output folder (:mod:`segment.batch.outdir`); a
folder removed or made unwritable during the run stops it with one line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from segment.batch.discover import BatchItem, discover
from segment.batch.errors import BatchError
from segment.batch.executors import EXECUTORS, available_cores, choose_mode, run_tasks
from segment.batch.outdir import OutputLock
from segment.batch.resume import completed_record, settings_digest, skipped_record, sweep_temporary_files
from segment.batch.signals import signal_of
from segment.batch.summary import BatchResult, write_summary
from segment.batch.task import ImageRecord, ImageTask, record_for
from segment.config import VOLUME_DEFAULTS, SegmentConfig
from segment.segment_file import is_volume_file

if TYPE_CHECKING:
    from segment.gmm import Mixture
    from segment.progress import Progress


def run_batch(
    indir: str | os.PathLike,
    outdir: str | os.PathLike,
    config: SegmentConfig | None = None,
    *,
    model: Mixture | None = None,
    patterns: Sequence[str] | None = None,
    recursive: bool = False,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    on_record: Callable[[ImageRecord], None] | None = None,
    timeout: float | None = None,
    trust_times: bool = True,
    volume_config: SegmentConfig | None = None,
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
    model : Mixture, optional
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
    timeout : float, optional
        Seconds an image may take; one that takes longer is stopped (its
        worker process killed and replaced) and reported failed. With the
        local executor this runs every image in a worker process, also for
        ``workers=1``.
    trust_times : bool
        Take an input whose size and modification time equal those recorded
        with its outputs as unchanged; False compares the content (SHA-256)
        of every input, for filesystems whose times cannot be trusted.
    volume_config : SegmentConfig, optional
        Settings of the volumes among the inputs (NIfTI files; TIFF stacks
        with ``config.volume``), which run in classes mode; default:
        ``config`` in classes mode.

    Returns
    -------
    BatchResult
        Also when interrupted by Ctrl-C or SIGTERM: the summaries then cover
        what finished, and ``stop_signal`` says which signal it was.

    Raises
    ------
    BatchError
        Missing input folder, unusable output folder (also one removed or
        made unwritable during the run), an output folder in use by another
        run, unknown executor, or a Dask scheduler that cannot be reached.
    """
    from segment import io, tiles
    from segment import progress as progress_module

    started = time.perf_counter()
    cfg = config if config is not None else SegmentConfig()
    if executor not in EXECUTORS:
        raise BatchError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    if scheduler and executor != "dask":
        raise BatchError("a scheduler address needs executor='dask'")
    if timeout is not None and not timeout > 0:
        raise BatchError(f"the time limit must be a positive number of seconds; got {timeout}")
    progress = progress if progress is not None else progress_module.NullProgress()
    root = Path(outdir).absolute()
    if root.resolve() == Path(indir).resolve():
        raise BatchError(f"{outdir}: the output folder must differ from the input folder")
    items = discover(indir, root, patterns=patterns, recursive=recursive, volume=cfg.volume)
    volume_cfg = volume_config if volume_config is not None else cfg.replace(mode="classes", **VOLUME_DEFAULTS)
    with OutputLock(root) as lock:
        sweep_temporary_files(root)
        workers = max(1, workers or available_cores())
        threads = max(1, available_cores() // workers)
        digest = settings_digest(cfg, model)  # thread counts are not part of it
        volume_digest = settings_digest(volume_cfg, model)

        def digest_of(item: BatchItem) -> str:
            return volume_digest if is_volume_file(item.source, cfg.volume) else digest

        # On a Dask cluster each worker knows its own memory limit; see task_budget.
        budget = tiles.memory_budget(cfg, workers=workers) if executor == "local" or cfg.max_memory else None
        records = {} if overwrite else _up_to_date(items, root, digest_of, trust_times)
        if on_record is not None:
            for record in records.values():
                on_record(record)
        todo = [index for index in range(len(items)) if index not in records]
        mode = choose_mode(executor, workers, len(todo), timeout)
        if cfg.n_jobs is None and mode != "serial" and not scheduler:
            cfg = cfg.replace(n_jobs=threads)  # workers x threads = the cores
            volume_cfg = volume_cfg.replace(n_jobs=threads)
        tasks = [
            ImageTask(items[i], root, volume_cfg if is_volume_file(items[i].source, cfg.volume) else cfg, model, digest_of(items[i]), budget)
            for i in todo
        ]

        def finished(task_index: int, record: ImageRecord) -> None:
            records[todo[task_index]] = record
            problem = lock.problem()
            if problem is not None:  # every image after this one would fail the same way: one line says so
                raise BatchError(f"{root}: {problem}; batch stopped, run it again once the folder is usable")
            progress.advance()
            if on_record is not None:
                on_record(record)

        stop_signal = None
        skipped = len(records)
        progress.start(len(tasks), f"segment ({skipped} up to date)" if skipped else "segment")
        try:
            run_tasks(tasks, mode, finished, workers=workers, threads=threads, scheduler=scheduler, timeout=timeout)
        except KeyboardInterrupt as exc:
            stop_signal = signal_of(exc)
        finally:
            progress.stop()
            sweep_temporary_files(root)
        problem = lock.problem()
        if problem is not None:
            raise BatchError(f"{root}: {problem}; run the batch again once the folder is usable")
        for index, item in enumerate(items):
            if index not in records:
                records[index] = record_for(item, root, "interrupted")
        result = BatchResult(
            records=[records[i] for i in range(len(items))],
            seconds=time.perf_counter() - started,
            interrupted=stop_signal is not None,
            stop_signal=stop_signal,
        )
        try:
            result.summary_paths = write_summary(root, result, cfg, digest, model)
        except io.OutputError as exc:
            raise BatchError(str(exc)) from None
    return result


def _up_to_date(
    items: list[BatchItem], root: Path, digest_of: Callable[[BatchItem], str], trust_times: bool
) -> dict[int, ImageRecord]:
    """The "skipped" records of the images whose outputs are complete and current, by index."""
    records = {}
    for index, item in enumerate(items):
        stored = completed_record(item, digest_of(item), trust_times=trust_times)
        if stored is not None:
            records[index] = skipped_record(item, root, stored)
    return records
