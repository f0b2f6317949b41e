"""Spatial clean-up of a label map: morphology, small-region merging, relabelling.

Label maps are (H, W) int32 with labels >= 1; 0 marks pixels that take no
part (transparent), and these functions never create or remove zeros.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BACKGROUND = 0


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
    """The 4-connected regions of a label map, with union-find merging and shared-border lengths between roots."""

    def __init__(self, labels: np.ndarray) -> None:
        from segment._region_kernels import boundary_pairs, connected_regions

        self.regions = connected_regions(np.ascontiguousarray(labels), -1) - 1
        n_regions = self.n_regions = int(self.regions.max()) + 1
        self.value_of = np.zeros(n_regions, dtype=np.int32)
        self.value_of[self.regions.ravel()] = labels.ravel()
        self.parent = np.arange(n_regions)
        self.size = np.bincount(self.regions.ravel(), minlength=n_regions).astype(np.int64)
        low, high = boundary_pairs(self.regions)
        keys, counts = np.unique(low * n_regions + high, return_counts=True)
        self.adjacency: dict[int, dict[int, int]] = {}
        for key, count in zip(keys.tolist(), counts.tolist()):
            u, v = divmod(key, n_regions)
            self.adjacency.setdefault(u, {})[v] = count
            self.adjacency.setdefault(v, {})[u] = count

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

    def merge(self, source: int, target: int) -> None:
        """Merge root ``source`` into root ``target``."""
        self.parent[source] = target
        self.size[target] += self.size[source]
        _merge_edges(self.adjacency, source, target)


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
