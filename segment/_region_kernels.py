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


@njit(cache=True)
def _pair_key(u, v, n_regions):
    return min(u, v) * n_regions + max(u, v)


# The edge index is a hash table from the key of an edge's pair of ends to the
# edge: ``table`` (2^b, 2) int64 rows (key, edge), open addressing with linear
# probing, and ``used`` (1,) the rows not EMPTY. A removed entry becomes
# DELETED, which probes pass over and insertions reuse. Merges only remove
# entries or replace one by another, so the table never needs to grow; when
# deleted rows make it three-quarters full it is rebuilt in place.
EMPTY = -1
DELETED = -2


@njit(cache=True)
def _edge_index(ends, alive, n_regions):
    """The hash table ``(table, used)`` from the key of each live edge's pair of ends to the edge."""
    size = 16
    while size < 4 * ends.shape[0]:
        size *= 2
    index = np.full((size, 2), EMPTY, dtype=np.int64), np.zeros(1, dtype=np.int64)
    for e in range(ends.shape[0]):
        if alive[e]:
            _index_put(index, _pair_key(ends[e, 0], ends[e, 1], n_regions), e)
    return index


@njit(cache=True)
def _index_home(table, key):
    return (key * 0x9E3779B97F4A7C15) >> 17 & (table.shape[0] - 1)


@njit(cache=True)
def _index_find(index, key):
    """Row of ``key`` in the table, or -1."""
    table = index[0]
    row = _index_home(table, key)
    while table[row, 0] != EMPTY:
        if table[row, 0] == key:
            return row
        row = (row + 1) & (table.shape[0] - 1)
    return -1


@njit(cache=True)
def _index_insert(table, key, edge):
    """Write ``key`` (not in the table) and ``edge`` into the first free or deleted row of its probe.

    Returns 1 when that row was EMPTY, else 0.
    """
    row = _index_home(table, key)
    while table[row, 0] >= 0:
        row = (row + 1) & (table.shape[0] - 1)
    was_empty = table[row, 0] == EMPTY
    table[row, 0] = key
    table[row, 1] = edge
    return 1 if was_empty else 0


@njit(cache=True)
def _index_put(index, key, edge):
    """Add ``key`` (not in the table) with ``edge``; rebuild the table when it is three-quarters full."""
    table, used = index
    used[0] += _index_insert(table, key, edge)
    if 4 * used[0] <= 3 * table.shape[0]:
        return
    keys = np.empty(table.shape[0], dtype=np.int64)
    edges = np.empty(table.shape[0], dtype=np.int64)
    n = 0
    for row in range(table.shape[0]):
        if table[row, 0] >= 0:
            keys[n] = table[row, 0]
            edges[n] = table[row, 1]
            n += 1
        table[row, 0] = EMPTY
    used[0] = 0
    for i in range(n):
        used[0] += _index_insert(table, keys[i], edges[i])


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
            index[0][_index_find(index, _pair_key(source, other, n_regions)), 0] = DELETED
            if other == target:
                alive[e] = False
            else:
                key = _pair_key(target, other, n_regions)
                row = _index_find(index, key)
                if row >= 0:
                    parallel = index[0][row, 1]
                    for c in range(edge_values.shape[1]):
                        edge_values[parallel, c] += edge_values[e, c]
                    alive[e] = False
                    e = parallel
                else:
                    ends[e, side] = target
                    _index_put(index, key, e)
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
    for c in range(values.shape[1]):
        values[target, c] += values[source, c]
    return count


# A priority queue of entries (priority, item, version) in a binary min-heap:
# rows of a (capacity, 3) float64 array (items and versions are integers far
# below 2^53, so exact), ordered by the whole row, as tuples compare.


@njit(cache=True)
def _heap_before(heap, i, j):
    for c in range(3):
        if heap[i, c] != heap[j, c]:
            return heap[i, c] < heap[j, c]
    return False


@njit(cache=True)
def _heap_swap(heap, i, j):
    for c in range(3):
        heap[i, c], heap[j, c] = heap[j, c], heap[i, c]


@njit(cache=True)
def _heap_sift_down(heap, i, n):
    while True:
        first = i
        for child in (2 * i + 1, 2 * i + 2):
            if child < n and _heap_before(heap, child, first):
                first = child
        if first == i:
            return
        _heap_swap(heap, i, first)
        i = first


@njit(cache=True)
def _heapify(heap, n):
    for i in range(n // 2 - 1, -1, -1):
        _heap_sift_down(heap, i, n)


@njit(cache=True)
def _heap_push(heap, n, priority, item, version):
    """Add an entry to the heap of ``n`` entries; returns the heap, a larger copy when it was full."""
    if n == heap.shape[0]:
        grown = np.empty((2 * n + 16, 3))
        for i in range(n):
            for c in range(3):
                grown[i, c] = heap[i, c]
        heap = grown
    heap[n, 0] = priority
    heap[n, 1] = item
    heap[n, 2] = version
    i = n
    while i > 0 and _heap_before(heap, i, (i - 1) // 2):
        _heap_swap(heap, i, (i - 1) // 2)
        i = (i - 1) // 2
    return heap


@njit(cache=True)
def _heap_pop(heap, n):
    """Remove the first of ``n`` entries; returns its (priority, item, version)."""
    top = heap[0, 0], int(heap[0, 1]), int(heap[0, 2])
    for c in range(3):
        heap[0, c] = heap[n - 1, c]
    _heap_sift_down(heap, np.int64(0), n - 1)
    return top


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
    heap = np.empty((parent.shape[0], 3))
    n = 0
    for r in range(parent.shape[0]):
        if parent[r] == r and movable[r]:
            heap[n, 0] = values[r, 0]
            heap[n, 1] = r
            heap[n, 2] = 0
            n += 1
    live = n
    _heapify(heap, np.int64(n))
    while n:
        size, r, _ = _heap_pop(heap, np.int64(n))
        n -= 1
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
        heap = _heap_push(heap, n, values[best, 0], best, np.int64(0))
        n += 1


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


@njit(cache=True)
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

    heap = np.empty((ends.shape[0], 3))
    n = 0
    for e in range(ends.shape[0]):
        u, v = ends[e, 0], ends[e, 1]
        if alive[e] and movable[u] and movable[v]:
            pair_terms(values, edge_values[e], u, v, n_colour, n_pixels, epsilon, texture_floor, terms)
            score = _linear(coefficients, terms, intercept)
            if score > min_log_odds:
                heap[n, 0] = -score
                heap[n, 1] = e
                heap[n, 2] = stamp[e]
                n += 1
    _heapify(heap, np.int64(n))
    while n:
        _, e, version = _heap_pop(heap, np.int64(n))
        n -= 1
        if not alive[e] or stamp[e] != version:
            continue
        u, v = ends[e, 0], ends[e, 1]
        pair_terms(values, edge_values[e], u, v, n_colour, n_pixels, epsilon, texture_floor, terms)
        score = _linear(coefficients, terms, intercept)
        if score <= min_log_odds:
            continue
        if n and -score > heap[0, 0]:
            heap = _heap_push(heap, n, -score, e, version)
            n += 1
            continue
        source, target = (u, v) if (values[u, 0], v) < (values[v, 0], u) else (v, u)
        if record:
            sources[n_merges] = source
            targets[n_merges] = target
            for t in range(10):
                merge_terms[n_merges, t] = terms[t]
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
                heap = _heap_push(heap, n, -score, edge, stamp[edge])
                n += 1
    if not record:
        n_merges = 0
    return sources[:n_merges], targets[:n_merges], merge_terms[:n_merges]


@njit(cache=True)
def region_roots(parent):
    """The root of every region (path compression applied to ``parent``)."""
    roots = np.empty(parent.shape[0], dtype=np.int64)
    for r in range(parent.shape[0]):
        i = r
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving (as _root, whose int32 compilation this would duplicate)
            i = parent[i]
        roots[r] = i
    return roots
