"""Numba kernels behind the region merging in :mod:`segment.postprocess` and :mod:`segment.merging`.

They replace full-image temporaries (all 4-neighbour pairs, per-channel
float64 copies) with single passes, which matters on scans of tens of
megapixels.
"""

import heapq

import numpy as np
from numba import njit, types
from numba.typed import Dict


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


# ------------------------------------------------------------ region graph
# The graph of :class:`segment.regions.RegionGraph`: regions 0..R-1 with
# union-find parents and additive accumulators ``values`` (R, M) (column 0 is
# the pixel count); edges 0..E-1 between adjacent regions with additive
# accumulators ``edge_values`` (E, S) (column 0 is the shared border length).
# Edge ``e`` has two slots, ``2e`` and ``2e + 1``, one in the adjacency list of
# each end (``ends[e, 0]`` and ``ends[e, 1]``); a merge renames the source's
# live edges to the target, adds parallel edges together, and splices the
# source's list onto the target's, so dead slots are skipped lazily and each
# merge costs O(degree of the source). Merging the smaller region into the
# larger then bounds all merges together by O(E log R).


@njit(cache=True)
def adjacency_lists(ends, n_regions):
    """Linked adjacency lists ``(head, tail, next_slot)`` of a region graph's edges."""
    head = np.full(n_regions, -1, dtype=np.int64)
    tail = np.full(n_regions, -1, dtype=np.int64)
    next_slot = np.full(2 * ends.shape[0], -1, dtype=np.int64)
    for slot in range(2 * ends.shape[0]):
        region = ends[slot >> 1, slot & 1]
        if head[region] < 0:
            head[region] = slot
        else:
            next_slot[tail[region]] = slot
        tail[region] = slot
    return head, tail, next_slot


@njit(cache=True, inline="always")
def _pair_key(u, v, n_regions):
    return min(u, v) * n_regions + max(u, v)


@njit(cache=True)
def _edge_index(ends, alive, n_regions):
    """Dict from the key of each live edge's pair of ends to the edge."""
    index = Dict.empty(key_type=types.int64, value_type=types.int64)
    for e in range(ends.shape[0]):
        if alive[e]:
            index[_pair_key(ends[e, 0], ends[e, 1], n_regions)] = e
    return index


@njit(cache=True)
def _merge(source, target, graph, index, touched):
    """Merge root ``source`` into root ``target``; the edges whose ends or sums changed go to ``touched``.

    Returns the number of touched edges.
    """
    parent, values, ends, edge_values, alive, stamp, head, tail, next_slot = graph
    n_regions = parent.shape[0]
    count = 0
    slot = head[source]
    while slot >= 0:
        e = slot >> 1
        if alive[e]:
            side = slot & 1
            other = ends[e, 1 - side]
            del index[_pair_key(source, other, n_regions)]
            if other == target:
                alive[e] = False
            else:
                key = _pair_key(target, other, n_regions)
                if key in index:
                    parallel = index[key]
                    edge_values[parallel] += edge_values[e]
                    alive[e] = False
                    e = parallel
                else:
                    ends[e, side] = target
                    index[key] = e
                stamp[e] += 1
                touched[count] = e
                count += 1
        slot = next_slot[slot]
    if head[source] >= 0:
        if head[target] < 0:
            head[target] = head[source]
        else:
            next_slot[tail[target]] = head[source]
        tail[target] = tail[source]
        head[source] = -1
        tail[source] = -1
    parent[source] = target
    values[target] += values[source]
    return count


@njit(cache=True)
def merge_small(graph, movable, min_size, max_regions, colour_columns, by_similarity, value_of):
    """Merge regions smaller than ``min_size`` (and, while more than ``max_regions`` movable regions remain, the smallest) into a neighbour.

    Smallest region first; it joins the movable neighbour with the closest
    mean of the ``colour_columns`` of ``values`` (ties: longest border, lower
    label value, lower id) when ``by_similarity``, else the one with the
    longest shared border (ties: lower label value, lower id).
    """
    parent, values, ends, edge_values, alive, stamp, head, tail, next_slot = graph
    index = _edge_index(ends, alive, parent.shape[0])
    touched = np.empty(ends.shape[0], dtype=np.int64)
    heap = [(0.0, 0)]
    heap.pop()
    live = 0
    for r in range(parent.shape[0]):
        if parent[r] == r and movable[r]:
            live += 1
            heap.append((values[r, 0], r))
    heapq.heapify(heap)
    while heap:
        size, r = heapq.heappop(heap)
        if parent[r] != r or values[r, 0] != size:
            continue
        if size >= min_size and live <= max_regions:
            break
        best = -1
        best_distance = np.inf
        best_border = -1.0
        slot = head[r]
        while slot >= 0:
            e = slot >> 1
            other = ends[e, 1 - (slot & 1)]
            if alive[e] and movable[other]:
                distance = 0.0
                if by_similarity:
                    for c in colour_columns:
                        d = values[r, c] / values[r, 0] - values[other, c] / values[other, 0]
                        distance += d * d
                border = edge_values[e, 0]
                better = best < 0 or distance < best_distance
                if not better and distance == best_distance:
                    if border != best_border:
                        better = border > best_border
                    elif value_of[other] != value_of[best]:
                        better = value_of[other] < value_of[best]
                    else:
                        better = other < best
                if better:
                    best, best_distance, best_border = other, distance, border
            slot = next_slot[slot]
        if best < 0:
            continue
        _merge(r, best, graph, index, touched)
        live -= 1
        heapq.heappush(heap, (values[best, 0], best))


@njit(cache=True)
def fill_holes(graph, movable, hole_size, on_image_border):
    """Merge each region smaller than ``hole_size`` that does not touch the image border and has a single, movable, neighbour into it."""
    parent, values, ends, edge_values, alive, stamp, head, tail, next_slot = graph
    index = _edge_index(ends, alive, parent.shape[0])
    touched = np.empty(ends.shape[0], dtype=np.int64)
    for r in range(parent.shape[0]):
        if parent[r] != r or not movable[r] or on_image_border[r] or values[r, 0] >= hole_size:
            continue
        only = -1
        count = 0
        slot = head[r]
        while slot >= 0:
            e = slot >> 1
            if alive[e]:
                only = ends[e, 1 - (slot & 1)]
                count += 1
            slot = next_slot[slot]
        if count == 1 and movable[only]:
            _merge(r, only, graph, index, touched)


@njit(cache=True)
def pair_terms(values, border, u, v, n_colour, n_pixels, epsilon, texture_floor, out):
    """The ten merge terms of regions ``u``, ``v`` with shared ``border`` = (length, edge sum, coarse edge sum).

    ``values`` columns: pixel count, ``n_colour`` colour sums, texture sum,
    then the colour histogram. See :data:`segment.merging.MERGE_TERMS`.
    """
    size_u, size_v = values[u, 0], values[v, 0]
    small, large = (u, v) if size_u <= size_v else (v, u)
    distance = 0.0
    for c in range(1, 1 + n_colour):
        d = values[u, c] / size_u - values[v, c] / size_v
        distance += d * d
    texture = 1 + n_colour
    chi2 = 0.0
    for b in range(texture + 1, values.shape[1]):
        p = values[u, b] / size_u
        q = values[v, b] / size_v
        if p + q > 0:
            chi2 += (p - q) * (p - q) / (p + q)
    length = border[0]
    texture_small = np.log(values[small, texture] / values[small, 0] + texture_floor)
    texture_large = np.log(values[large, texture] / values[large, 0] + texture_floor)
    out[0] = np.log(np.sqrt(distance) + epsilon)
    out[1] = np.log(border[1] / length + epsilon)
    out[2] = np.log(border[2] / length + epsilon)
    out[3] = np.log(0.5 * chi2 + epsilon)
    out[4] = np.log(values[small, 0] / n_pixels)
    out[5] = np.log(values[large, 0] / n_pixels)
    out[6] = np.log(length / np.sqrt(values[small, 0]))
    out[7] = texture_small
    out[8] = texture_large
    out[9] = abs(texture_small - texture_large)


@njit(cache=True, inline="always")
def _linear(coefficients, terms, intercept):
    total = intercept
    for i in range(terms.shape[0]):
        total += coefficients[i] * terms[i]
    return total


@njit(cache=True)
def merge_by_cost(graph, movable, n_colour, n_pixels, coefficients, intercept, epsilon, texture_floor, min_log_odds,
                  rescore_growth, record):
    """Greedy merging of adjacent movable regions, highest log-odds of one object first, while above ``min_log_odds``.

    The log-odds of a pair is ``coefficients . pair_terms + intercept``. After
    a merge the target's edges from the source are scored again; its other
    edges only once it has grown by ``rescore_growth`` since they were last
    scored (1 scores them after every merge). A popped pair is scored again
    before it merges, and goes back into the queue if it is no longer the
    best, so a stale score can delay a merge but never make one that the
    threshold refuses.

    Returns
    -------
    sources, targets : (M,) int64 ndarrays
        The merges in order (region ids), when ``record``; else empty.
    terms : (M, 10) float64 ndarray
        The pair's terms at each merge, when ``record``.
    """
    parent, values, ends, edge_values, alive, stamp, head, tail, next_slot = graph
    n_regions = parent.shape[0]
    index = _edge_index(ends, alive, n_regions)
    touched = np.empty(ends.shape[0], dtype=np.int64)
    terms = np.empty(10, dtype=np.float64)
    scored_size = values[:, 0].copy()
    capacity = n_regions if record else 0
    sources = np.empty(capacity, dtype=np.int64)
    targets = np.empty(capacity, dtype=np.int64)
    merge_terms = np.empty((capacity, 10), dtype=np.float64)
    n_merges = 0

    heap = [(0.0, 0, 0)]
    heap.pop()
    for e in range(ends.shape[0]):
        u, v = ends[e, 0], ends[e, 1]
        if alive[e] and movable[u] and movable[v]:
            pair_terms(values, edge_values[e], u, v, n_colour, n_pixels, epsilon, texture_floor, terms)
            score = _linear(coefficients, terms, intercept)
            if score > min_log_odds:
                heap.append((-score, e, stamp[e]))
    heapq.heapify(heap)
    while heap:
        _, e, version = heapq.heappop(heap)
        if not alive[e] or stamp[e] != version:
            continue
        u, v = ends[e, 0], ends[e, 1]
        pair_terms(values, edge_values[e], u, v, n_colour, n_pixels, epsilon, texture_floor, terms)
        score = _linear(coefficients, terms, intercept)
        if score <= min_log_odds:
            continue
        if heap and -score > heap[0][0]:
            heapq.heappush(heap, (-score, e, version))
            continue
        source, target = (u, v) if (values[u, 0], v) < (values[v, 0], u) else (v, u)
        if record:
            sources[n_merges] = source
            targets[n_merges] = target
            merge_terms[n_merges] = terms
        n_merges += 1
        n_touched = _merge(source, target, graph, index, touched)
        if values[target, 0] >= rescore_growth * scored_size[target]:
            scored_size[target] = values[target, 0]
            n_touched = 0
            slot = head[target]
            while slot >= 0:
                edge = slot >> 1
                if alive[edge]:
                    touched[n_touched] = edge
                    n_touched += 1
                slot = next_slot[slot]
        for i in range(n_touched):
            edge = touched[i]
            a, b = ends[edge, 0], ends[edge, 1]
            if not (movable[a] and movable[b]):
                continue
            pair_terms(values, edge_values[edge], a, b, n_colour, n_pixels, epsilon, texture_floor, terms)
            score = _linear(coefficients, terms, intercept)
            if score > min_log_odds:
                stamp[edge] += 1
                heapq.heappush(heap, (-score, edge, stamp[edge]))
    if not record:
        n_merges = 0
    return sources[:n_merges], targets[:n_merges], merge_terms[:n_merges]


@njit(cache=True)
def region_roots(parent):
    """The root of every region (path compression applied to ``parent``)."""
    roots = np.empty(parent.shape[0], dtype=np.int64)
    for r in range(parent.shape[0]):
        roots[r] = _root(parent, r)
    return roots
