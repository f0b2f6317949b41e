"""BSDS500 region benchmarks: Probabilistic Rand Index, Variation of Information
and Segmentation Covering (see the BSDS500 README for the definitions); the
boundary benchmark (:mod:`segment.boundary_metrics`) is re-exported here.

Every measure is computed from the contingency table of a predicted label image
against one human segmentation; label values need not be consecutive.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segment.boundary_metrics import (  # noqa: F401  (the boundary benchmark, re-exported)
    MAX_DIST,
    BoundaryCounts,
    BoundarySummary,
    benchmark_thresholds,
    boundary_counts,
    f_measure,
    label_boundaries,
    match_boundaries,
    soft_boundary_counts,
    summarize_boundaries,
    thin_boundaries,
    ucm_strength,
)

_LABEL_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".pgm")


def contingency_table(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Count the pixels shared by each pair of predicted and true labels.

    Parameters
    ----------
    pred, truth : numpy.ndarray
        Integer label images of the same, non-empty shape.

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(n_pred_labels, n_truth_labels)``; entry ``[u, v]``
        counts pixels with the u-th smallest label of ``pred`` and the v-th of ``truth``.

    Examples
    --------
    >>> contingency_table(np.array([[1, 1, 2]]), np.array([[5, 6, 6]])).tolist()
    [[1, 1], [0, 1]]
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    _check_pair(pred, truth)
    return _table(_compact(pred), _compact(truth))


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.shape != truth.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs truth {truth.shape}")
    for name, image in (("pred", pred), ("truth", truth)):
        if image.dtype.kind not in "iub" or image.size == 0:
            raise ValueError(f"{name} must be a non-empty integer label image")


def _compact(labels: np.ndarray) -> tuple[int, np.ndarray]:
    """Number of distinct labels, and each pixel's rank among them (0-based, by value)."""
    flat = labels.ravel()
    if flat.dtype.kind == "b":
        flat = flat.astype(np.int64)
    low, high = int(flat.min()), int(flat.max())
    if high - low <= 4 * flat.size:  # dense labels: a lookup table is faster than sorting
        offset = flat.astype(np.int64) - low if low else flat
        present = np.bincount(offset, minlength=high - low + 1) > 0
        rank = np.cumsum(present) - 1
        return int(rank[-1]) + 1, rank[offset]
    values, index = np.unique(flat, return_inverse=True)
    return values.size, index.ravel()


def _table(pred: tuple[int, np.ndarray], truth: tuple[int, np.ndarray]) -> np.ndarray:
    """Contingency table from two outputs of :func:`_compact`."""
    (n_pred, pred_index), (n_truth, truth_index) = pred, truth
    pair_index = pred_index.astype(np.int64) * n_truth + truth_index
    counts = np.bincount(pair_index, minlength=n_pred * n_truth)
    return counts.astype(np.int64, copy=False).reshape(n_pred, n_truth)


def _rand_index_from_table(table: np.ndarray) -> float:
    """RI = 1 - (sum a_u^2 / 2 + sum b_v^2 / 2 - sum n_uv^2) / (N (N - 1) / 2)."""
    n = float(table.sum())
    if n < 2:
        return 1.0
    table = table.astype(np.float64)
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    disagreeing = np.sum(rows**2) / 2 + np.sum(cols**2) / 2 - np.sum(table**2)
    return float(1.0 - disagreeing / (n * (n - 1) / 2))


def _variation_of_information_from_table(table: np.ndarray) -> float:
    """VoI in bits as H(S|G) + H(G|S), which equals H(S) + H(G) - 2 I(S; G)."""
    rows, cols = np.nonzero(table)
    joint = table[rows, cols].astype(np.float64)
    row_sums = table.sum(axis=1)[rows]
    col_sums = table.sum(axis=0)[cols]
    weights = joint / joint.sum()
    return float(-np.sum(weights * (np.log2(joint / row_sums) + np.log2(joint / col_sums))))


def _covering_terms_from_table(table: np.ndarray) -> tuple[float, int]:
    """Sum over truth regions (columns) of |R| * best IoU, and the pixel count."""
    rows, cols = np.nonzero(table)
    overlap = table[rows, cols].astype(np.float64)
    pred_sizes, truth_sizes = table.sum(axis=1), table.sum(axis=0)
    iou = overlap / (pred_sizes[rows] + truth_sizes[cols] - overlap)
    best_iou = np.zeros(table.shape[1])
    np.maximum.at(best_iou, cols, iou)
    return float(np.sum(truth_sizes * best_iou)), int(truth_sizes.sum())


def rand_index(pred: np.ndarray, truth: np.ndarray) -> float:
    """Rand index: fraction of pixel pairs grouped alike by ``pred`` and ``truth``.

    Parameters
    ----------
    pred, truth : numpy.ndarray
        Integer label images of the same shape.

    Returns
    -------
    float
        Value in [0, 1]; 1 for identical partitions.

    Examples
    --------
    >>> rand_index(np.array([[1, 1, 2, 2]]), np.array([[7, 7, 3, 3]]))
    1.0
    >>> round(rand_index(np.array([[1, 1, 2, 2]]), np.array([[1, 2, 2, 2]])), 4)
    0.5
    """
    return _rand_index_from_table(contingency_table(pred, truth))


def variation_of_information(pred: np.ndarray, truth: np.ndarray) -> float:
    """Variation of Information ``H(pred) + H(truth) - 2 I(pred; truth)`` in bits.

    Parameters
    ----------
    pred, truth : numpy.ndarray
        Integer label images of the same shape.

    Returns
    -------
    float
        Non-negative value; 0 for identical partitions.

    Examples
    --------
    >>> variation_of_information(np.array([[1, 1, 2, 2]]), np.array([[7, 7, 3, 3]])) == 0
    True
    >>> variation_of_information(np.array([[1, 1, 1, 1]]), np.array([[1, 1, 2, 2]]))
    1.0
    """
    return _variation_of_information_from_table(contingency_table(pred, truth))


def covering_terms(pred: np.ndarray, truth: np.ndarray) -> tuple[float, int]:
    """Poolable terms of the covering of ``truth`` by ``pred``.

    Parameters
    ----------
    pred, truth : numpy.ndarray
        Integer label images of the same shape.

    Returns
    -------
    tuple of (float, int)
        Sum over regions R of ``truth`` of ``|R| * max_R' IoU(R, R')`` with R' a
        region of ``pred``, and the number of pixels (the sum of ``|R|``).

    Examples
    --------
    >>> covering_terms(np.array([[1, 1, 2, 2]]), np.array([[1, 1, 1, 2]]))
    (2.5, 4)
    """
    return _covering_terms_from_table(contingency_table(pred, truth))


@dataclass(frozen=True)
class ImageScores:
    """Scores of one segmentation against the human segmentations of its image."""

    pri: float
    voi: float
    covering_sum: float
    covering_total: int
    n_segments: int

    @property
    def covering(self) -> float:
        """Covering of this image's annotations: ``covering_sum / covering_total``."""
        return self.covering_sum / self.covering_total


@dataclass(frozen=True)
class DatasetScores:
    """Dataset figures: mean PRI, mean VoI, pooled covering, mean segment count."""

    pri: float
    voi: float
    covering: float
    n_segments: float
    n_images: int


def evaluate(pred: np.ndarray, truths: Sequence[np.ndarray]) -> ImageScores:
    """Score one segmentation against the M human segmentations of its image.

    Parameters
    ----------
    pred : numpy.ndarray
        Integer label image.
    truths : sequence of numpy.ndarray
        Human segmentations, each of the same shape as ``pred``.

    Returns
    -------
    ImageScores
        PRI and VoI averaged over ``truths``; covering terms summed over them.

    Examples
    --------
    >>> truth = np.array([[1, 1, 2, 2]])
    >>> scores = evaluate(np.array([[5, 5, 6, 6]]), [truth, truth])
    >>> scores.pri, scores.voi, scores.covering, scores.n_segments
    (1.0, 0.0, 1.0, 2)
    """
    if len(truths) == 0:
        raise ValueError("evaluate needs at least one ground-truth segmentation")
    pred = np.asarray(pred)
    for truth in truths:
        _check_pair(pred, np.asarray(truth))
    compact_pred = _compact(pred)
    tables = [_table(compact_pred, _compact(np.asarray(truth))) for truth in truths]
    terms = [_covering_terms_from_table(table) for table in tables]
    return ImageScores(
        pri=float(np.mean([_rand_index_from_table(t) for t in tables])),
        voi=float(np.mean([_variation_of_information_from_table(t) for t in tables])),
        covering_sum=float(sum(weighted for weighted, _ in terms)),
        covering_total=sum(total for _, total in terms),
        n_segments=tables[0].shape[0],
    )


def summarize(scores: Sequence[ImageScores]) -> DatasetScores:
    """Combine per-image scores into dataset figures.

    Parameters
    ----------
    scores : sequence of ImageScores
        One entry per image.

    Returns
    -------
    DatasetScores
        Means over images of PRI, VoI and segment count; covering pooled as
        ``sum(covering_sum) / sum(covering_total)``.

    Examples
    --------
    >>> perfect = evaluate(np.array([[1, 1, 2, 2]]), [np.array([[1, 1, 2, 2]])])
    >>> one_region = evaluate(np.array([[1, 1, 1, 1]]), [np.array([[1, 1, 2, 2]])])
    >>> summary = summarize([perfect, one_region])
    >>> summary.n_images, summary.voi, summary.n_segments
    (2, 0.5, 1.5)
    """
    if len(scores) == 0:
        raise ValueError("summarize needs at least one ImageScores")
    return DatasetScores(
        pri=float(np.mean([s.pri for s in scores])),
        voi=float(np.mean([s.voi for s in scores])),
        covering=sum(s.covering_sum for s in scores) / sum(s.covering_total for s in scores),
        n_segments=float(np.mean([s.n_segments for s in scores])),
        n_images=len(scores),
    )


def _load_mat(path: Path) -> list[np.ndarray]:
    """Read the ``Segmentation`` of every cell of a BSDS ``groundTruth`` array."""
    import scipy.io

    errors = (scipy.io.matlab.MatReadError, NotImplementedError, OSError, ValueError,
              KeyError, IndexError, TypeError)
    try:
        cells = scipy.io.loadmat(str(path))["groundTruth"].ravel()
        return [np.asarray(cell["Segmentation"][0, 0], dtype=np.int64) for cell in cells]
    except errors as exc:
        raise ValueError(f"{path}: not a readable BSDS ground-truth file ({exc})") from exc


def _load_label_image(path: Path) -> np.ndarray:
    """Read one single-channel integer label image."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: cannot be read as an image")
    if image.ndim != 2 or image.dtype.kind not in "iu":
        raise ValueError(f"{path}: not a single-channel integer label image "
                         f"(shape {image.shape}, dtype {image.dtype})")
    return image.astype(np.int64)


def load_ground_truth(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Load the human segmentations of one image.

    Parameters
    ----------
    path : str or os.PathLike
        A BSDS500 ``.mat`` file (all its annotations), one label image file
        (PNG/TIFF; one annotation) or a directory of label images (one
        annotation per file, in name order).

    Returns
    -------
    list of numpy.ndarray
        (H, W) int64 label images.

    Raises
    ------
    ValueError
        If the path is missing or unreadable, or holds no annotation.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from segment.io import write_png
    >>> path = Path(tempfile.mkdtemp()) / "truth.png"
    >>> _ = write_png(path, np.array([[1, 1, 2]], np.uint8))
    >>> [truth.tolist() for truth in load_ground_truth(path)]
    [[[1, 1, 2]]]
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _LABEL_IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{path}: directory contains no label images")
        return [_load_label_image(p) for p in files]
    if not path.is_file():
        raise ValueError(f"{path}: no such file or directory")
    truths = _load_mat(path) if path.suffix.lower() == ".mat" else [_load_label_image(path)]
    if not truths:
        raise ValueError(f"{path}: contains no annotations")
    return truths


@dataclass(frozen=True)
class ScaleSummary:
    """Region benchmark figures over the scales (thresholds) of a hierarchy, as the BSDS benchmark reports them.

    ODS: one scale for the data set (the best of the dataset figure over
    scales); OIS: each image at its own best scale.
    """

    pri_ods_scale: float
    pri_ods: float
    pri_ois: float
    voi_ods_scale: float
    voi_ods: float
    voi_ois: float
    covering_ods_scale: float
    covering_ods: float
    covering_ois: float


def summarize_scales(per_image: Sequence[Sequence[ImageScores]], scales: Sequence[float]) -> ScaleSummary:
    """ODS and OIS of PRI (higher is better), VoI (lower) and covering (higher, pooled).

    Parameters
    ----------
    per_image : sequence of sequences of ImageScores
        For each image, its scores at each of the ``scales``.
    scales : sequence of float
        The scales, in increasing order.

    Returns
    -------
    ScaleSummary
        Ties go to the smallest scale for ODS and, per image, to the largest
        for OIS (as the benchmark's ``collect_eval_reg``).

    Examples
    --------
    >>> coarse, fine = ImageScores(0.7, 2.0, 5.0, 10, 3), ImageScores(0.8, 1.5, 6.0, 10, 9)
    >>> summary = summarize_scales([[coarse, fine], [fine, coarse]], [0.2, 0.8])
    >>> summary.pri_ods, round(summary.pri_ois, 2)
    (0.75, 0.8)
    """
    if len(per_image) == 0:
        raise ValueError("summarize_scales needs the scores of at least one image")
    pri = np.array([[s.pri for s in image] for image in per_image])  # (I, T)
    voi = np.array([[s.voi for s in image] for image in per_image])
    cover_sum = np.array([[s.covering_sum for s in image] for image in per_image])
    cover_total = np.array([[s.covering_total for s in image] for image in per_image], dtype=np.float64)
    scales = np.asarray(scales, dtype=np.float64)
    pri_t, voi_t = int(np.argmax(pri.mean(axis=0))), int(np.argmin(voi.mean(axis=0)))
    pooled = cover_sum.sum(axis=0) / cover_total.sum(axis=0)
    cover_t = int(np.argmax(pooled))
    per_image_cover = cover_sum / cover_total
    last_best = per_image_cover.shape[1] - 1 - np.argmax(per_image_cover[:, ::-1], axis=1)
    rows = np.arange(len(per_image_cover))
    return ScaleSummary(
        float(scales[pri_t]), float(pri.mean(axis=0)[pri_t]), float(pri.max(axis=1).mean()),
        float(scales[voi_t]), float(voi.mean(axis=0)[voi_t]), float(voi.min(axis=1).mean()),
        float(scales[cover_t]), float(pooled[cover_t]),
        float(cover_sum[rows, last_best].sum() / cover_total[rows, last_best].sum()),
    )


def human_boundaries(truth: np.ndarray) -> np.ndarray:
    """The boundary map of a human segmentation as BSDS500 stores it: thinned ``label_boundaries``, (H, W) bool.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.ones((4, 6), dtype=int); truth[:, 3:] = 2
    >>> human_boundaries(truth).any(axis=0).astype(int).tolist()
    [0, 0, 1, 0, 0, 0]
    """
    return thin_boundaries(label_boundaries(truth))
