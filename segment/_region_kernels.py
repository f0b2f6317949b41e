"""Numba kernels behind the region merging in :mod:`segment.postprocess`.

They replace full-image temporaries (all 4-neighbour pairs, per-channel
float64 copies) with single passes, which matters on scans of tens of
megapixels.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def boundary_pairs(regions):
    """Pairs ``(low, high)`` of the region ids of every 4-neighbour pixel pair that differ.

    Parameters
    ----------
    regions : (H, W) int ndarray

    Returns
    -------
    low, high : (P,) int64 ndarrays
        One entry per differing pixel pair, ``low < high``.
    """
    height, width = regions.shape
    count = 0
    for y in range(height):
        for x in range(width):
            r = regions[y, x]
            if x + 1 < width and regions[y, x + 1] != r:
                count += 1
            if y + 1 < height and regions[y + 1, x] != r:
                count += 1
    low = np.empty(count, dtype=np.int64)
    high = np.empty(count, dtype=np.int64)
    i = 0
    for y in range(height):
        for x in range(width):
            r = regions[y, x]
            if x + 1 < width and regions[y, x + 1] != r:
                s = regions[y, x + 1]
                low[i], high[i] = min(r, s), max(r, s)
                i += 1
            if y + 1 < height and regions[y + 1, x] != r:
                s = regions[y + 1, x]
                low[i], high[i] = min(r, s), max(r, s)
                i += 1
    return low, high


@njit(cache=True)
def region_sums(regions, n_regions, features):
    """Per-region sums of the feature channels.

    Parameters
    ----------
    regions : (H, W) int ndarray
        Region ids 0..n_regions-1.
    n_regions : int
    features : (H, W, C) float ndarray

    Returns
    -------
    sums : (n_regions, C) float64 ndarray
    """
    height, width, channels = features.shape
    sums = np.zeros((n_regions, channels), dtype=np.float64)
    for y in range(height):
        for x in range(width):
            r = regions[y, x]
            for c in range(channels):
                sums[r, c] += features[y, x, c]
    return sums


@njit(cache=True)
def _root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


@njit(cache=True)
def connected_regions(labels, background):
    """The 4-connected regions of equal label, numbered 1..R in raster order of their first pixel.

    Parameters
    ----------
    labels : (H, W) int ndarray
    background : int
        Pixels with this label belong to no region and get 0.

    Returns
    -------
    (H, W) int32 ndarray
    """
    height, width = labels.shape
    parent = np.arange(height * width, dtype=np.int32)
    for y in range(height):
        for x in range(width):
            label = labels[y, x]
            if label == background:
                continue
            i = y * width + x
            if x > 0 and labels[y, x - 1] == label:
                parent[i] = _root(parent, i - 1)
            if y > 0 and labels[y - 1, x] == label:
                a, b = _root(parent, i), _root(parent, i - width)
                if a != b:
                    parent[max(a, b)] = min(a, b)  # the earlier pixel stays the root
    out = np.zeros((height, width), dtype=np.int32)
    number = np.zeros(height * width, dtype=np.int32)
    n = 0
    for y in range(height):
        for x in range(width):
            if labels[y, x] == background:
                continue
            root = _root(parent, y * width + x)
            if number[root] == 0:
                n += 1
                number[root] = n
            out[y, x] = number[root]
    return out


@njit(cache=True)
def boundary_strengths(regions, strength):
    """Region pairs of every differing 4-neighbour pixel pair, with the pair's mean ``strength``.

    Parameters
    ----------
    regions : (H, W) int ndarray
    strength : (H, W) float ndarray
        Per-pixel value, e.g. a gradient magnitude.

    Returns
    -------
    low, high : (P,) int64 ndarrays
        One entry per differing pixel pair, ``low < high``, in the order of
        :func:`boundary_pairs`.
    values : (P,) float64 ndarray
        Mean of ``strength`` at the two pixels of each pair.
    """
    low, high = boundary_pairs(regions)
    values = np.empty(low.shape[0], dtype=np.float64)
    height, width = regions.shape
    i = 0
    for y in range(height):
        for x in range(width):
            r = regions[y, x]
            if x + 1 < width and regions[y, x + 1] != r:
                values[i] = 0.5 * (strength[y, x] + strength[y, x + 1])
                i += 1
            if y + 1 < height and regions[y + 1, x] != r:
                values[i] = 0.5 * (strength[y, x] + strength[y + 1, x])
                i += 1
    return low, high, values
