"""The BSDS500 boundary benchmark: precision, recall and F-measure of boundary pixels.

A machine boundary map is thinned to one-pixel-wide curves, then its pixels
are matched one-to-one to the boundary pixels of each human annotation: two
pixels may be matched when they are at most ``max_dist`` times the image
diagonal apart, and among the matchings with the most pairs the one with the
least total distance is taken (the benchmark's minimum-cost assignment, whose
cost of leaving a pixel unmatched is far above any distance). Counts are
accumulated over the annotators as the benchmark does:

- recall: matched human pixels summed over annotators / human pixels summed
  over annotators;
- precision: machine pixels matched to at least one annotator / machine pixels.

Over thresholds of a soft boundary map (or the levels of a hierarchy),
:func:`summarize_boundaries` gives the benchmark's figures: ODS (one threshold
for the data set, F of the pooled counts), OIS (each image at its best
threshold) and AP (area under the interpolated precision-recall curve).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_DIST = 0.0075  # matching tolerance, a fraction of the image diagonal


def benchmark_thresholds(n: int) -> np.ndarray:
    """The benchmark's ``n`` thresholds of a [0, 1] boundary map: ``k / (n + 1)``, k = 1..n.

    Examples
    --------
    >>> benchmark_thresholds(5).round(3).tolist()
    [0.167, 0.333, 0.5, 0.667, 0.833]
    """
    return np.linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)


def label_boundaries(labels: np.ndarray) -> np.ndarray:
    """Boundary pixels of a label image, as the benchmark draws them (``seg2bdry``, image size).

    A pixel is on a boundary when its label differs from the pixel below or to
    its right, or (at a junction) from a diagonal neighbour's pair; the last
    row and column take the boundary of the row/column before.

    Parameters
    ----------
    labels : (H, W) int ndarray

    Returns
    -------
    (H, W) bool ndarray

    Examples
    --------
    >>> label_boundaries(np.array([[1, 1, 2, 2]] * 3)).astype(int)
    array([[0, 1, 0, 0],
           [0, 1, 0, 0],
           [0, 1, 0, 0]])
    """
    labels = np.asarray(labels)
    height, width = labels.shape
    vertical = np.zeros((height, width), dtype=bool)  # differs from the pixel below
    vertical[:-1] = labels[:-1] != labels[1:]
    horizontal = np.zeros((height, width), dtype=bool)  # differs from the pixel to the right
    horizontal[:, :-1] = labels[:, :-1] != labels[:, 1:]
    doubled = np.zeros((2 * height + 1, 2 * width + 1), dtype=bool)
    doubled[2::2, 1::2] = vertical
    doubled[1::2, 2::2] = horizontal
    doubled[2:-1:2, 2:-1:2] = (
        horizontal[:-1, :-1] | horizontal[1:, :-1] | vertical[:-1, :-1] | vertical[:-1, 1:]
    )
    doubled[0], doubled[:, 0] = doubled[1], doubled[:, 1]
    doubled[-1], doubled[:, -1] = doubled[-2], doubled[:, -2]
    return doubled[2::2, 2::2].copy()


def thin_boundaries(boundaries: np.ndarray) -> np.ndarray:
    """One-pixel-wide boundaries: morphological thinning until nothing changes (MATLAB's ``bwmorph thin inf``)."""
    from skimage.morphology import thin

    return thin(np.asarray(boundaries, dtype=bool))


def match_boundaries(
    machine: np.ndarray, human: np.ndarray, max_dist: float = MAX_DIST, *, exact: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of the boundary pixels of two maps within a tolerance.

    Among the matchings with the most pairs within ``max_dist`` times the image
    diagonal (Euclidean distance, bound included), the one of least total
    distance.

    Parameters
    ----------
    machine, human : (H, W) bool ndarray
        Boundary maps of the same shape.
    max_dist : float
        Tolerance as a fraction of the image diagonal.
    exact : bool
        Break ties between matchings with the most pairs by least total
        distance, as the benchmark does; False takes any of them (several
        times faster; the human pixels matched are as many, the machine
        pixels matched may differ).

    Returns
    -------
    matched_machine, matched_human : (H, W) bool ndarray
        The pixels of each map that have a partner.

    Examples
    --------
    >>> a = np.zeros((20, 20), bool); a[:, 5] = True
    >>> b = np.zeros((20, 20), bool); b[:10, 6] = True
    >>> m, h = match_boundaries(a, b, 0.05)
    >>> int(m.sum()), int(h.sum())
    (10, 10)
    """
    machine, human = np.asarray(machine, dtype=bool), np.asarray(human, dtype=bool)
    if machine.shape != human.shape or machine.ndim != 2:
        raise ValueError(f"boundary maps must be 2-D and of one shape; got {machine.shape} and {human.shape}")
    radius = max_dist * float(np.hypot(*machine.shape))
    first, second, distance = _candidate_pairs(machine, human, radius)
    matched_machine = np.zeros(machine.shape, dtype=bool)
    matched_human = np.zeros(human.shape, dtype=bool)
    if len(first):
        pairs = _least_cost_matching(first, second, distance, exact)
        matched_machine.flat[first[pairs]] = True
        matched_human.flat[second[pairs]] = True
    return matched_machine, matched_human


def _candidate_pairs(machine: np.ndarray, human: np.ndarray, radius: float):
    """Flat indices of every (machine, human) pixel pair within ``radius``, and their distances."""
    height, width = machine.shape
    rows, cols = np.nonzero(machine)
    reach = int(np.floor(radius))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    inside = dy**2 + dx**2 <= radius**2
    first, second, distance = [], [], []
    for oy, ox in zip(dy[inside], dx[inside]):
        y, x = rows + oy, cols + ox
        ok = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        ok[ok] = human[y[ok], x[ok]]
        first.append(rows[ok] * width + cols[ok])
        second.append(y[ok] * width + x[ok])
        distance.append(np.full(int(ok.sum()), np.hypot(oy, ox)))
    return np.concatenate(first), np.concatenate(second), np.concatenate(distance)


def _least_cost_matching(first: np.ndarray, second: np.ndarray, distance: np.ndarray, exact: bool = True) -> np.ndarray:
    """Which candidate pairs the matching keeps, (P,) bool.

    ``exact``: the most pairs, and among those the least total distance. Every
    machine pixel gets a stand-in partner of its own that costs more than all
    candidate pairs together, and a minimum-weight full matching of the machine
    pixels is solved (LAPJVsp). Otherwise any matching with the most pairs
    (Hopcroft-Karp).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching, min_weight_full_bipartite_matching

    _, i = np.unique(first, return_inverse=True)
    _, j = np.unique(second, return_inverse=True)
    n1, n2 = int(i.max()) + 1, int(j.max()) + 1
    if not exact:
        graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n1, n2)).tocsr()
        return maximum_bipartite_matching(graph, perm_type="column")[i] == j
    stand_in = float(distance.sum()) + 2.0
    rows = np.concatenate([i, np.arange(n1)])
    cols = np.concatenate([j, n2 + np.arange(n1)])
    # Weights shifted by +1: the sparse format would drop a zero distance.
    weights = np.concatenate([distance + 1.0, np.full(n1, stand_in)])
    graph = coo_matrix((weights, (rows, cols)), shape=(n1, n2 + n1)).tocsr()
    _, partner = min_weight_full_bipartite_matching(graph)
    return partner[i] == j


@dataclass(frozen=True)
class BoundaryCounts:
    """The benchmark's counts of one image at each threshold, (T,) int64 arrays.

    Attributes
    ----------
    matched_human : human boundary pixels matched, summed over annotators (cntR)
    human : human boundary pixels, summed over annotators (sumR)
    matched_machine : machine boundary pixels matched to some annotator (cntP)
    machine : machine boundary pixels (sumP)
    """

    matched_human: np.ndarray
    human: np.ndarray
    matched_machine: np.ndarray
    machine: np.ndarray

    @property
    def recall(self) -> np.ndarray:
        return _ratio(self.matched_human, self.human)

    @property
    def precision(self) -> np.ndarray:
        return _ratio(self.matched_machine, self.machine)


def boundary_counts(
    machine_maps: Sequence[np.ndarray],
    human_maps: Sequence[np.ndarray],
    max_dist: float = MAX_DIST,
    *,
    thin: bool = True,
    exact: bool = True,
) -> BoundaryCounts:
    """Count matches of each machine boundary map (one per threshold) against every annotator.

    Parameters
    ----------
    machine_maps : sequence of (H, W) bool ndarray
        The machine's boundary map at each threshold.
    human_maps : sequence of (H, W) bool ndarray
        The boundary map of each human annotation.
    max_dist : float
        Tolerance as a fraction of the image diagonal.
    thin : bool
        Thin each machine map first, as the benchmark does.
    exact : bool
        See :func:`match_boundaries`.

    Returns
    -------
    BoundaryCounts
    """
    if len(human_maps) == 0:
        raise ValueError("the boundary benchmark needs at least one human boundary map")
    humans = [np.asarray(h, dtype=bool) for h in human_maps]
    counts = np.zeros((4, len(machine_maps)), dtype=np.int64)
    for t, machine in enumerate(machine_maps):
        machine = thin_boundaries(machine) if thin else np.asarray(machine, dtype=bool)
        matched_any = np.zeros(machine.shape, dtype=bool)
        for human in humans:
            matched_machine, matched_human = match_boundaries(machine, human, max_dist, exact=exact)
            matched_any |= matched_machine
            counts[0, t] += int(matched_human.sum())
            counts[1, t] += int(human.sum())
        counts[2, t] = int(matched_any.sum())
        counts[3, t] = int(machine.sum())
    return BoundaryCounts(*counts)


def soft_boundary_counts(
    strength: np.ndarray,
    human_maps: Sequence[np.ndarray],
    thresholds: Sequence[float],
    max_dist: float = MAX_DIST,
    *,
    exact: bool = True,
) -> BoundaryCounts:
    """:func:`boundary_counts` of a soft boundary map thresholded (``strength >= t``) at each threshold.

    For a hierarchy in the ucm2 convention pass ``ucm_strength(ucm2)``.
    """
    strength = np.asarray(strength, dtype=np.float64)
    return boundary_counts([strength >= t for t in thresholds], human_maps, max_dist, exact=exact)


def ucm_strength(ucm2: np.ndarray) -> np.ndarray:
    """The image-size boundary strength the benchmark reads from a ucm2 map: ``ucm2[2::2, 2::2]``."""
    return np.asarray(ucm2)[2::2, 2::2]


@dataclass(frozen=True)
class BoundarySummary:
    """The benchmark's data-set figures.

    Attributes
    ----------
    ods_threshold, ods_recall, ods_precision, ods_f : float
        Best F of the counts pooled over images, interpolating linearly
        between adjacent thresholds (as the benchmark does).
    ois_recall, ois_precision, ois_f : float
        Counts pooled over images, each at its own best threshold.
    ap : float
        Area under the pooled precision-recall curve (0 with one threshold).
    """

    ods_threshold: float
    ods_recall: float
    ods_precision: float
    ods_f: float
    ois_recall: float
    ois_precision: float
    ois_f: float
    ap: float


def f_measure(recall, precision):
    """Harmonic mean ``2 P R / (P + R)``, 0 where both are 0."""
    recall, precision = np.asarray(recall, dtype=np.float64), np.asarray(precision, dtype=np.float64)
    total = recall + precision
    return 2 * precision * recall / np.where(total == 0, 1.0, total)


def best_f(thresholds: Sequence[float], recall: np.ndarray, precision: np.ndarray) -> tuple[float, float, float, float]:
    """(threshold, recall, precision, F) at the best F along the curve, interpolated between thresholds.

    Each segment between adjacent thresholds is sampled at 100 evenly spaced
    points, as the benchmark's ``maxF`` does; the first best point wins.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    if len(thresholds) == 1:
        return float(thresholds[0]), float(recall[0]), float(precision[0]), float(f_measure(recall[0], precision[0]))
    d = np.linspace(0.0, 1.0, 100)[None, :]
    lerp = [(v[1:, None] * d + v[:-1, None] * (1 - d)).ravel() for v in (thresholds, recall, precision)]
    t, r, p = (np.concatenate([v[:1], w]) for v, w in zip((thresholds, recall, precision), lerp))
    f = f_measure(r, p)
    k = int(np.argmax(f))
    return float(t[k]), float(r[k]), float(p[k]), float(f[k])


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under precision(recall), interpolated linearly at recall 0, 0.01, ..., 1 (0 outside the curve)."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    unique_recall, first = np.unique(recall, return_index=True)
    if len(unique_recall) < 2:
        return 0.0
    grid = np.linspace(0.0, 1.0, 101)
    interpolated = np.interp(grid, unique_recall, precision[first], left=0.0, right=0.0)
    return float(np.sum(interpolated) * 0.01)


def summarize_boundaries(counts: Sequence[BoundaryCounts], thresholds: Sequence[float]) -> BoundarySummary:
    """ODS, OIS and AP of per-image counts at common thresholds (or hierarchy levels).

    Parameters
    ----------
    counts : sequence of BoundaryCounts
        One per image, each with one entry per threshold.
    thresholds : sequence of float
        The thresholds, in increasing order.

    Returns
    -------
    BoundarySummary
    """
    if len(counts) == 0:
        raise ValueError("summarize_boundaries needs the counts of at least one image")
    stacked = np.stack([[c.matched_human, c.human, c.matched_machine, c.machine] for c in counts])  # (I, 4, T)
    pooled = stacked.sum(axis=0)
    recall, precision = _ratio(pooled[0], pooled[1]), _ratio(pooled[2], pooled[3])
    ods = best_f(thresholds, recall, precision)
    per_image_f = f_measure(_ratio(stacked[:, 0], stacked[:, 1]), _ratio(stacked[:, 2], stacked[:, 3]))
    # The last of the tied best thresholds, as the benchmark's collect_eval_bdry takes it.
    last_best = per_image_f.shape[1] - 1 - np.argmax(per_image_f[:, ::-1], axis=1)
    best = stacked[np.arange(len(stacked)), :, last_best].sum(axis=0)
    ois_recall, ois_precision = float(_ratio(best[0], best[1])), float(_ratio(best[2], best[3]))
    return BoundarySummary(
        *ods, ois_recall, ois_precision, float(f_measure(ois_recall, ois_precision)), average_precision(recall, precision)
    )


def _ratio(numerator, denominator):
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    return numerator / np.where(denominator == 0, 1.0, denominator)
