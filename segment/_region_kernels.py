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
