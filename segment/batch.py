"""Folders of images: discovery, resume, executors (local processes, Dask), summaries.

One task per image (per page of a multi-page TIFF): :func:`process_image`
segments it, writes its outputs, each atomically, and its JSON summary last.
That summary records a digest of the settings and model, so a later run skips
an image whose outputs are all present, newer than the input, and made with
the same settings (:func:`completed_record`). A task never raises: an error
becomes a record with a one-line cause, and the batch goes on.

Executors run the same task: in this process (one worker), in a pool of
local processes, or on a Dask distributed cluster. :func:`run_batch` ties
them together and writes ``summary.json``, ``summary.csv`` and the contact
sheet ``index.html`` into the output directory, also after Ctrl-C.

This module imports only the standard library at the top, so that worker
processes can limit their thread pools before NumPy and Numba are loaded.
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import hashlib
import io as _stdio
import json
import math
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segment.config import SegmentConfig

if TYPE_CHECKING:
    import numpy as np

    from segment.gmm import GaussianMixture
    from segment.progress import Progress

# The image types the loader reads (see segment.io.IMAGE_SUFFIXES).
_LOADER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".pgm", ".ppm", ".pbm", ".pnm")
DEFAULT_PATTERNS = tuple(f"*{suffix}" for suffix in _LOADER_SUFFIXES)
THUMBNAIL_DIR = "thumbnails"
SUMMARY_FIELDS = (
    "input", "page", "output", "status", "seconds", "components", "labels", "pixels", "tiled", "error", "warnings",
)
STATUSES = ("done", "skipped", "failed", "interrupted")
EXECUTORS = ("local", "dask")
# Settings that change how fast or in how little memory an image is done, not its result.
_RESOURCE_SETTINGS = ("n_jobs", "max_memory")
# Temporary files of segment.io.write_atomic and GaussianMixture.save: ".<name>.<pid>.tmp[.<suffix>]".
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp(\.[^.]+)?$")


class BatchError(Exception):
    """A batch that cannot start (bad folders, no executor); one line naming the cause."""


# ---------------------------------------------------------------- discovery
@dataclass(frozen=True)
class BatchItem:
    """One image of a batch: a file, or one page of a multi-page TIFF.

    Attributes
    ----------
    source : Path
        The input file (absolute).
    relative : str
        Its path relative to the input folder, with "/" separators.
    page : int or None
        Page index (0 = first) of a multi-page TIFF; None for single images.
    outdir : Path
        Output folder (absolute): the input's folder mirrored under OUTDIR.
    stem : str
        File name stem of the outputs, e.g. "scan" or "scan_p002".
    """

    source: Path
    relative: str
    page: int | None
    outdir: Path
    stem: str

    @property
    def label(self) -> str:
        """How the item is named in messages: the relative path, and the page if any."""
        return self.relative if self.page is None else f"{self.relative} [page {self.page + 1}]"

    @property
    def summary_path(self) -> Path:
        """The image's JSON summary, written last: its presence marks the image done."""
        return self.outdir / f"{self.stem}.json"


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    name = relative.rsplit("/", 1)[-1].lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if fnmatch.fnmatchcase(relative.lower() if "/" in pattern else name, pattern):
            return True
    return False


def find_images(
    indir: str | os.PathLike,
    *,
    patterns: Sequence[str] | None = None,
    recursive: bool = False,
    exclude: str | os.PathLike | None = None,
) -> list[Path]:
    """Image files under ``indir`` that match ``patterns``, sorted by relative path.

    Parameters
    ----------
    indir : path-like
        Folder to search.
    patterns : sequence of str, optional
        Shell globs, matched case-insensitively against the file name (or
        against the relative path when the glob contains "/"). Defaults to
        every image type the loader reads.
    recursive : bool
        Also search sub-folders.
    exclude : path-like, optional
        A folder not to search (the output folder, when it lies inside).

    Returns
    -------
    list of Path
        Hidden files and folders (names starting with ".") are left out.

    Raises
    ------
    BatchError
        If ``indir`` is not a folder.
    """
    indir = Path(indir)
    if not indir.is_dir():
        raise BatchError(f"{indir}: not a folder" if indir.exists() else f"{indir}: no such folder")
    patterns = tuple(patterns) if patterns else DEFAULT_PATTERNS
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for folder, dirnames, filenames in os.walk(indir):
        folder_path = Path(folder)
        dirnames[:] = sorted(
            d for d in dirnames if recursive and not d.startswith(".") and (folder_path / d).resolve() != skip
        )
        for filename in filenames:
            if filename.startswith("."):
                continue
            path = folder_path / filename
            relative = path.relative_to(indir).as_posix()
            if _matches(relative, patterns) and path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(indir).as_posix())


def discover(
    indir: str | os.PathLike,
    outdir: str | os.PathLike,
    *,
    patterns: Sequence[str] | None = None,
    recursive: bool = False,
) -> list[BatchItem]:
    """The images of a batch and where their outputs go.

    Multi-page TIFFs give one item per page (stems ``name_p001``, ...); the
    output tree mirrors the input tree. Two inputs of one folder that would
    share a stem (``a.png`` and ``a.jpg``) keep their suffix in the stem
    (``a.png``, ``a.jpg``).

    Parameters
    ----------
    indir, outdir : path-like
        Input and output folders; an output folder inside the input folder
        is not searched.
    patterns, recursive
        See :func:`find_images`.

    Returns
    -------
    list of BatchItem
    """
    from segment import io

    indir_path = Path(indir).absolute()
    outdir_path = Path(outdir).absolute()
    files = find_images(indir_path, patterns=patterns, recursive=recursive, exclude=outdir_path)
    items: list[BatchItem] = []
    for path in files:
        relative = path.relative_to(indir_path)
        try:
            pages = io.count_pages(path)
        except io.ImageReadError:
            pages = 1  # the task reports the error
        for page in range(pages):
            items.append(
                BatchItem(
                    source=path,
                    relative=relative.as_posix(),
                    page=page if pages > 1 else None,
                    outdir=outdir_path / relative.parent,
                    stem=_stem(path.stem, page if pages > 1 else None),
                )
            )
    return _disambiguate(items)


def _stem(base: str, page: int | None) -> str:
    return base if page is None else f"{base}_p{page + 1:03d}"


def _disambiguate(items: list[BatchItem]) -> list[BatchItem]:
    seen: dict[tuple[Path, str], int] = {}
    for item in items:
        seen[(item.outdir, item.stem)] = seen.get((item.outdir, item.stem), 0) + 1
    return [
        dataclasses.replace(item, stem=_stem(item.source.name, item.page)) if seen[(item.outdir, item.stem)] > 1 else item
        for item in items
    ]


# ------------------------------------------------------------------- resume
def model_digest(model: GaussianMixture | None) -> str | None:
    """A hash of a model's parameters and metadata (None for no model)."""
    if model is None:
        return None
    import numpy as np

    digest = hashlib.sha256()
    digest.update(model.covariance_type.encode())
    for array in (model.weights_, model.means_, model.covariances_):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    digest.update(json.dumps(getattr(model, "metadata_", {}) or {}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def settings_digest(config: SegmentConfig, model: GaussianMixture | None = None) -> str:
    """A hash of everything that decides an image's outputs: settings, model, package version.

    Resource settings (``n_jobs``, ``max_memory``) are left out: they change
    the speed, not the result (except that post-processing is skipped for
    images labelled in bands; see :mod:`segment.tiles`).
    """
    from segment import __version__

    settings = {k: v for k, v in config.to_dict().items() if k not in _RESOURCE_SETTINGS}
    payload = {"version": __version__, "settings": settings, "model": model_digest(model)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def completed_record(item: BatchItem, digest: str) -> dict[str, Any] | None:
    """The stored JSON summary of ``item`` if its outputs are complete and current, else None.

    Complete and current means: the summary exists and was written by a
    batch with the same settings digest, every output it lists exists, and
    all of them are at least as new as the input file.
    """
    try:
        source_time = item.source.stat().st_mtime_ns
        summary_time = item.summary_path.stat().st_mtime_ns
        if summary_time < source_time:
            return None
        data = json.loads(item.summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    batch = data.get("batch") if isinstance(data, dict) else None
    if not isinstance(batch, dict) or batch.get("settings_digest") != digest:
        return None
    root = item.outdir
    for relative in batch.get("files", []):
        try:
            if (root / relative).stat().st_mtime_ns < source_time:
                return None
        except OSError:
            return None
    return data


# --------------------------------------------------------------- one image
@dataclass
class FileResult:
    """What :func:`segment_file` wrote.

    Attributes
    ----------
    summary : dict
        The image's JSON summary (as written when "json" is an output).
    paths : dict
        Output kind -> path.
    n_components, n_labels, pixels : int
        Mixture components, distinct labels, pixels of the labelled image.
    tiled : bool
        Whether the image was labelled in row bands (see :mod:`segment.tiles`).
    seconds : float
        Wall time, loading included.
    """

    summary: dict[str, Any]
    paths: dict[str, Path]
    n_components: int
    n_labels: int
    pixels: int
    tiled: bool
    seconds: float


def segment_file(
    source: str | os.PathLike,
    outdir: str | os.PathLike,
    config: SegmentConfig | None = None,
    *,
    model: GaussianMixture | None = None,
    page: int | None = None,
    stem: str | None = None,
    budget: int | None = None,
    kinds: tuple[str, ...] | None = None,
    thumbnails: tuple[Path, Path] | None = None,
    summary_extra: dict[str, Any] | None = None,
) -> FileResult:
    """Segment one image file (or one page of a TIFF) and write its outputs.

    Images whose in-memory processing would exceed the memory budget are
    labelled band by band (:func:`segment.tiles.segment_tiled`); the others
    go through :func:`segment.segment_image`. The JSON summary is written
    last, so its presence means every other output is complete.

    Parameters
    ----------
    source : path-like
        Image file.
    outdir : path-like
        Output folder (created if missing).
    config : SegmentConfig, optional
    model : GaussianMixture, optional
        Label with this model instead of fitting one.
    page : int, optional
        Page of a multi-page TIFF (0 = first).
    stem : str, optional
        Output file stem; defaults to the file's stem.
    budget : int, optional
        Memory budget in bytes; defaults to :func:`segment.tiles.memory_budget`.
    kinds : tuple of str, optional
        Outputs; defaults to ``config.save``.
    thumbnails : (Path, Path), optional
        Where to write the contact-sheet thumbnails (original, segmentation).
    summary_extra : dict, optional
        Keys added to the JSON summary.

    Returns
    -------
    FileResult

    Raises
    ------
    ImageReadError, OutputError, ValueError
        As :func:`segment.segment_image` and :func:`segment.save_segmentation`.
    """
    from segment import io, report, tiles
    from segment.outputs import output_paths, save_segmentation
    from segment.pipeline import segment_image

    start = time.perf_counter()
    cfg = config if config is not None else SegmentConfig()
    source = Path(source)
    outdir = Path(outdir)
    stem = stem or source.stem
    kinds = cfg.save if kinds is None else tuple(kinds)
    budget = tiles.memory_budget(cfg) if budget is None else budget
    pixels = io.load_page(source, page or 0, max_pixels=cfg.max_pixels)
    loaded = time.perf_counter() - start
    pictures = tuple(kind for kind in kinds if kind != "json")
    if tiles.needs_tiling(pixels.shape, pixels.dtype, cfg, budget):
        tiled = tiles.segment_tiled(
            pixels, cfg, outdir, stem, model=model, budget=budget, source=source, kinds=pictures
        )
        summary, n_labels, n_components = tiled.summary, tiled.n_labels, tiled.n_components
        shape = tiled.shape
        if thumbnails is not None:
            report.write_thumbnails(pixels, tiled.label_thumbnail, *thumbnails)
        is_tiled = True
    else:
        result = segment_image(pixels, cfg, model=model)
        result.source = str(source)
        result.timings["load"] = loaded
        result.timings["total"] = result.timings.get("total", 0.0) + loaded
        save_segmentation(result, outdir, stem, kinds=pictures)
        summary = result.summary()
        n_labels, shape = result.n_labels, result.labels.shape
        n_components = int(result.model.n_components) if result.model is not None else 0
        if thumbnails is not None:
            report.write_thumbnails(result.image, result.labels, *thumbnails)
        is_tiled = False
        del result
    del pixels
    paths = output_paths(outdir, stem, kinds, cfg.confidence_format)
    summary["outputs"] = {kind: path.name for kind, path in paths.items()}
    if page is not None:
        summary["input"]["page"] = page + 1
    summary.update(summary_extra or {})
    if "json" in paths:
        io.write_json(paths["json"], summary, protect=(source,))
    return FileResult(
        summary=summary,
        paths=paths,
        n_components=n_components,
        n_labels=n_labels,
        pixels=int(shape[0] * shape[1]),
        tiled=is_tiled,
        seconds=time.perf_counter() - start,
    )


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
    budget: int | None  # None: decided where the task runs (see _task_budget)


def _record_for(item: BatchItem, root: Path, status: str, **values: Any) -> ImageRecord:
    output = (item.outdir / item.stem).relative_to(root).as_posix()
    return ImageRecord(input=item.relative, page=item.page, output=output, status=status, **values)


def _thumbnail_paths(item: BatchItem, root: Path) -> tuple[Path, Path]:
    folder = root / THUMBNAIL_DIR / item.outdir.relative_to(root)
    return folder / f"{item.stem}.jpg", folder / f"{item.stem}_seg.png"


def _one_line(exc: BaseException, source: Path) -> str:
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
    thumbnails = _thumbnail_paths(item, root)
    kinds = tuple(dict.fromkeys(task.config.save + ("json",)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        record = _process(task, thumbnails, kinds, start)
    record.warnings = list(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))
    return record


def _process(task: ImageTask, thumbnails: tuple[Path, Path], kinds: tuple[str, ...], start: float) -> ImageRecord:
    item, root = task.item, task.root
    try:
        from segment.outputs import output_paths

        files = [p.name for p in output_paths(item.outdir, item.stem, kinds, task.config.confidence_format).values()]
        files += [os.path.relpath(p, item.outdir) for p in thumbnails]
        extra = {
            "batch": {
                "settings_digest": task.digest,
                "input": item.relative,
                "page": None if item.page is None else item.page + 1,
                "files": files,
            }
        }
        result = segment_file(
            item.source,
            item.outdir,
            task.config,
            model=task.model,
            page=item.page,
            stem=item.stem,
            budget=_task_budget(task),
            kinds=kinds,
            thumbnails=thumbnails,
            summary_extra=extra,
        )
    except Exception as exc:  # one image's failure, whatever it is, must not stop the batch
        return _record_for(item, root, "failed", seconds=time.perf_counter() - start, error=_one_line(exc, item.source))
    return _record_for(
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


def _task_budget(task: ImageTask) -> int:
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


def _skipped_record(item: BatchItem, root: Path, data: dict[str, Any]) -> ImageRecord:
    thumbnails = _thumbnail_paths(item, root)
    shape = (data.get("input") or {}).get("shape") or [0, 0]
    outputs = [(item.outdir / name).relative_to(root).as_posix() for name in (data.get("outputs") or {}).values()]
    return _record_for(
        item,
        root,
        "skipped",
        components=data.get("n_components"),
        labels=data.get("n_labels"),
        pixels=int(shape[0]) * int(shape[1]),
        tiled="tiling" in data,
        thumbnail=thumbnails[0].relative_to(root).as_posix(),
        segmentation_thumbnail=thumbnails[1].relative_to(root).as_posix(),
        outputs=outputs,
    )


# ---------------------------------------------------------------- executors
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
    """:func:`process_image` in a pool worker: Ctrl-C stops this image (its temporary files are removed)."""
    interrupt = _worker_interrupt
    if interrupt is None:
        return process_image(task)
    if interrupt.requested:  # Ctrl-C came during an earlier task: the parent is stopping
        return _record_for(task.item, task.root, "interrupted")
    signal.signal(signal.SIGINT, interrupt)
    try:
        record = process_image(task)
    except KeyboardInterrupt:
        record = None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if record is None or interrupt.requested:
        return _record_for(task.item, task.root, "interrupted")
    return record


_OnRecord = Callable[[int, ImageRecord], None]


def _listens_to_ctrl_c() -> bool:
    return threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) not in (
        signal.SIG_IGN,
        None,
    )


def _run_serial(tasks: list[ImageTask], on_record: _OnRecord) -> None:
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


def _run_processes(tasks: list[ImageTask], workers: int, threads: int, on_record: _OnRecord) -> None:
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
                        record = _record_for(
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
    tasks: list[ImageTask], scheduler: str | None, workers: int, on_record: _OnRecord
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
                        record = _record_for(
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


# -------------------------------------------------------------------- batch
@dataclass
class BatchResult:
    """The outcome of :func:`run_batch`.

    Attributes
    ----------
    records : list of ImageRecord
        One per image, in discovery order.
    seconds : float
        Wall time of the run.
    interrupted : bool
        Whether the run was stopped by Ctrl-C (unfinished images are "interrupted").
    summary_paths : dict
        "json", "csv", "html" -> files written in the output folder.
    """

    records: list[ImageRecord]
    seconds: float
    interrupted: bool = False
    summary_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Number of images per status (every status listed, zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for record in self.records:
            counts[record.status] += 1
        counts["total"] = len(self.records)
        return counts

    @property
    def failed(self) -> list[ImageRecord]:
        """The records of the images that failed."""
        return [r for r in self.records if r.status == "failed"]


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
        File globs (default: every type the loader reads); see :func:`find_images`.
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
    # On a Dask cluster each worker knows its own memory limit; see _task_budget.
    budget = tiles.memory_budget(cfg, workers=workers) if executor == "local" or cfg.max_memory else None

    records: dict[int, ImageRecord] = {}
    todo: list[int] = []
    for index, item in enumerate(items):
        stored = None if overwrite else completed_record(item, digest)
        if stored is None:
            todo.append(index)
        else:
            records[index] = _skipped_record(item, root, stored)
            if on_record is not None:
                on_record(records[index])
    mode = executor if executor == "dask" else ("serial" if workers == 1 or len(todo) <= 1 else "processes")
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
        if not tasks:
            pass
        elif mode == "dask":
            _run_dask(tasks, scheduler, workers, finished)
        elif mode == "serial":
            _run_serial(tasks, finished)
        else:
            _run_processes(tasks, workers, threads, finished)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.stop()
        sweep_temporary_files(root)
    for index, item in enumerate(items):
        if index not in records:
            records[index] = _record_for(item, root, "interrupted")
    result = BatchResult(
        records=[records[i] for i in range(len(items))],
        seconds=time.perf_counter() - started,
        interrupted=interrupted,
    )
    result.summary_paths = write_summary(root, result, cfg, digest, model)
    return result


def write_summary(
    outdir: Path, result: BatchResult, config: SegmentConfig, digest: str, model: GaussianMixture | None = None
) -> dict[str, Path]:
    """Write ``summary.json``, ``summary.csv`` (one row per image) and ``index.html``, atomically."""
    from segment import __version__, io, report

    rows = [record.row() for record in result.records]
    data = {
        "segment_version": __version__,
        "seconds": round(result.seconds, 3),
        "interrupted": result.interrupted,
        "counts": result.counts,
        "settings": config.to_dict(),
        "settings_digest": digest,
        "model_digest": model_digest(model),
        "images": rows,
    }
    json_path = io.write_json(outdir / "summary.json", data)
    buffer = _stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    text = buffer.getvalue()
    csv_path = io.write_atomic(outdir / "summary.csv", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    counts = {k: v for k, v in result.counts.items() if v or k in ("done", "skipped", "failed")}
    cards = []
    for record in result.records:
        card = record.row()
        card.update(
            thumbnail=record.thumbnail,
            segmentation_thumbnail=record.segmentation_thumbnail,
            outputs=record.outputs,
        )
        cards.append(card)
    html_path = report.write_contact_sheet(outdir, cards, title=f"segment batch: {outdir.name}", counts=counts)
    return {"json": json_path, "csv": csv_path, "html": html_path}


def sweep_temporary_files(outdir: str | os.PathLike) -> list[Path]:
    """Remove temporary files left under ``outdir`` by processes that were killed while writing.

    Only files named like the package's temporary files (``.<name>.<pid>.tmp[.<suffix>]``)
    whose process no longer runs are removed. Returns the paths removed.
    """
    removed = []
    for folder, _, filenames in os.walk(outdir):
        for filename in filenames:
            match = _TEMPORARY.match(filename)
            if match and not _process_alive(int(match.group(1))):
                path = Path(folder) / filename
                try:
                    path.unlink()
                    removed.append(path)
                except OSError:
                    pass
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes nothing while it sweeps
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


# ---------------------------------------------------------------- shared model
@dataclass
class FitResult:
    """The outcome of :func:`fit_shared_model`.

    Attributes
    ----------
    model : GaussianMixture or None
        The fitted model (None when no image could be read).
    images : int
        Images (pages) sampled.
    pixels : int
        Pixels in the sample.
    failed : list of (str, str)
        (input, one-line cause) of each image that could not be used.
    """

    model: Any
    images: int
    pixels: int
    failed: list[tuple[str, str]] = field(default_factory=list)


def fit_shared_model(
    inputs: Iterable[str | os.PathLike],
    config: SegmentConfig | None = None,
    *,
    patterns: Sequence[str] | None = None,
    recursive: bool = False,
    progress: Progress | None = None,
) -> FitResult:
    """Fit one mixture on pixels sampled from many images, for consistent labels across them.

    Every image (every page of a multi-page TIFF) contributes the same
    number of pixels, ``config.fit_sample / n_images`` (a jittered grid, so
    each part of an image is represented by its area); ``fit_sample=0`` takes
    every pixel. Features are those of :func:`segment.segment_image` with the
    same settings, so the model can label any of the images, or others like
    them. Use ``position_weight=0`` for classes defined by colour alone.

    Parameters
    ----------
    inputs : iterable of path-like
        Image files and folders (searched with ``patterns`` and ``recursive``).
    config : SegmentConfig, optional
        Model and feature settings.
    patterns, recursive
        See :func:`find_images`.
    progress : Progress, optional
        Told the number of images and each one read.

    Returns
    -------
    FitResult
        ``model.metadata_`` records the feature settings and the sample.

    Raises
    ------
    BatchError
        An input that does not exist, or no image at all.
    ValueError
        Settings that do not fit the sample (more components than pixels).
    """
    import numpy as np

    from segment import features, io, preprocess, tiles
    from segment.pipeline import fit_model, numba_threads as _numba_threads

    cfg = config if config is not None else SegmentConfig()
    progress = progress if progress is not None else _null_progress()
    sources: list[tuple[Path, str, int | None]] = []
    for entry in inputs:
        path = Path(entry)
        if path.is_dir():
            for found in find_images(path, patterns=patterns, recursive=recursive):
                sources.extend(_pages(found, found.relative_to(path).as_posix()))
        elif path.exists():
            sources.extend(_pages(path, str(path)))
        else:
            raise BatchError(f"{path}: no such file or folder")
    if not sources:
        raise BatchError("no image to fit on")
    quota = math.ceil(cfg.fit_sample / len(sources)) if cfg.fit_sample else 0
    samples: list[np.ndarray] = []
    failed: list[tuple[str, str]] = []
    width: int | None = None
    progress.start(len(sources), "sampling")
    try:
        for number, (path, name, page) in enumerate(sources):
            label = name if page is None else f"{name} [page {page + 1}]"
            try:
                pixels = io.load_page(path, page or 0, max_pixels=cfg.max_pixels)
                pixels = preprocess.denoise(preprocess.downscale(pixels, cfg.max_side), cfg.denoise, cfg.denoise_size)
                alpha = pixels[:, :, 3] if pixels.ndim == 3 and pixels.shape[2] == 4 else None
                flat = tiles.fit_sample_indices(pixels.shape[:2], alpha, quota, cfg.seed + number)
                sample = features.sample_features(pixels, flat, cfg.color_space, cfg.position_weight, features.unit_range(pixels))
                if width is not None and sample.shape[1] != width:
                    raise ValueError(
                        f"gives {sample.shape[1]} features but the images before it give {width} "
                        "(greyscale and colour images together: use --color-space gray)"
                    )
                width = sample.shape[1]
                samples.append(sample)
            except (io.SegmentError, ValueError, OSError, MemoryError) as exc:
                failed.append((label, _one_line(exc, path)))
            progress.advance()
    finally:
        progress.stop()
    if not samples:
        return FitResult(model=None, images=0, pixels=0, failed=failed)
    sample = np.concatenate(samples)
    n_colour = sample.shape[1] - (2 if cfg.position_weight > 0 else 0)
    with _numba_threads(cfg.n_jobs):
        model = fit_model(sample, n_colour, cfg)
    model.metadata_ = dict(model.metadata_, fitted_on={"images": len(samples), "pixels": int(len(sample))}, settings=cfg.to_dict())
    return FitResult(model=model, images=len(samples), pixels=int(len(sample)), failed=failed)


def file_pages(path: str | os.PathLike) -> list[tuple[int | None, str]]:
    """(page, output stem) of each image in a file: one per page of a multi-page TIFF.

    A single image (or an unreadable file, whose error comes when it is
    segmented) gives ``[(None, stem)]``; pages give stems ``name_p001``, ...
    """
    from segment import io

    path = Path(path)
    try:
        count = io.count_pages(path)
    except io.ImageReadError:
        count = 1
    if count == 1:
        return [(None, path.stem)]
    return [(page, _stem(path.stem, page)) for page in range(count)]


def _pages(path: Path, name: str) -> list[tuple[Path, str, int | None]]:
    from segment import io

    try:
        count = io.count_pages(path)
    except io.ImageReadError:
        count = 1
    return [(path, name, page if count > 1 else None) for page in range(count)]


def _null_progress() -> Progress:
    from segment.progress import NullProgress

    return NullProgress()
