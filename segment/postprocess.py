"""Spatial clean-up of a label map: morphology, small-region merging, relabelling.

Label maps are (H, W) int32 with labels >= 1; 0 marks pixels that take no
part (transparent), and these functions never create or remove zeros.
"""

from __future__ import annotations

import numpy as np

from segment.regions import BACKGROUND, RegionGraph


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
    graph = RegionGraph(labels)
    columns = None
    if features is not None:
        graph.add_values(graph.region_sums(features))
        columns = np.arange(1, graph.values.shape[1])
    if hole_size > 1:
        graph.fill_holes(hole_size)
    if min_size > 1:
        graph.merge_small(min_size, colour_columns=columns)
    return graph.labels()


def relabel_regions(labels: np.ndarray) -> np.ndarray:
    """Give every 4-connected region its own label 1..R, in raster order (background stays 0)."""
    from segment._region_kernels import connected_regions

    return connected_regions(np.ascontiguousarray(labels), BACKGROUND)


def _disk(radius: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
