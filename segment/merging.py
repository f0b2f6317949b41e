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

import math
from dataclasses import dataclass

import numpy as np

from segment.regions import RegionGraph

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
# Fitted by scripts/fit_merge_cost.py on the 200 BSDS500 train images, on the
# merges near the threshold (cost 0.33 to 3; see docs/quality.md).
MERGE_WEIGHTS = {
    "colour_distance": 0.714,  # positive given the histogram distance, with which it is correlated
    "edge": -0.222,
    "coarse_edge": -1.605,
    "histogram_distance": -1.463,
    "small_share": -0.34,
    "large_share": -0.276,
    "contact": 0.302,
    "small_texture": 0.025,
    "large_texture": -0.284,
    "texture_ratio": -0.81,
    "intercept": -1.812,
}
COARSE_SIGMA = 4.0
HISTOGRAM_BINS = 6  # per colour channel, over the image's range of that channel
# Bounds on the work whatever the picture shows (a noisy or dithered scan has
# hundreds of thousands of specks): above MAX_REGIONS regions the smallest
# join their most similar neighbour first (photos have a few hundred), and a
# region's pairs are scored again once it has grown by RESCORE_GROWTH.
MAX_REGIONS = 4096
RESCORE_GROWTH = 1.1
_EPSILON = 1e-3  # keeps the log of a zero distance or edge finite
_TEXTURE_FLOOR = 0.1  # the same for the texture of a flat region


def merge_similar_regions(
    labels: np.ndarray,
    features: np.ndarray,
    max_cost: float,
    *,
    weights: dict[str, float] | None = None,
    record: bool = False,
) -> np.ndarray | tuple[np.ndarray, MergeRecord]:
    """Merge adjacent regions that are likely parts of one object, most likely first.

    Greedy agglomeration over the 4-connected regions of a
    :class:`segment.regions.RegionGraph`: the adjacent pair with the lowest
    merge cost is merged, and merging stops when no adjacent pair costs less
    than ``max_cost``. The cost is ``exp(-(w . terms + intercept))``, the
    odds against the pair being one object under the weights (see the module
    docstring for the terms). A merged region keeps the label of the larger
    of the two, so labels stay valid class ids. Background (0) is never
    merged nor merged into.

    The work is bounded whatever the picture shows: beyond
    :data:`MAX_REGIONS` regions the smallest first join their most similar
    neighbour, and a region's pairs are scored again only when it has grown
    by :data:`RESCORE_GROWTH` (the pairs a merge moves to it at once).

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
    record : bool
        Also return the merges with their terms (``scripts/fit_merge_cost.py``
        learns the weights from them).

    Returns
    -------
    labels : (H, W) int32 ndarray
        A new array; the set of labels used can only shrink.
    merges : MergeRecord
        Only with ``record``.
    """
    labels = np.asarray(labels, dtype=np.int32)
    if max_cost <= 0:
        return (labels.copy(), MergeRecord.empty(labels)) if record else labels.copy()
    from segment._region_kernels import merge_by_cost

    weights = MERGE_WEIGHTS if weights is None else weights
    coefficients = np.array([weights[name] for name in MERGE_TERMS], dtype=np.float64)
    colours = _channels_last(features)
    labels = _merge_beyond(labels, colours, MAX_REGIONS)
    graph = merge_graph(labels, colours)
    sources, targets, terms = merge_by_cost(
        graph.kernel_graph, graph.movable, colours.shape[2], float(labels.size), coefficients, weights["intercept"],
        _EPSILON, _TEXTURE_FLOOR, -math.log(max_cost), RESCORE_GROWTH, record,
    )
    merged = graph.labels()
    if not record:
        return merged
    costs = np.exp(-(terms @ coefficients + weights["intercept"])) if len(terms) else np.zeros(0)
    return merged, MergeRecord(graph.regions, sources, targets, terms, costs)


@dataclass(frozen=True)
class MergeRecord:
    """The merges :func:`merge_similar_regions` made, in order.

    Attributes
    ----------
    regions : (H, W) int32 ndarray
        Region ids 0..R-1 of the regions the merging started from.
    sources, targets : (M,) int64 ndarrays
        Region ``sources[i]`` joined ``targets[i]`` (ids of the regions that
        remained roots until then).
    terms : (M, len(MERGE_TERMS)) float64 ndarray
        The pair's terms when it merged.
    costs : (M,) float64 ndarray
        The merge cost of each merge, ``exp(-(weights . terms + intercept))``.
    """

    regions: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    terms: np.ndarray
    costs: np.ndarray

    @classmethod
    def empty(cls, labels: np.ndarray) -> "MergeRecord":
        none = np.zeros(0, dtype=np.int64)
        return cls(region_ids(labels), none, none, np.zeros((0, len(MERGE_TERMS))), np.zeros(0))


def _merge_beyond(labels: np.ndarray, colours: np.ndarray, max_regions: int) -> np.ndarray:
    """``labels`` with the smallest regions merged into their most similar neighbour while over ``max_regions``."""
    graph = RegionGraph(labels)
    if int(graph.movable.sum()) <= max_regions:
        return labels
    graph.add_values(graph.region_sums(colours))
    graph.merge_small(0, max_regions=max_regions, colour_columns=np.arange(1, graph.values.shape[1]))
    return graph.labels()


def merge_graph(labels: np.ndarray, colours: np.ndarray) -> RegionGraph:
    """The region graph of ``labels`` with what the merge terms need.

    Edge values: border length, summed edge strength and coarse edge
    strength; region values: pixel count, colour sums (C), texture sum and
    the colour histogram (:data:`HISTOGRAM_BINS` ** C), the layout that
    :func:`segment._region_kernels.pair_terms` reads.
    """
    from segment._region_kernels import region_histograms

    fine = edge_strength(colours)
    graph = RegionGraph(labels, np.stack([fine, coarse_edge_strength(colours)], axis=2))
    texture = np.bincount(graph.regions.ravel(), fine.ravel(), graph.n_regions)
    histograms = region_histograms(graph.regions, graph.n_regions, np.ascontiguousarray(colours), HISTOGRAM_BINS)
    graph.add_values(np.hstack([graph.region_sums(colours), texture[:, None], histograms]))
    return graph


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
