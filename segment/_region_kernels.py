"""Numba kernels behind the region merging in :mod:`segment.postprocess` and :mod:`segment.merging`.

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
def boundary_strengths(regions, strengths):
    """Region pairs of every differing 4-neighbour pixel pair, with the pair's mean of each strength map.

    Parameters
    ----------
    regions : (H, W) int ndarray
    strengths : (H, W, S) float ndarray
        Per-pixel values, e.g. gradient magnitudes at S scales.

    Returns
    -------
    low, high : (P,) int64 ndarrays
        One entry per differing pixel pair, ``low < high``, in the order of
        :func:`boundary_pairs`.
    values : (P, S) float64 ndarray
        Mean of each strength map at the two pixels of each pair.
    """
    low, high = boundary_pairs(regions)
    n_maps = strengths.shape[2]
    values = np.empty((low.shape[0], n_maps), dtype=np.float64)
    height, width = regions.shape
    i = 0
    for y in range(height):
        for x in range(width):
            r = regions[y, x]
            if x + 1 < width and regions[y, x + 1] != r:
                for s in range(n_maps):
                    values[i, s] = 0.5 * (strengths[y, x, s] + strengths[y, x + 1, s])
                i += 1
            if y + 1 < height and regions[y + 1, x] != r:
                for s in range(n_maps):
                    values[i, s] = 0.5 * (strengths[y, x, s] + strengths[y + 1, x, s])
                i += 1
    return low, high, values


@njit(cache=True)
def region_histograms(regions, n_regions, colours, bins):
    """Per-region colour histograms, ``bins`` per channel over the image's range of each channel.

    Parameters
    ----------
    regions : (H, W) int ndarray
        Region ids 0..n_regions-1.
    n_regions, bins : int
    colours : (H, W, C) float ndarray

    Returns
    -------
    (n_regions, bins ** C) float32 ndarray
        Pixel counts; bin index ``sum_c b_c * bins ** c``.
    """
    height, width, channels = colours.shape
    low = np.full(channels, np.inf)
    high = np.full(channels, -np.inf)
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                low[c] = min(low[c], colours[y, x, c])
                high[c] = max(high[c], colours[y, x, c])
    counts = np.zeros((n_regions, bins**channels), dtype=np.float32)
    for y in range(height):
        for x in range(width):
            index = 0
            stride = 1
            for c in range(channels):
                b = int((colours[y, x, c] - low[c]) / max(high[c] - low[c], 1e-6) * bins)
                index += min(max(b, 0), bins - 1) * stride
                stride *= bins
            counts[regions[y, x], index] += 1.0
    return counts


@njit(cache=True)
def merge_terms(us, vs, border, size, colour_sums, histograms, texture_sums, n_pixels, epsilon, texture_floor):
    """The merge terms of region pairs, in the order of :data:`segment.merging.MERGE_TERMS`.

    Parameters
    ----------
    us, vs : (P,) int ndarrays
        The two regions of each pair.
    border : (P, 3) float ndarray
        Shared border length and the summed edge and coarse edge strengths along it.
    size : (R,) float64 ndarray
    colour_sums : (R, C) float64 ndarray
    histograms : (R, B) float32 ndarray
    texture_sums : (R,) float64 ndarray
        Summed edge strength inside each region.
    n_pixels : float
    epsilon, texture_floor : float
        Added before taking logs of distances and of textures.

    Returns
    -------
    (P, 10) float64 ndarray
    """
    n_pairs = us.shape[0]
    out = np.empty((n_pairs, 10), dtype=np.float64)
    for i in range(n_pairs):
        u, v = us[i], vs[i]
        small, large = (u, v) if size[u] <= size[v] else (v, u)
        distance = 0.0
        for c in range(colour_sums.shape[1]):
            d = colour_sums[u, c] / size[u] - colour_sums[v, c] / size[v]
            distance += d * d
        chi2 = 0.0
        for b in range(histograms.shape[1]):
            p = histograms[u, b] / size[u]
            q = histograms[v, b] / size[v]
            if p + q > 0:
                chi2 += (p - q) * (p - q) / (p + q)
        length = border[i, 0]
        texture_small = np.log(texture_sums[small] / size[small] + texture_floor)
        texture_large = np.log(texture_sums[large] / size[large] + texture_floor)
        out[i, 0] = np.log(np.sqrt(distance) + epsilon)
        out[i, 1] = np.log(border[i, 1] / length + epsilon)
        out[i, 2] = np.log(border[i, 2] / length + epsilon)
        out[i, 3] = np.log(0.5 * chi2 + epsilon)
        out[i, 4] = np.log(size[small] / n_pixels)
        out[i, 5] = np.log(size[large] / n_pixels)
        out[i, 6] = np.log(length / np.sqrt(size[small]))
        out[i, 7] = texture_small
        out[i, 8] = texture_large
        out[i, 9] = abs(texture_small - texture_large)
    return out
