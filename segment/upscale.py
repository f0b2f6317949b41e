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
   conditional modes with the ICM kernel of :mod:`segment.smoothing` (each
   pixel's options are the nearby labels), so the result does not depend on
   the number of threads.

Both steps work on bands of rows (:func:`refine_rows`), each labelled in a
window that reaches ``MARGIN`` rows further: ICM moves a label change by at
most one row per phase, so a band's labels equal those of the whole image
labelled at once, and a huge scan can be refined band by band within a
memory budget. :func:`working_copy` makes the downscaled copy band by band
as well.

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
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numba import njit

from segment import sampling, smoothing, threads
from segment.features import FeatureSpec

# Working pixels on either side of a label change whose full-resolution pixels are relabelled.
BAND_RADIUS = 2
# The boundaries settle within a few sweeps; later sweeps only creep along near-ties (<0.1 % of the band).
MAX_SWEEPS = 8
# Rows a band's window reaches beyond it: more than one row per ICM phase of MAX_SWEEPS sweeps.
MARGIN = 4 * MAX_SWEEPS + 2
# Full-resolution pixels per band when the whole image is refined in memory.
BAND_PIXELS = 4_000_000
# Full-resolution pixels sampled (on a grid) to estimate each region's colour Gaussian.
COLOUR_SAMPLE = 200_000
# Fewer sampled pixels than this away from the boundaries: the region's pixels near them are used too.
MIN_REGION_SAMPLE = 30
# Floor on the colour variances, in squared feature units: 1 is a just-noticeable difference in Lab.
MIN_VARIANCE = 1.0
# Band pixels whose full-resolution colours are computed at a time.
CHUNK = 65_536
# Fewest working rows worth a thread of their own when area-averaging a band.
ROWS_PER_THREAD = 16
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


def band_starts(height: int, rows_per_band: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive bands of ``rows_per_band`` rows covering ``height`` rows."""
    rows_per_band = max(1, rows_per_band)
    for start in range(0, height, rows_per_band):
        yield start, min(height, start + rows_per_band)


# ------------------------------------------------------------ working copy
def _area_weights(full: int, work: int) -> tuple[np.ndarray, np.ndarray]:
    """Area weights of ``full`` cells on ``work`` cells, in units of 1 / work.

    Working cell j covers full cells [j full / work, (j + 1) full / work);
    full cell i falls in working cell ``first[i]`` with weight ``weight[i]``
    and in the next one with ``work - weight[i]``. Integers, so sums are exact.
    """
    i = np.arange(full, dtype=np.int64)
    first = i * work // full
    weight = np.minimum(work, (first + 1) * full - i * work)
    return first, weight


@njit(nogil=True, cache=True)
def _area_accumulate(block, start, row_first, row_weight, col_first, col_weight, units, acc, first, last):
    """Add the area-weighted values of full rows ``start:start + len(block)`` to their working rows.

    ``block`` (rows, W, C) float32; ``units`` = (h, w), the denominators of
    the weights (:func:`_area_weights`); ``acc`` (h, w, C) float64, updated in
    place, for working rows ``low + first`` to ``low + last - 1`` where
    ``low`` is the first working row the block reaches. Each working row is
    summed by one thread over its full rows in order, so the sums do not
    depend on how the rows are split into blocks or threads.
    """
    rows, W, C = block.shape
    stop = start + rows
    low = row_first[start]
    for j in range(low + first, low + last):
        for y in range(start, stop):
            if row_first[y] == j:
                wy = row_weight[y]
            elif row_first[y] + 1 == j:
                wy = units[0] - row_weight[y]
            else:
                continue
            if wy == 0:
                continue
            for x in range(W):
                k = col_first[x]
                wx = col_weight[x]
                for c in range(C):
                    acc[j, k, c] += wy * wx * np.float64(block[y - start, x, c])
                rest = units[1] - wx
                if rest > 0:
                    for c in range(C):
                        acc[j, k + 1, c] += wy * rest * np.float64(block[y - start, x, c])


def working_copy(image: np.ndarray, spec: FeatureSpec, shape: tuple[int, int], rows_per_band: int | None = None) -> np.ndarray:
    """The image's feature bands, area-averaged down to ``shape``, made band by band.

    Parameters
    ----------
    image : (H, W[, C]) ndarray
        The full-resolution image.
    spec : FeatureSpec
        Its feature spec; the copy holds :meth:`FeatureSpec.unit` values.
    shape : (h, w)
        Size of the copy, at most (H, W).
    rows_per_band : int, optional
        Full rows converted at a time (all by default); the result is the
        same for any value.

    Returns
    -------
    (h, w[, n_bands]) float32 ndarray
        Values in [0, 1], rounded to the levels of an integer image;
        :meth:`FeatureSpec.for_working_copy` describes it.
    """
    H, W = image.shape[:2]
    h, w = shape
    row_first, row_weight = _area_weights(H, h)
    col_first, col_weight = _area_weights(W, w)
    acc = np.zeros((h, w, spec.n_bands), dtype=np.float64)
    for start, stop in band_starts(H, rows_per_band or H):
        unit = np.ascontiguousarray(spec.unit(image[start:stop]), dtype=np.float32).reshape(stop - start, W, -1)
        low, high = row_first[start], min(row_first[stop - 1] + 1, h - 1)
        args = unit, start, row_first, row_weight, col_first, col_weight, np.array([h, w]), acc
        threads.run_parts(_area_accumulate, high + 1 - low, *args, min_part=ROWS_PER_THREAD)
    acc /= float(H) * float(W)  # every working pixel's weights sum to (H / h * h) * (W / w * w)
    if image.dtype.kind == "u":
        # Back to the image's own levels, as an integer resize gives: the fit and the
        # region merging downstream were tuned on such copies and are sensitive to it.
        levels = float(np.iinfo(image.dtype).max)
        acc = np.round(acc * levels) / levels
    copy = acc.astype(np.float32)
    return copy[:, :, 0] if spec.n_bands == 1 else copy


def enlarge_rows(small: np.ndarray, shape: tuple[int, int], start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of ``small`` (h, w) enlarged to ``shape`` by bilinear interpolation, float32.

    Pixel centres are aligned (as OpenCV's INTER_LINEAR), edges clamped.
    """
    H, W = shape
    h, w = small.shape

    def taps(full: int, work: int, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = np.clip((index + 0.5) * (work / full) - 0.5, 0, work - 1)
        low = np.floor(position).astype(np.int64)
        return low, np.minimum(low + 1, work - 1), (position - low).astype(np.float32)

    y0, y1, fy = taps(H, h, np.arange(start, stop))
    x0, x1, fx = taps(W, w, np.arange(W))
    small = small.astype(np.float32, copy=False)
    rows = small[y0] * (1 - fy)[:, None] + small[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


# ----------------------------------------------------------------- kernels
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


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _candidate_scores(colours, cell, candidates, means, precisions, log_norms, out, first, last):
    """Gaussian log-density of each pixel's colour under each candidate region (-inf for padding).

    ``out[i, j]`` = ``log_norms[r] - (c - means[r])' precisions[r] (c - means[r]) / 2``
    for ``c = colours[i]`` and ``r = candidates[cell[i], j]``, ``first <= i < last``.
    """
    C = colours.shape[1]
    for i in range(first, last):
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


@dataclass(frozen=True)
class Refinement:
    """What :func:`refine_rows` needs for every band of one image (from :func:`prepare_refinement`)."""

    regions: np.ndarray  # (h, w) int32 final labels of the working copy
    row_of: np.ndarray  # working row of each full row
    col_of: np.ndarray  # working column of each full column
    cell_row: np.ndarray  # (h, w) row in ``candidates`` of each working pixel near a label change, else -1
    candidates: np.ndarray  # (Mc, C) labels within BAND_RADIUS of those pixels, 0-padded
    means: np.ndarray
    precisions: np.ndarray
    log_norms: np.ndarray
    beta: float


def prepare_refinement(regions: np.ndarray, work_colours: np.ndarray, image: np.ndarray, spec: FeatureSpec, beta: float) -> Refinement:
    """Find the working pixels near a label change and estimate each region's colour Gaussian.

    Parameters
    ----------
    regions : (h, w) int32 ndarray
        Final labels of the working copy (1..R; no background).
    work_colours : (h, w, C) float32 ndarray
        Colour features of the working copy (used for regions too small to
        be sampled at full resolution).
    image : (H, W[, C]) ndarray
        The full-resolution image.
    spec : FeatureSpec
        Its feature spec (colour columns only are used).
    beta : float
        Potts prior strength among full-resolution neighbours (0: the
        colour likelihood alone decides).
    """
    H, W = image.shape[:2]
    h, w = regions.shape
    regions = np.ascontiguousarray(regions, dtype=np.int32)
    row_of, col_of = nearest_cells(H, h), nearest_cells(W, w)
    cell_row, candidates = _band_cells(regions, BAND_RADIUS)
    n_regions = int(regions.max()) + 1
    sample = sampling.grid_pixels((H, W), COLOUR_SAMPLE)
    sample_cells = row_of[sample // W], col_of[sample % W]
    sample_regions = regions[sample_cells]
    colours = spec.pixel_colours(image, sample)
    tier = (cell_row[sample_cells] >= 0).astype(np.int8)  # 1: near a boundary
    unsampled = np.bincount(sample_regions, minlength=n_regions) < MIN_REGION_SAMPLE
    if unsampled[1:].any():  # regions too small for the grid: add their working pixels
        extra = np.flatnonzero(unsampled[regions.ravel()])
        colours = np.concatenate([colours, work_colours.reshape(h * w, -1)[extra]])
        sample_regions = np.concatenate([sample_regions, regions.ravel()[extra]])
        tier = np.concatenate([tier, np.full(len(extra), 2, np.int8)])
    means, precisions, log_norms = region_colour_models(colours, sample_regions, n_regions, tier)
    return Refinement(regions, row_of, col_of, cell_row, candidates, means, precisions, log_norms, beta)


def refine_rows(refinement: Refinement, image: np.ndarray, spec: FeatureSpec, start: int, stop: int) -> np.ndarray:
    """Full-resolution labels of rows ``start:stop``, (stop - start, W) int32.

    The rows are labelled in a window ``MARGIN`` rows larger on each side
    (starting on an even row, so that its ICM phases are the whole image's),
    which makes them equal to those of :func:`refine_labels` on the whole image.
    """
    W = image.shape[1]
    r = refinement
    top = max(0, start - MARGIN) // 2 * 2
    bottom = min(image.shape[0], stop + MARGIN)
    labels = np.ascontiguousarray(r.regions[r.row_of[top:bottom]][:, r.col_of])
    if len(r.candidates) == 0:
        return labels[start - top : stop - top]
    cells = r.cell_row[r.row_of[top:bottom]][:, r.col_of]
    flat = np.flatnonzero(cells >= 0)
    candidate = np.full(labels.shape, -1, dtype=np.int32)
    candidate.reshape(-1)[flat] = np.arange(len(flat), dtype=np.int32)
    option_row = np.ascontiguousarray(cells.reshape(-1)[flat])
    del cells
    scores = np.empty((len(flat), r.candidates.shape[1]), dtype=np.float32)
    for first in range(0, len(flat), CHUNK):
        part = slice(first, first + CHUNK)
        colours = spec.pixel_colours(image, top * W + flat[part])
        args = colours, option_row[part], r.candidates, r.means, r.precisions, r.log_norms, scores[part]
        threads.run_parts(_candidate_scores, len(colours), *args, min_part=CHUNK // 4)
    smoothing.run_icm(labels, candidate, scores, r.beta, MAX_SWEEPS, r.candidates, option_row)
    return labels[start - top : stop - top]


def refine_labels(
    regions: np.ndarray,
    work_colours: np.ndarray,
    image: np.ndarray,
    spec: FeatureSpec,
    beta: float,
    rows_per_band: int | None = None,
) -> np.ndarray:
    """Full-resolution labels of ``image`` from the labels of its working copy.

    Parameters
    ----------
    regions, work_colours, image, spec, beta
        As :func:`prepare_refinement`.
    rows_per_band : int, optional
        Rows refined at a time (about ``BAND_PIXELS`` pixels by default);
        the result is the same for any value.

    Returns
    -------
    (H, W) int32 ndarray
    """
    H, W = image.shape[:2]
    refinement = prepare_refinement(regions, work_colours, image, spec, beta)
    rows_per_band = rows_per_band or max(2 * MARGIN, BAND_PIXELS // W)
    labels = np.empty((H, W), dtype=np.int32)
    for start, stop in band_starts(H, rows_per_band):
        labels[start:stop] = refine_rows(refinement, image, spec, start, stop)
    return labels
