"""Scoring segmentations against human ones: the BSDS500 region benchmarks over many images.

Used by ``segment evaluate`` and ``scripts/evaluate_bsds.py``. Predictions are
label images (our ``*_labels.png``, any single-channel integer image, ``.npy``)
or images segmented on the fly with a :class:`~segment.config.SegmentConfig`;
ground truths are BSDS500 ``.mat`` files or label images / folders of label
images, found by the prediction's name (see :func:`find_ground_truth`).

A prediction is scored as given: a label that occurs in several disconnected
places is one segment. Segment with ``relabel=True`` (the default) to score
connected regions, the segments a person sees.

A hierarchy (an ultrametric contour map in BSDS's ucm2 convention: a
``*_ucm2.png`` from ``--save hierarchy``, or a ``.npy`` array of shape
(2H + 1, 2W + 1)) is scored at several scales, for ODS and OIS
(:class:`HierarchyResult`). With ``boundary=True`` the boundary benchmark
(:mod:`segment.boundary_metrics`) is run as well.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segment import boundary_metrics, hierarchy, io, metrics
from segment.config import SegmentConfig

PREDICTION_KINDS = ("auto", "labels", "images")
LABEL_SUFFIX = "_labels"
UCM_SUFFIX = "_ucm2"
DEFAULT_SCALES = tuple(boundary_metrics.benchmark_thresholds(9))  # 0.1, 0.2, ..., 0.9
_GROUND_TRUTH_SUFFIXES = (".mat", ".png", ".tif", ".tiff", ".bmp", ".pgm")
_ARRAY_SUFFIXES = (".npy",)

# image -> label image, or (label image, ucm2) to score the hierarchy as well
Segmenter = Callable[[np.ndarray], "np.ndarray | tuple[np.ndarray, np.ndarray]"]


@dataclass(frozen=True)
class ImageResult:
    """Scores of one prediction.

    Attributes
    ----------
    name : str
        Image name (the file stem without ``_labels``).
    path : str
        The prediction (label image or segmented image).
    scores : ImageScores
        PRI, VoI, covering terms and the number of segments.
    seconds : float or None
        Time spent segmenting the image; None for a given label image.
    """

    name: str
    path: str
    scores: metrics.ImageScores
    seconds: float | None = None
    boundary: boundary_metrics.BoundaryCounts | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        out = {
            "name": self.name,
            "path": self.path,
            "pri": self.scores.pri,
            "voi": self.scores.voi,
            "covering": self.scores.covering,
            "n_segments": self.scores.n_segments,
            "seconds": self.seconds,
        }
        if self.boundary is not None:
            out["boundary_recall"] = float(self.boundary.recall[0])
            out["boundary_precision"] = float(self.boundary.precision[0])
        return out


@dataclass(frozen=True)
class HierarchyResult:
    """Scores of one hierarchy (ucm2) at each scale.

    Attributes
    ----------
    name, path : str
        As in :class:`ImageResult`.
    scales : tuple of float
        The scales it was cut at.
    scores : tuple of ImageScores
        Region scores of the cut at each scale.
    boundary : BoundaryCounts or None
        Boundary counts at each scale (with the boundary benchmark).
    """

    name: str
    path: str
    scales: tuple[float, ...]
    scores: tuple[metrics.ImageScores, ...]
    boundary: boundary_metrics.BoundaryCounts | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        out: dict[str, Any] = {
            "name": self.name,
            "path": self.path,
            "scales": list(self.scales),
            "pri": [s.pri for s in self.scores],
            "voi": [s.voi for s in self.scores],
            "covering": [s.covering for s in self.scores],
            "n_segments": [s.n_segments for s in self.scores],
        }
        if self.boundary is not None:
            out["boundary_recall"] = self.boundary.recall.tolist()
            out["boundary_precision"] = self.boundary.precision.tolist()
        return out


@dataclass
class Evaluation:
    """Per-image results, failures, and the dataset figures.

    Attributes
    ----------
    results : list of ImageResult
        One entry per scored prediction, in input order.
    failures : list of (str, str)
        ``(path, message)`` of each prediction that could not be scored.
    """

    results: list[ImageResult] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    hierarchies: list[HierarchyResult] = field(default_factory=list)

    @property
    def summary(self) -> metrics.DatasetScores | None:
        """Mean PRI, mean VoI, pooled covering, mean segment count; None if nothing was scored."""
        return metrics.summarize([r.scores for r in self.results]) if self.results else None

    @property
    def boundary_summary(self) -> boundary_metrics.BoundarySummary | None:
        """Boundary benchmark of the label images (counts pooled: its ODS = OIS figures); None without it."""
        counts = [r.boundary for r in self.results if r.boundary is not None]
        return boundary_metrics.summarize_boundaries(counts, [0.5]) if counts else None

    @property
    def scale_summary(self) -> metrics.ScaleSummary | None:
        """Region ODS / OIS of the hierarchies; None if none was scored."""
        if not self.hierarchies:
            return None
        return metrics.summarize_scales([h.scores for h in self.hierarchies], self.hierarchies[0].scales)

    @property
    def hierarchy_boundary_summary(self) -> boundary_metrics.BoundarySummary | None:
        """Boundary ODS / OIS / AP of the hierarchies; None without the boundary benchmark."""
        counts = [h.boundary for h in self.hierarchies if h.boundary is not None]
        return boundary_metrics.summarize_boundaries(counts, self.hierarchies[0].scales) if counts else None

    @property
    def seconds_per_image(self) -> float | None:
        """Mean segmentation time of the images segmented on the fly, or None."""
        times = [r.seconds for r in self.results if r.seconds is not None]
        return float(np.mean(times)) if times else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: summary, per-image results and failures."""
        summary = self.summary
        extra: dict[str, Any] = {}
        for key, value in (
            ("boundary", self.boundary_summary),
            ("hierarchy_regions", self.scale_summary),
            ("hierarchy_boundary", self.hierarchy_boundary_summary),
        ):
            if value is not None:
                extra[key] = dataclasses.asdict(value)
        if self.hierarchies:
            extra["hierarchies"] = [h.to_dict() for h in self.hierarchies]
        return extra | {
            "summary": None
            if summary is None
            else {
                "pri": summary.pri,
                "voi": summary.voi,
                "covering": summary.covering,
                "n_segments": summary.n_segments,
                "n_images": summary.n_images,
                "seconds_per_image": self.seconds_per_image,
            },
            "images": [r.to_dict() for r in self.results],
            "failures": [{"path": p, "error": m} for p, m in self.failures],
        }


def find_ground_truth(truth_dir: str | os.PathLike, name: str) -> Path:
    """Where the ground truth of image ``name`` lies in ``truth_dir``.

    Looked for, in this order: ``name.mat`` (BSDS), a folder ``name/`` of
    label images, ``name.png`` / ``.tif`` / ``.tiff`` / ``.bmp`` / ``.pgm``.

    Raises
    ------
    ValueError
        If ``truth_dir`` is not a folder or holds nothing for ``name``.
    """
    truth_dir = Path(truth_dir)
    if not truth_dir.is_dir():
        raise ValueError(f"{truth_dir}: ground-truth folder not found")
    candidates = [truth_dir / f"{name}.mat", truth_dir / name] + [truth_dir / f"{name}{s}" for s in _GROUND_TRUTH_SUFFIXES[1:]]
    for path in candidates:
        if path.exists():
            return path
    raise ValueError(f"no ground truth for {name!r} in {truth_dir} (expected {name}.mat, {name}/ or {name}.png)")


def image_name(path: str | os.PathLike) -> str:
    """The image name a prediction file stands for: its stem without ``_labels`` or ``_ucm2``."""
    stem = Path(path).stem
    for suffix in (LABEL_SUFFIX, UCM_SUFFIX):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def load_prediction_ucm2(path: str | os.PathLike) -> np.ndarray | None:
    """The hierarchy in ``path`` (see :func:`load_ucm2`), or None when the file is not named ``*_ucm2.png/.npy``."""
    path = Path(path)
    if not path.stem.endswith(UCM_SUFFIX) or path.suffix.lower() not in (".png", ".npy"):
        return None
    return load_ucm2(path)


def load_ucm2(path: str | os.PathLike) -> np.ndarray:
    """A ucm2 map as float64 in [0, 1]: a 16-bit PNG (levels times 65535) or a ``.npy`` array.

    Raises
    ------
    ValueError
        If the file cannot be read as a ucm2 map (2-D, odd sides).
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        if not path.is_file():
            raise ValueError(f"{path}: no such file")
        try:
            ucm2 = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot be read as a .npy array ({exc})") from None
    else:
        ucm2 = _read_unchanged(path)
        if ucm2.dtype != np.uint16:
            raise ValueError(f"{path}: a ucm2 image must be a 16-bit PNG (got {ucm2.dtype})")
        ucm2 = hierarchy.ucm2_from_png_values(ucm2)
    if ucm2.ndim != 2 or ucm2.dtype.kind not in "fiu" or ucm2.shape[0] % 2 == 0 or ucm2.shape[1] % 2 == 0:
        raise ValueError(f"{path}: not a ucm2 map (a 2-D array with odd sides; got shape {ucm2.shape})")
    return ucm2.astype(np.float64)


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files given, with folders replaced by the image and ``.npy`` files in them (sorted)."""
    suffixes = io.IMAGE_SUFFIXES + _ARRAY_SUFFIXES
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes))
        else:
            out.append(path)
    return out


def load_prediction_labels(path: str | os.PathLike) -> np.ndarray | None:
    """The label image in ``path``, or None when the file is an ordinary image to segment.

    ``.npy`` files and files named ``*_labels.*`` are label images; so is any
    single-channel image with 16- or 32-bit integer pixels. 8-bit greyscale
    and colour images count as photographs.

    Raises
    ------
    ValueError
        If a file that must be a label image cannot be read as one.
    """
    path = Path(path)
    if path.suffix.lower() in _ARRAY_SUFFIXES:
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: cannot be read as a .npy array ({exc})") from None
        return _as_labels(path, array)
    if path.stem.endswith(LABEL_SUFFIX):
        return _as_labels(path, _read_unchanged(path))
    image = _read_unchanged(path)
    if image.ndim == 2 and image.dtype.kind in "iu" and image.dtype.itemsize >= 2:
        return image.astype(np.int64)
    return None


def _read_unchanged(path: Path) -> np.ndarray:
    import cv2

    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: cannot be read as an image")
    return image


def _as_labels(path: Path, array: np.ndarray) -> np.ndarray:
    if array.ndim != 2 or array.dtype.kind not in "iub":
        raise ValueError(f"{path}: not a single-channel integer label image (shape {array.shape}, dtype {array.dtype})")
    return array.astype(np.int64)


def pipeline_segmenter(config: SegmentConfig | None = None, *, with_hierarchy: bool = False) -> Segmenter:
    """A function image -> label image that runs :func:`segment.segment_image` with ``config``.

    With ``with_hierarchy`` it returns (label image, ucm2 of the merge hierarchy).
    """
    from segment.pipeline import segment_image

    cfg = config if config is not None else SegmentConfig()
    if with_hierarchy and "hierarchy" not in cfg.save:
        cfg = cfg.replace(save=(*cfg.save, "hierarchy"))

    def segment(image: np.ndarray):
        result = segment_image(image, cfg)
        if not with_hierarchy:
            return result.labels
        if result.hierarchy is None:
            raise ValueError("no merge hierarchy was computed (region merging is off)")
        return result.labels, result.hierarchy.ucm2()

    return segment


def evaluate_files(
    predictions: Iterable[str | os.PathLike],
    truth_dir: str | os.PathLike,
    segmenter: Segmenter | None = None,
    *,
    kind: str = "auto",
    boundary: bool = False,
    scales: Sequence[float] = DEFAULT_SCALES,
    on_result: Callable[[ImageResult | HierarchyResult], None] | None = None,
    on_failure: Callable[[str, str], None] | None = None,
) -> Evaluation:
    """Score label images, or images segmented on the fly, against their ground truths.

    Parameters
    ----------
    predictions : iterable of path-like
        Label images or images (folders are expanded, see :func:`expand_inputs`).
    truth_dir : path-like
        Folder with the ground truth of every image (see :func:`find_ground_truth`).
    segmenter : callable, optional
        Image array -> label image, for predictions that are images; defaults
        to the pipeline with default settings (:func:`pipeline_segmenter`).
    kind : {"auto", "labels", "images"}
        What the prediction files are; "auto" decides per file with
        :func:`load_prediction_labels` (``*_ucm2.png/.npy`` files are hierarchies).
    boundary : bool
        Also run the boundary benchmark (slower: a bipartite matching per
        annotator and scale).
    scales : sequence of float
        Increasing scales at which hierarchies are cut.
    on_result, on_failure : callable, optional
        Called after each scored prediction / with ``(path, message)`` after
        each failure, e.g. to report progress.

    Returns
    -------
    Evaluation
        Failures (unreadable files, missing ground truth, shape mismatch)
        are collected, not raised.
    """
    if kind not in PREDICTION_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PREDICTION_KINDS)}; got {kind!r}")
    segmenter = segmenter if segmenter is not None else pipeline_segmenter()
    evaluation = Evaluation()
    for path in expand_inputs(predictions):
        try:
            results = _evaluate_one(path, truth_dir, segmenter, kind, boundary, tuple(scales))
        except (ValueError, OSError, MemoryError, io.SegmentError) as exc:
            message = str(exc)
            message = message if message.startswith(str(path)) else f"{path}: {message}"
            evaluation.failures.append((str(path), message))
            if on_failure is not None:
                on_failure(str(path), message)
            continue
        for result in results:
            if isinstance(result, HierarchyResult):
                evaluation.hierarchies.append(result)
            else:
                evaluation.results.append(result)
            if on_result is not None:
                on_result(result)
    return evaluation


def _evaluate_one(
    path: Path, truth_dir, segmenter: Segmenter, kind: str, boundary: bool, scales: tuple[float, ...]
) -> list[ImageResult | HierarchyResult]:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    name = image_name(path)
    truths = metrics.load_ground_truth(find_ground_truth(truth_dir, name))
    humans = [metrics.human_boundaries(t) for t in truths] if boundary else None
    if kind != "images":
        ucm2 = load_prediction_ucm2(path)
        if ucm2 is not None:
            return [_score_hierarchy(name, str(path), ucm2, truths, humans, scales)]
    labels = None
    ucm2 = None
    if kind == "labels":
        labels = load_prediction_labels(path)
        if labels is None:
            labels = _as_labels(path, _read_unchanged(path))
    elif kind == "auto":
        labels = load_prediction_labels(path)
    seconds = None
    if labels is None:
        image = io.load_image(path)
        start = time.perf_counter()
        labels = segmenter(image)
        seconds = time.perf_counter() - start
        if isinstance(labels, tuple):
            labels, ucm2 = labels
    counts = metrics.boundary_counts([metrics.label_boundaries(labels)], humans) if humans is not None else None
    results: list[ImageResult | HierarchyResult] = [
        ImageResult(name, str(path), metrics.evaluate(labels, truths), seconds, counts)
    ]
    if ucm2 is not None:
        results.append(_score_hierarchy(name, str(path), ucm2, truths, humans, scales))
    return results


def _score_hierarchy(name: str, path: str, ucm2: np.ndarray, truths, humans, scales) -> HierarchyResult:
    shape = truths[0].shape
    if ucm2.shape != (2 * shape[0] + 1, 2 * shape[1] + 1):
        raise ValueError(f"{path}: ucm2 of shape {ucm2.shape} does not fit the ground truth's {shape}")
    scores = tuple(metrics.evaluate(hierarchy.cut_ucm2(ucm2, scale), truths) for scale in scales)
    counts = None
    if humans is not None:
        counts = metrics.soft_boundary_counts(metrics.ucm_strength(ucm2), humans, scales)
    return HierarchyResult(name, path, tuple(float(s) for s in scales), scores, counts)


def bsds_split(root: str | os.PathLike, split: str) -> tuple[list[Path], Path]:
    """The images of one BSDS500 split and its ground-truth folder.

    Parameters
    ----------
    root : path-like
        The data set folder, holding ``images/<split>/*.jpg`` and
        ``groundTruth/<split>/*.mat``.
    split : str
        ``"train"``, ``"val"`` or ``"test"``.

    Raises
    ------
    ValueError
        If the split's folders are missing or empty.
    """
    root = Path(root)
    image_dir, truth_dir = root / "images" / split, root / "groundTruth" / split
    if not image_dir.is_dir() or not truth_dir.is_dir():
        raise ValueError(f"{root}: no BSDS500 split {split!r} (expected images/{split}/ and groundTruth/{split}/)")
    images = sorted(image_dir.glob("*.jpg"), key=lambda p: p.name)
    if not images:
        raise ValueError(f"{image_dir}: no .jpg images")
    return images, truth_dir
