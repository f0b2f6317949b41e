"""Spatial clean-up of a label map: morphology, small-region merging, relabelling.

Label maps are (H, W) int32 with labels >= 1; 0 marks pixels that take no
part (transparent), and these functions never create or remove zeros.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np

BACKGROUND = 0
# Exponents of the region terms of the merge cost (see merge_similar_regions):
# the smaller region's share of the image, the larger one's, and the contact
# (shared border length over the square root of the smaller region's area).
# Fitted by scripts/fit_merge_cost.py, a logistic regression of "both regions
# lie mostly in one human segment" on the log terms over the adjacent region
# pairs of the 200 BSDS500 train images, scaled so that the colour distance and
# edge exponents sum to 1 (their fitted split is 0.57 / 0.43).
MERGE_REGION_EXPONENTS = (0.18, 0.22, -0.30)


def morphology(labels: np.ndarray, opening_radius: int = 0, closing_radius: int = 0) -> np.ndarray:
    """Per-label opening, then closing, with a disk of the given radii.

    Opening removes thin protrusions and specks of each label; the freed
    pixels take the label of the nearest pixel that was kept. Closing fills
    narrow gaps of each label; a pixel claimed by the closings of several
    labels keeps its own.

    Parameters
    ----------
    labels : (H, W) int ndarray
    opening_radius, closing_radius : int
        Disk radii in pixels; 0 skips the operation.

    Returns
    -------
    labels : (H, W) int32 ndarray
        A new array.
    """
    import cv2

    labels = labels.astype(np.int32, copy=True)
    values = [v for v in np.unique(labels) if v != BACKGROUND]
    if opening_radius > 0:
        kernel = _disk(opening_radius)
        freed = np.zeros(labels.shape, dtype=bool)
        for value in values:
            mask = (labels == value).astype(np.uint8)
            freed |= (mask > 0) & (cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel) == 0)
        if freed.any() and not (freed | (labels == BACKGROUND)).all():
            from scipy.ndimage import distance_transform_edt

            unusable = freed | (labels == BACKGROUND)
            rows, cols = distance_transform_edt(unusable, return_distances=False, return_indices=True)
            labels[freed] = labels[rows[freed], cols[freed]]
    if closing_radius > 0:
        kernel = _disk(closing_radius)
        claims = np.zeros(labels.shape, dtype=np.int32)
        winner = np.zeros(labels.shape, dtype=np.int32)
        for value in values:
            mask = (labels == value).astype(np.uint8)
            gained = (cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel) > 0) & (mask == 0) & (labels != BACKGROUND)
            claims += gained
            winner[gained] = value
        labels[claims == 1] = winner[claims == 1]
    return labels


def merge_small_regions(
    labels: np.ndarray, min_size: int = 0, hole_size: int = 0, *, features: np.ndarray | None = None
) -> np.ndarray:
    """Merge small connected regions into a neighbouring region.

    First every region smaller than ``hole_size`` that is enclosed by a single
    other region (and does not touch the image border) takes that region's
    label. Then regions smaller than ``min_size``, smallest first, are merged
    into the neighbour they share the longest border with (ties: the lower
    label), or, when ``features`` are given, into the most similar neighbour:
    the one whose mean feature vector is closest (ties: the longest border).
    Regions are 4-connected. Background (0) is never merged nor merged into.

    Parameters
    ----------
    labels : (H, W) int ndarray
    min_size, hole_size : int
        Area thresholds in pixels; 0 skips the step.
    features : (H, W, C) or (H, W) ndarray, optional
        Per-pixel values (e.g. Lab colour) that define the similarity of
        regions; means are updated as regions merge.

    Returns
    -------
    labels : (H, W) int32 ndarray
        A new array; the set of labels used can only shrink.
    """
    labels = np.asarray(labels, dtype=np.int32)
    if min_size <= 1 and hole_size <= 1:
        return labels.copy()
    graph = _RegionGraph(labels)
    regions, value_of, sizes = graph.regions, graph.value_of, graph.size.copy()
    movable = value_of != BACKGROUND
    sums = None if features is None else _region_sums(regions, graph.n_regions, features)

    def merge(source: int, target: int) -> None:
        if sums is not None:
            sums[target] += sums[source]
        graph.merge(source, target)

    if hole_size > 1:
        border = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
        inner = np.ones(graph.n_regions, dtype=bool)
        inner[border] = False
        for region in np.flatnonzero(movable & inner & (sizes < hole_size)):
            neighbours = list(graph.neighbours(region))
            if len(neighbours) == 1 and movable[neighbours[0]]:
                merge(region, neighbours[0])
    if min_size > 1:
        candidates = np.flatnonzero(movable & (sizes < min_size))
        for region in candidates[np.argsort(sizes[candidates], kind="stable")]:
            root = graph.find(region)
            if graph.size[root] >= min_size:
                continue
            neighbours = {n: c for n, c in graph.neighbours(root).items() if movable[n]}
            if not neighbours:
                continue
            if sums is not None:
                mean = sums[root] / graph.size[root]
                distance = {n: float(np.sum((sums[n] / graph.size[n] - mean) ** 2)) for n in neighbours}
                target = min(neighbours, key=lambda n: (distance[n], -neighbours[n], value_of[n], n))
            else:
                target = min(neighbours, key=lambda n: (-neighbours[n], value_of[n], n))
            merge(root, target)
    return graph.merged_labels()


def merge_similar_regions(
    labels: np.ndarray,
    features: np.ndarray,
    max_distance: float,
    *,
    edge_weight: float = 0.0,
    region_exponents: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Merge adjacent regions whose mean features are close, unless a strong edge parts them.

    Greedy agglomeration over the 4-connected regions: the neighbouring pair
    with the lowest merge cost is merged first, its mean is updated, and
    merging stops when no neighbouring pair costs less than ``max_distance``.
    The cost is ``distance ** (1 - edge_weight) * edge ** edge_weight``, a
    weighted geometric mean of the Euclidean distance between the mean
    feature vectors and the mean strength of the image edge along the shared
    border (see :func:`edge_strength`); both are in feature units. With
    ``region_exponents`` (a, b, c) it is multiplied by ``small ** a * large
    ** b * contact ** c``, where small and large are the two regions' shares
    of the image's pixels and contact is their shared border length over the
    square root of the smaller area. A merged region keeps the label of the
    larger of the two, so labels stay valid class ids. Background (0) is
    never merged nor merged into.

    Parameters
    ----------
    labels : (H, W) int ndarray
    features : (H, W, C) or (H, W) ndarray
        Per-pixel values, e.g. Lab colour (the distance is then CIE76 Delta E).
    max_distance : float
        0 skips the step.
    edge_weight : float
        Weight in [0, 1] of the border's edge strength in the cost: 0 merges
        by mean colour alone; higher values join regions split along a weak
        edge (a shading gradient) and keep apart similar colours across a
        sharp one.
    region_exponents : (float, float, float), optional
        Exponents of the region terms; positive ``a`` makes small regions
        merge more readily, negative ``c`` pairs with a long shared border
        (e.g. :data:`MERGE_REGION_EXPONENTS`). None leaves them out.

    Returns
    -------
    labels : (H, W) int32 ndarray
        A new array; the set of labels used can only shrink.
    """
    labels = np.asarray(labels, dtype=np.int32)
    if max_distance <= 0:
        return labels.copy()
    graph = _RegionGraph(labels, edge_strength(features) if edge_weight > 0 else None)
    mean_array = _region_sums(graph.regions, graph.n_regions, features) / graph.size[:, None]
    movable = (graph.value_of != BACKGROUND).tolist()
    # Plain Python values: the loop below does many tiny updates, where NumPy's per-call overhead dominates.
    means = [tuple(row) for row in mean_array.tolist()]
    size = graph.size.tolist()
    version = [0] * graph.n_regions

    n_pixels = float(labels.size)

    def cost(u: int, v: int, distance: float) -> float:
        if edge_weight > 0:
            distance = distance ** (1.0 - edge_weight) * graph.border_strength(u, v) ** edge_weight
        if region_exponents is None:
            return distance
        small, large = sorted((size[u], size[v]))
        contact = graph.neighbours(u)[v] / math.sqrt(small)
        a, b, c = region_exponents
        return distance * (small / n_pixels) ** a * (large / n_pixels) ** b * contact**c

    pairs = [(u, v) for u, edges in graph.adjacency.items() for v in edges if u < v and movable[u] and movable[v]]
    pair_array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    distances = np.linalg.norm(mean_array[pair_array[:, 0]] - mean_array[pair_array[:, 1]], axis=1).tolist()
    # A pair costing max_distance or more is never merged unless one side changes, which pushes a new entry.
    costs = [cost(u, v, distance) for (u, v), distance in zip(pairs, distances)]
    heap = [(c, u, v, 0, 0) for c, (u, v) in zip(costs, pairs) if c < max_distance]
    heapq.heapify(heap)
    while heap:
        _, u, v, version_u, version_v = heapq.heappop(heap)
        if version[u] != version_u or version[v] != version_v or graph.find(u) != u or graph.find(v) != v:
            continue
        source, target = (u, v) if (size[u], v) < (size[v], u) else (v, u)
        total = size[target] + size[source]
        means[target] = tuple(
            (a * size[target] + b * size[source]) / total for a, b in zip(means[target], means[source])
        )
        size[target] = total
        graph.merge(source, target)
        version[target] += 1
        for other in graph.neighbours(target):
            pair_cost = cost(target, other, math.dist(means[target], means[other])) if movable[other] else max_distance
            if pair_cost < max_distance:
                low, high = min(target, other), max(target, other)
                heapq.heappush(heap, (pair_cost, low, high, version[low], version[high]))
    return graph.merged_labels()


def edge_strength(features: np.ndarray) -> np.ndarray:
    """Per-pixel gradient magnitude of a feature image (Sobel over all channels), (H, W) float32.

    Scaled to feature units: across a sharp step of height ``h`` between two
    pixels both get ``h``; a gentle shading gradient gets its change over two
    pixels, which is small.
    """
    import cv2

    values = np.asarray(features, dtype=np.float32)
    values = values.reshape(*values.shape[:2], -1)
    squared = np.zeros(values.shape[:2], dtype=np.float32)
    for channel in range(values.shape[2]):
        plane = np.ascontiguousarray(values[:, :, channel])
        squared += cv2.Sobel(plane, cv2.CV_32F, 1, 0, ksize=3) ** 2 + cv2.Sobel(plane, cv2.CV_32F, 0, 1, ksize=3) ** 2
    # The 3x3 Sobel kernel is 8 times the central difference, which spans two pixels: a step h gives 4h.
    return np.sqrt(squared) / np.float32(4.0)


def relabel_regions(labels: np.ndarray) -> np.ndarray:
    """Give every 4-connected region its own label 1..R, in raster order (background stays 0)."""
    from segment._region_kernels import connected_regions

    return connected_regions(np.ascontiguousarray(labels), BACKGROUND)


def _region_sums(regions: np.ndarray, n_regions: int, features: np.ndarray) -> np.ndarray:
    """Per-region sums of the feature channels, (n_regions, C) float64."""
    from segment._region_kernels import region_sums

    values = np.asarray(features)
    values = values.reshape(*regions.shape, -1)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    return region_sums(regions, n_regions, np.ascontiguousarray(values))


class _RegionGraph:
    """The 4-connected regions of a label map, with union-find merging and shared-border lengths between roots.

    With a per-pixel ``strength`` map (e.g. :func:`edge_strength`), the sum
    of its pair means over each shared border is kept as well.
    """

    def __init__(self, labels: np.ndarray, strength: np.ndarray | None = None) -> None:
        from segment._region_kernels import boundary_pairs, boundary_strengths, connected_regions

        self.regions = connected_regions(np.ascontiguousarray(labels), -1) - 1
        n_regions = self.n_regions = int(self.regions.max()) + 1
        self.value_of = np.zeros(n_regions, dtype=np.int32)
        self.value_of[self.regions.ravel()] = labels.ravel()
        self.parent = np.arange(n_regions)
        self.size = np.bincount(self.regions.ravel(), minlength=n_regions).astype(np.int64)
        if strength is None:
            low, high = boundary_pairs(self.regions)
        else:
            low, high, values = boundary_strengths(self.regions, np.ascontiguousarray(strength))
        keys, inverse, counts = np.unique(low * n_regions + high, return_inverse=True, return_counts=True)
        self.adjacency: dict[int, dict[int, int]] = {}
        self.strength: dict[int, dict[int, float]] | None = None if strength is None else {}
        sums = None if strength is None else np.bincount(inverse.ravel(), weights=values, minlength=len(keys))
        for i, (key, count) in enumerate(zip(keys.tolist(), counts.tolist())):
            u, v = divmod(key, n_regions)
            self.adjacency.setdefault(u, {})[v] = count
            self.adjacency.setdefault(v, {})[u] = count
            if self.strength is not None:
                self.strength.setdefault(u, {})[v] = self.strength.setdefault(v, {})[u] = float(sums[i])

    def merged_labels(self) -> np.ndarray:
        """The label map after the merges: every region takes its root's label."""
        roots = np.array([self.find(r) for r in range(self.n_regions)])
        return self.value_of[roots][self.regions]

    def find(self, region: int) -> int:
        root = region
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[region] != root:
            self.parent[region], region = root, self.parent[region]
        return int(root)

    def neighbours(self, root: int) -> dict[int, int]:
        return self.adjacency.get(root, {})

    def border_strength(self, u: int, v: int) -> float:
        """Mean strength along the border of neighbouring roots ``u`` and ``v`` (needs a strength map)."""
        return self.strength[u][v] / self.adjacency[u][v]

    def merge(self, source: int, target: int) -> None:
        """Merge root ``source`` into root ``target``."""
        self.parent[source] = target
        self.size[target] += self.size[source]
        _merge_edges(self.adjacency, source, target)
        if self.strength is not None:
            _merge_edges(self.strength, source, target)


def _merge_edges(edges: dict[int, dict[int, Any]], source: int, target: int) -> None:
    """Move the edge values of node ``source`` to ``target`` in a symmetric dict of dicts, adding where both have one."""
    target_edges = edges.setdefault(target, {})
    for other, value in edges.pop(source, {}).items():
        other_edges = edges[other]
        del other_edges[source]
        if other != target:
            target_edges[other] = target_edges.get(other, 0) + value
            other_edges[target] = other_edges.get(target, 0) + value
    target_edges.pop(source, None)


def _disk(radius: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
