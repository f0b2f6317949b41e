"""Full-resolution labels from a segmentation of a downscaled working copy.

The spatial steps of the pipeline (the smoothing prior and its refit, region
merging) run on a copy of a large image downscaled to a working size; a
region there covers thousands of pixels of the original, so its shape is
known at that size. :func:`refine_labels` brings the labels back:

1. every pixel takes the label of the working pixel it falls in (nearest);
2. pixels near a label change, within ``BAND_RADIUS`` working pixels, are
   labelled again at full resolution. Each may take any label found within
   that distance; a label is scored by the likelihood of the pixel's colour
   under a Gaussian of that region's colours, plus the same Potts prior as
   the smoothing among the pixel's full-resolution neighbours. Iterated
   conditional modes in four interleaved phases, as in
   :mod:`segment.smoothing`, so the result does not depend on the number of
   threads.

The colour Gaussians are estimated from a grid sample of full-resolution
pixels away from the boundaries: the mixture fitted on the working copy
describes averaged pixels, whose noise and texture are weaker than the
original's, so its densities would misjudge original pixels. Position is
left out of the score, since the candidates are already the nearby regions.

Boundaries are therefore placed at full resolution while the regions and
their number come from the working copy.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from segment import features, smoothing
from segment.smoothing import neighbour_changed_since

# Working pixels on either side of a label change whose full-resolution pixels are relabelled.
BAND_RADIUS = 2
# The boundaries settle within a few sweeps; later sweeps only creep along near-ties (<0.1 % of the band).
MAX_SWEEPS = 8
# Columns per cell of the record of where labels changed (pixels with no change nearby are skipped).
SEGMENT = 32
# Full-resolution pixels sampled (on a grid) to estimate each region's colour Gaussian.
COLOUR_SAMPLE = 200_000
# Fewer sampled pixels than this away from the boundaries: the region's pixels near them are used too.
MIN_REGION_SAMPLE = 30
# Floor on the colour variances, in squared feature units: 1 is a just-noticeable difference in Lab.
MIN_VARIANCE = 1.0
# Band pixels whose full-resolution colours are computed at a time.
CHUNK = 65_536
FASTMATH = smoothing.FASTMATH


def working_shape(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """The largest (h, w) with the aspect ratio of (height, width) and at most ``max_pixels`` pixels."""
    scale = min(1.0, math.sqrt(max_pixels / (height * width)))
    return max(1, math.floor(height * scale)), max(1, math.floor(width * scale))


def nearest_cells(full: int, work: int) -> np.ndarray:
    """Index of the working row (column) each of ``full`` rows (columns) falls in, (full,) int64."""
    return np.minimum(((np.arange(full) + 0.5) * (work / full)).astype(np.int64), work - 1)


def cell_sizes(full: int, work: int) -> np.ndarray:
    """Number of full-resolution rows (columns) in each working row (column), (work,) int64."""
    return np.bincount(nearest_cells(full, work), minlength=work)


# ----------------------------------------------------------------- kernels
@njit(parallel=True, cache=True)
def _upsample_nearest(labels, row_of, col_of, out):
    for y in prange(out.shape[0]):
        source = labels[row_of[y]]
        for x in range(out.shape[1]):
            out[y, x] = source[col_of[x]]


@njit(cache=True)
def _window_labels(labels, y, x, radius, found):
    """Distinct labels within ``radius`` of working pixel (y, x), written to ``found``; returns how many."""
    h, w = labels.shape
    n = 0
    for ny in range(max(y - radius, 0), min(y + radius + 1, h)):
        for nx in range(max(x - radius, 0), min(x + radius + 1, w)):
            label = labels[ny, nx]
            seen = False
            for j in range(n):
                if found[j] == label:
                    seen = True
                    break
            if not seen:
                found[n] = label
                n += 1
    return n


@njit(cache=True)
def _mixed_windows(labels, radius):
    """(h, w) bool: whether the (2 radius + 1)^2 window around each working pixel holds more than one label.

    Separable: a window is mixed when one of its rows is, or when its rows
    are each uniform but not all with the same label, i.e. the label
    changes down the column within the window. Label changes are counted
    with running sums, so the cost does not grow with ``radius``.
    """
    h, w = labels.shape
    row_mixed = np.zeros((h, w), dtype=np.int32)
    changes = np.zeros(w, dtype=np.int32)
    for y in range(h):
        # changes[x]: label changes between columns 0..x of this row
        for x in range(1, w):
            changes[x] = changes[x - 1] + (labels[y, x] != labels[y, x - 1])
        for x in range(w):
            row_mixed[y, x] = changes[min(x + radius, w - 1)] - changes[max(x - radius, 0)] > 0
    mixed = np.zeros((h, w), dtype=np.bool_)
    mixed_rows = np.zeros(h + 1, dtype=np.int32)
    down = np.zeros(h, dtype=np.int32)
    for x in range(w):
        for y in range(h):
            mixed_rows[y + 1] = mixed_rows[y] + row_mixed[y, x]
            if y > 0:
                down[y] = down[y - 1] + (labels[y, x] != labels[y - 1, x])
        for y in range(h):
            top, bottom = max(y - radius, 0), min(y + radius, h - 1)
            mixed[y, x] = mixed_rows[bottom + 1] - mixed_rows[top] > 0 or down[bottom] - down[top] > 0
    return mixed


@njit(cache=True)
def _band_cells(labels, radius):
    """Working pixels with more than one label within ``radius``, and those labels.

    Returns ``cell_row`` (h, w) int32: the row of each such pixel in
    ``candidates`` (-1 elsewhere), and ``candidates`` (Mc, C) int32: its
    labels, padded with 0.
    """
    h, w = labels.shape
    mixed = _mixed_windows(labels, radius)
    found = np.empty((2 * radius + 1) ** 2, dtype=labels.dtype)
    cell_row = np.full((h, w), -1, dtype=np.int32)
    n_cells = 0
    widest = 0
    for y in range(h):
        for x in range(w):
            if mixed[y, x]:
                cell_row[y, x] = n_cells
                n_cells += 1
                widest = max(widest, _window_labels(labels, y, x, radius, found))
    candidates = np.zeros((n_cells, widest), dtype=np.int32)
    for y in range(h):
        for x in range(w):
            row = cell_row[y, x]
            if row >= 0:
                n = _window_labels(labels, y, x, radius, found)
                candidates[row, :n] = found[:n]
    return cell_row, candidates


@njit(cache=True)
def _band_pixels(cell_row, row_of, col_of, py, px):
    """Full-resolution band pixels (y % 2 == py, x % 2 == px) in raster order.

    Returns their flat indices, their cells' rows in the candidate table,
    and ``row_start``: pixels ``row_start[r]:row_start[r + 1]`` are in image
    row ``py + 2 r``.
    """
    W = col_of.shape[0]
    n_rows = (row_of.shape[0] - py + 1) // 2
    row_start = np.zeros(n_rows + 1, dtype=np.int64)
    for r in range(n_rows):
        cells = cell_row[row_of[py + 2 * r]]
        count = 0
        for x in range(px, W, 2):
            if cells[col_of[x]] >= 0:
                count += 1
        row_start[r + 1] = row_start[r] + count
    flat = np.empty(row_start[n_rows], dtype=np.int64)
    rows = np.empty(row_start[n_rows], dtype=np.int32)
    i = 0
    for r in range(n_rows):
        y = py + 2 * r
        cells = cell_row[row_of[y]]
        for x in range(px, W, 2):
            if cells[col_of[x]] >= 0:
                flat[i] = y * W + x
                rows[i] = cells[col_of[x]]
                i += 1
    return flat, rows, row_start


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _candidate_scores(colours, cell, candidates, means, precisions, log_norms, out):
    """Gaussian log-density of each pixel's colour under each candidate region (-inf for padding).

    ``out[i, j]`` = ``log_norms[r] - (c - means[r])' precisions[r] (c - means[r]) / 2``
    for ``c = colours[i]`` and ``r = candidates[cell[i], j]``.
    """
    C = colours.shape[1]
    for i in prange(colours.shape[0]):
        labels = candidates[cell[i]]
        for j in range(labels.shape[0]):
            r = labels[j]
            if r == 0:
                out[i, j] = -np.inf
                continue
            quadratic = 0.0
            for a in range(C):
                da = colours[i, a] - means[r, a]
                for b in range(C):
                    quadratic += da * precisions[r, a, b] * (colours[i, b] - means[r, b])
            out[i, j] = log_norms[r] - 0.5 * quadratic


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def _refine_phase(labels, flat, cell, row_start, py, candidates, scores, edge, diagonal, changed, step):
    """ICM update of one phase's band pixels (never neighbours of each other); returns the number changed.

    ``changed[y, s]`` is the last step at which a label changed in row y,
    columns ``s * SEGMENT`` to ``(s + 1) * SEGMENT - 1`` (-1: never); pixels
    whose surroundings saw no change since this phase's previous turn
    (``step - 4``) are skipped, as ICM would change nothing there.
    """
    H, W = labels.shape
    C = candidates.shape[1]
    n_rows = row_start.shape[0] - 1
    n_changed = np.zeros(n_rows, dtype=np.int64)
    for r in prange(n_rows):
        y = py + 2 * r
        agreement = np.empty(C, dtype=np.float32)
        segment = -1
        active = True
        for i in range(row_start[r], row_start[r + 1]):
            x = flat[i] - y * W
            if x // SEGMENT != segment:
                segment = x // SEGMENT
                active = step < 4 or neighbour_changed_since(changed, y, segment, step - 4)
            if not active:
                continue
            options = candidates[cell[i]]
            agreement[:] = 0.0
            for dy in range(-1, 2):
                ny = y + dy
                if ny < 0 or ny >= H:
                    continue
                for dx in range(-1, 2):
                    nx = x + dx
                    if (dy == 0 and dx == 0) or nx < 0 or nx >= W:
                        continue
                    neighbour = labels[ny, nx]
                    for j in range(C):
                        if options[j] == neighbour:
                            agreement[j] += diagonal if dy != 0 and dx != 0 else edge
                            break
            current = labels[y, x]
            best = current
            best_score = -np.inf
            for j in range(C):
                if options[j] == current:
                    best_score = scores[i, j] + agreement[j]
            for j in range(C):
                label = options[j]
                if label == 0 or label == current:
                    continue
                score = scores[i, j] + agreement[j]
                if score > best_score:
                    best, best_score = label, score
            if best != current:
                labels[y, x] = best
                n_changed[r] += 1
                changed[y, x // SEGMENT] = step
    return n_changed.sum()


# --------------------------------------------------------------- wrappers
def region_colour_models(
    colours: np.ndarray, regions: np.ndarray, n_regions: int, tier: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A Gaussian of the colours of each region, from labelled sample pixels.

    Parameters
    ----------
    colours : (N, C) float ndarray
        Colour features of the sample pixels.
    regions : (N,) int ndarray
        Their labels, 0..n_regions - 1.
    n_regions : int
    tier : (N,) int ndarray
        How trustworthy each sample is, 0 best: a region is estimated from
        its tier-0 pixels, with the next tier added while it has fewer than
        ``MIN_REGION_SAMPLE`` (e.g. pixels away from boundaries, then near
        them, then the working copy's).

    Returns
    -------
    means : (n_regions, C) float64
    precisions : (n_regions, C, C) float64
        Inverse covariances, variances floored at ``MIN_VARIANCE``.
    log_norms : (n_regions,) float64
        Log of the Gaussian's normalising constant.
    """
    colours = np.asarray(colours, dtype=np.float64)
    C = colours.shape[1]
    use = np.zeros(len(regions), dtype=bool)
    for level in range(int(tier.max()) + 1):
        scarce = np.bincount(regions[use], minlength=n_regions) < MIN_REGION_SAMPLE
        use |= (tier == level) & scarce[regions]
    regions, colours = regions[use], colours[use]
    counts = np.maximum(np.bincount(regions, minlength=n_regions), 1).astype(np.float64)
    means = np.stack([np.bincount(regions, weights=colours[:, a], minlength=n_regions) for a in range(C)], axis=1)
    means /= counts[:, None]
    covariances = np.empty((n_regions, C, C))
    for a in range(C):
        for b in range(a, C):
            moment = np.bincount(regions, weights=colours[:, a] * colours[:, b], minlength=n_regions) / counts
            covariances[:, a, b] = covariances[:, b, a] = moment - means[:, a] * means[:, b]
    covariances += MIN_VARIANCE * np.eye(C)
    precisions = np.linalg.inv(covariances)
    log_norms = -0.5 * (np.linalg.slogdet(covariances)[1] + C * math.log(2 * math.pi))
    return means, precisions, log_norms


def _grid_pixels(height: int, width: int, size: int) -> np.ndarray:
    """Flat indices of about ``size`` pixels on a regular grid."""
    step = max(1, math.floor(math.sqrt(height * width / size)))
    rows = np.arange(step // 2, height, step)
    cols = np.arange(step // 2, width, step)
    return (rows[:, None] * width + cols[None, :]).ravel()


def refine_labels(
    regions: np.ndarray,
    work_colours: np.ndarray,
    image: np.ndarray,
    color_space: str,
    beta: float,
    stretch: tuple[float, float] | None = None,
) -> np.ndarray:
    """Full-resolution labels of ``image`` from the labels of its working copy.

    Parameters
    ----------
    regions : (h, w) int32 ndarray
        Final labels of the working copy (1..R; no background).
    work_colours : (h, w, C) float32 ndarray
        Colour features of the working copy (used for regions too small to
        be sampled at full resolution).
    image : (H, W[, C]) ndarray
        The full-resolution image.
    color_space : str
        Colour features to compare (those of ``work_colours``).
    beta : float
        Potts prior strength among full-resolution neighbours (0: the
        colour likelihood alone decides).
    stretch : (low, high), optional
        Whole-image float stretch (:func:`segment.features.unit_range`).

    Returns
    -------
    (H, W) int32 ndarray
    """
    H, W = image.shape[:2]
    h, w = regions.shape
    regions = np.ascontiguousarray(regions, dtype=np.int32)
    row_of, col_of = nearest_cells(H, h), nearest_cells(W, w)
    labels = np.empty((H, W), dtype=np.int32)
    _upsample_nearest(regions, row_of, col_of, labels)
    cell_row, candidates = _band_cells(regions, BAND_RADIUS)
    if len(candidates) == 0:
        return labels
    n_regions = int(regions.max()) + 1
    sample = _grid_pixels(H, W, COLOUR_SAMPLE)
    sample_regions = labels.ravel()[sample]
    colours = features.sample_features(image, sample, color_space, 0.0, stretch)
    tier = (cell_row[row_of[sample // W], col_of[sample % W]] >= 0).astype(np.int8)  # 1: near a boundary
    unsampled = np.bincount(sample_regions, minlength=n_regions) < MIN_REGION_SAMPLE
    if unsampled[1:].any():  # regions too small for the grid: add their working pixels
        extra = np.flatnonzero(unsampled[regions.ravel()])
        colours = np.concatenate([colours, work_colours.reshape(h * w, -1)[extra]])
        sample_regions = np.concatenate([sample_regions, regions.ravel()[extra]])
        tier = np.concatenate([tier, np.full(len(extra), 2, np.int8)])
    means, precisions, log_norms = region_colour_models(colours, sample_regions, n_regions, tier)
    edge, diagonal = smoothing.neighbour_weights(beta)
    phases = []
    for py, px in ((0, 0), (0, 1), (1, 0), (1, 1)):
        flat, cell, row_start = _band_pixels(cell_row, row_of, col_of, py, px)
        scores = np.empty((len(flat), candidates.shape[1]), dtype=np.float32)
        for start in range(0, len(flat), CHUNK):
            part = slice(start, start + CHUNK)
            colours = features.sample_features(image, flat[part], color_space, 0.0, stretch)
            _candidate_scores(colours, cell[part], candidates, means, precisions, log_norms, scores[part])
        phases.append((py, flat, cell, row_start, scores))
    changed_at = np.full((H, (W + SEGMENT - 1) // SEGMENT), -1, dtype=np.int32)
    step = 0
    for _ in range(MAX_SWEEPS):
        changed = 0
        for py, flat, cell, row_start, scores in phases:
            changed += int(_refine_phase(labels, flat, cell, row_start, py, candidates, scores, edge, diagonal, changed_at, step))
            step += 1
        if changed == 0:
            break
    return labels
