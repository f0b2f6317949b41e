"""Greedy merging of adjacent regions under a learned merge cost.

Each pair of 4-adjacent regions is described by ten terms: how far apart
their colours are (distance of the means, chi-squared distance of the colour
histograms), how strong the image edge is along their shared border (at the
pixel scale and after a Gaussian blur that wipes out fine texture), how
large the two regions are, how much border they share, and how textured each
is. A linear function of these terms (:data:`MERGE_WEIGHTS`) is the log-odds
that the two regions are parts of one object; the merge cost is the inverse
odds, ``exp(-log_odds)``, and pairs are merged cheapest first while the cost
is below a threshold (1: merge while "one object" is the likelier answer).
The weights are a logistic regression fitted on BSDS500 train by
``scripts/fit_merge_cost.py``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np

from segment.postprocess import BACKGROUND, _merge_edges

MERGE_TERMS = (
    "colour_distance",  # log distance of the mean colours (Delta E for Lab)
    "edge",  # log mean edge strength along the shared border
    "coarse_edge",  # the same after a Gaussian blur of COARSE_SIGMA pixels
    "histogram_distance",  # log chi-squared distance of the colour histograms
    "small_share",  # log of the smaller region's share of the image
    "large_share",  # log of the larger region's share
    "contact",  # log shared border length over the square root of the smaller area
    "small_texture",  # log mean edge strength inside the smaller region
    "large_texture",  # log mean edge strength inside the larger region
    "texture_ratio",  # absolute difference of the two texture terms
)
# Fitted by scripts/fit_merge_cost.py on the 200 BSDS500 train images.
MERGE_WEIGHTS = {
    "colour_distance": 0.307,  # positive given the histogram distance, with which it is correlated
    "edge": -0.442,
    "coarse_edge": -1.164,
    "histogram_distance": -1.066,
    "small_share": -0.223,
    "large_share": -0.458,
    "contact": 0.367,
    "small_texture": 0.176,
    "large_texture": -0.137,
    "texture_ratio": -0.485,
    "intercept": -1.236,
}
COARSE_SIGMA = 4.0
HISTOGRAM_BINS = 6  # per colour channel, over the image's range of that channel
_EPSILON = 1e-3  # keeps the log of a zero distance or edge finite
_TEXTURE_FLOOR = 0.1  # the same for the texture of a flat region


def merge_similar_regions(
    labels: np.ndarray,
    features: np.ndarray,
    max_cost: float,
    *,
    weights: dict[str, float] | None = None,
    on_merge: Callable[[int, int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Merge adjacent regions that are likely parts of one object, most likely first.

    Greedy agglomeration over the 4-connected regions: the adjacent pair
    with the lowest merge cost is merged, the terms of the merged region's
    pairs are updated, and merging stops when no adjacent pair costs less
    than ``max_cost``. The cost is ``exp(-(w . terms + intercept))``, the
    odds against the pair being one object under the weights (see the module
    docstring for the terms). A merged region keeps the label of the larger
    of the two, so labels stay valid class ids. Background (0) is never
    merged nor merged into.

    Parameters
    ----------
    labels : (H, W) int ndarray
    features : (H, W, C) or (H, W) ndarray
        Per-pixel colour values, e.g. Lab (distances are then CIE76 Delta E).
    max_cost : float
        Merge while the cheapest pair costs less; 0 skips the step. 1 merges
        while "one object" has odds above even.
    weights : dict of str to float, optional
        A weight for each name in :data:`MERGE_TERMS` plus ``"intercept"``;
        defaults to :data:`MERGE_WEIGHTS`.
    on_merge : callable, optional
        Called as ``on_merge(source, target, terms)`` before each merge, with
        the two regions' ids (4-connected regions numbered 0.. in raster
        order of their first pixel, as :func:`region_ids` gives them) and the
        pair's terms; ``scripts/fit_merge_cost.py`` learns the weights from it.

    Returns
    -------
    labels : (H, W) int32 ndarray
        A new array; the set of labels used can only shrink.
    """
    labels = np.asarray(labels, dtype=np.int32)
    if max_cost <= 0:
        return labels.copy()
    weights = MERGE_WEIGHTS if weights is None else weights
    coefficients = np.array([weights[name] for name in MERGE_TERMS])
    regions = _Regions(labels, features)
    min_log_odds = -math.log(max_cost)

    def log_odds(us: np.ndarray, vs: np.ndarray, border: np.ndarray) -> np.ndarray:
        return regions.terms(us, vs, border) @ coefficients + weights["intercept"]

    version = [0] * regions.n_regions
    us, vs, border = regions.adjacent_pairs()
    heap = [(-s, u, v, 0, 0) for s, u, v in zip(log_odds(us, vs, border).tolist(), us.tolist(), vs.tolist()) if s > min_log_odds]
    heapq.heapify(heap)
    while heap:
        _, u, v, version_u, version_v = heapq.heappop(heap)
        if version[u] != version_u or version[v] != version_v or regions.parent[u] != u or regions.parent[v] != v:
            continue
        source, target = (u, v) if (regions.size[u], v) < (regions.size[v], u) else (v, u)
        if on_merge is not None:
            on_merge(source, target, regions.terms(np.array([u]), np.array([v]), regions.border_sums(u, [v]))[0])
        regions.merge(source, target)
        version[target] += 1
        others = [w for w in regions.borders[target] if regions.movable[w]]
        if not others:
            continue
        scores = log_odds(np.full(len(others), target), np.array(others), regions.border_sums(target, others))
        for s, other in zip(scores.tolist(), others):
            if s > min_log_odds:
                low, high = min(target, other), max(target, other)
                heapq.heappush(heap, (-s, low, high, version[low], version[high]))
    return regions.merged_labels()


def region_ids(labels: np.ndarray) -> np.ndarray:
    """The 4-connected regions of equal label numbered 0..R-1 in raster order of their first pixel, (H, W) int32."""
    from segment._region_kernels import connected_regions

    return connected_regions(np.ascontiguousarray(labels, dtype=np.int32), -1) - 1


def edge_strength(features: np.ndarray) -> np.ndarray:
    """Per-pixel gradient magnitude of a feature image (Sobel over all channels), (H, W) float32.

    Scaled to feature units: across a sharp step of height ``h`` between two
    pixels both get ``h``; a gentle shading gradient gets its change over two
    pixels, which is small.
    """
    import cv2

    values = _channels_last(features)
    squared = np.zeros(values.shape[:2], dtype=np.float32)
    for channel in range(values.shape[2]):
        plane = np.ascontiguousarray(values[:, :, channel])
        squared += cv2.Sobel(plane, cv2.CV_32F, 1, 0, ksize=3) ** 2 + cv2.Sobel(plane, cv2.CV_32F, 0, 1, ksize=3) ** 2
    # The 3x3 Sobel kernel is 8 times the central difference, which spans two pixels: a step h gives 4h.
    return np.sqrt(squared) / np.float32(4.0)


def coarse_edge_strength(features: np.ndarray, sigma: float = COARSE_SIGMA) -> np.ndarray:
    """:func:`edge_strength` of the features blurred by a Gaussian of ``sigma`` pixels (edges of objects, not of texture)."""
    import cv2

    values = _channels_last(features)
    blurred = np.stack(
        [cv2.GaussianBlur(np.ascontiguousarray(values[:, :, c]), (0, 0), sigma) for c in range(values.shape[2])], axis=2
    )
    return edge_strength(blurred)


def _channels_last(features: np.ndarray) -> np.ndarray:
    values = np.asarray(features, dtype=np.float32)
    return values.reshape(*values.shape[:2], -1)


class _Regions:
    """The 4-connected regions of a label map with what the merge terms need, kept up to date under merging."""

    def __init__(self, labels: np.ndarray, features: np.ndarray) -> None:
        from segment._region_kernels import boundary_strengths, region_histograms, region_sums

        colours = _channels_last(features)
        self.regions = region_ids(labels)
        n = self.n_regions = int(self.regions.max()) + 1
        flat = self.regions.ravel()
        self.value_of = np.zeros(n, dtype=np.int32)
        self.value_of[flat] = labels.ravel()
        self.movable = (self.value_of != BACKGROUND).tolist()
        self.parent = list(range(n))
        self.n_pixels = float(labels.size)
        fine = edge_strength(colours)
        self.size = np.bincount(flat, minlength=n).astype(np.float64)
        self.colour_sums = region_sums(self.regions, n, colours)
        self.histograms = region_histograms(self.regions, n, colours, HISTOGRAM_BINS)
        self.texture_sums = np.bincount(flat, fine.ravel(), n)
        strengths = np.stack([fine, coarse_edge_strength(colours)], axis=2)
        low, high, values = boundary_strengths(self.regions, np.ascontiguousarray(strengths))
        keys, inverse = np.unique(low * n + high, return_inverse=True)
        inverse = inverse.ravel()
        sums = np.stack(
            [np.bincount(inverse, minlength=len(keys))] + [np.bincount(inverse, values[:, s], len(keys)) for s in range(2)],
            axis=1,
        )
        # borders[u][v] = (border length, summed edge strength, summed coarse edge strength)
        self.borders: dict[int, dict[int, np.ndarray]] = {}
        for key, row in zip(keys.tolist(), sums):
            u, v = divmod(key, n)
            self.borders.setdefault(u, {})[v] = row
            self.borders.setdefault(v, {})[u] = row.copy()

    def border_sums(self, u: int, others: list[int]) -> np.ndarray:
        """(len(others), 3) border length and summed edge strengths between root ``u`` and each of ``others``."""
        edges = self.borders[u]
        return np.array([edges[v] for v in others], dtype=np.float64)

    def adjacent_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All adjacent pairs ``u < v`` of movable regions, with their border sums (P, 3)."""
        pairs = [(u, v) for u, edges in self.borders.items() for v in edges if u < v and self.movable[u] and self.movable[v]]
        us = np.array([u for u, _ in pairs], dtype=np.int64)
        vs = np.array([v for _, v in pairs], dtype=np.int64)
        border = np.array([self.borders[u][v] for u, v in pairs], dtype=np.float64).reshape(-1, 3)
        return us, vs, border

    def terms(self, us: np.ndarray, vs: np.ndarray, border: np.ndarray) -> np.ndarray:
        """The merge terms (P, len(MERGE_TERMS)) of root pairs ``(us[i], vs[i])`` with their border sums."""
        from segment._region_kernels import merge_terms

        return merge_terms(
            us, vs, border, self.size, self.colour_sums, self.histograms, self.texture_sums,
            self.n_pixels, _EPSILON, _TEXTURE_FLOOR,
        )

    def merge(self, source: int, target: int) -> None:
        """Merge root ``source`` into root ``target``: sums add, borders move to ``target``."""
        self.parent[source] = target
        for array in (self.size, self.colour_sums, self.histograms, self.texture_sums):
            array[target] += array[source]
        _merge_edges(self.borders, source, target)

    def merged_labels(self) -> np.ndarray:
        """The label map after the merges: every region takes its root's label."""
        roots = np.arange(self.n_regions)
        for region in range(self.n_regions):
            root = region
            while self.parent[root] != root:
                root = self.parent[root]
            roots[region] = root
        return self.value_of[roots][self.regions]
