"""Spatial coherence: a Potts Markov random field prior on the labels of a mixture.

Every pixel prefers the components of its neighbours: the log-prior of
component k at pixel i is ``beta * sum_j w_ij [label_j == k]`` over the
neighbours j. A :class:`Neighbourhood` sets the weights: in an image, 1 for the
4 edge neighbours and 1/sqrt(2) for the 4 diagonal ones (:data:`PLANE`); in a
volume, the 6 face neighbours, those of the adjacent planes weighted by the
voxel spacing (:func:`volume_neighbourhood`). :func:`smooth_labels` finds the
labels that maximise the posterior under this prior by iterated conditional
modes (ICM); the pipeline alternates it with EM refits of the mixture under
the same prior (HMRF-EM, see :func:`potts_log_prior`), so the prior shapes the
model, not only its output.

One set of kernels serves images and volumes: an image is a volume of one
plane, (1, H, W). The ICM updates run in interleaved phases (plane parity x
row parity x column parity; a single plane has four): pixels of one phase
are never neighbours, so threads update the rows of a phase at the same time
from a fixed state of the others. The result is that of a sequential ICM
sweep in that order, identical whatever the number of threads. Pixels whose
mixture posterior is so confident that no neighbourhood could overturn it are
never visited, and a pixel is re-examined only after a neighbour changed, so
each sweep after the first touches only the few pixels still in play.

The same ICM (:func:`run_icm`) places region boundaries at full resolution in
:mod:`segment.upscale`; there each pixel chooses among the labels near it,
scored by region colour models, instead of among all mixture components.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from segment import threads
from segment.gmm import Mixture

# No nnan/ninf: log-posteriors are legitimately -inf.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
DIAGONAL_WEIGHT = 1.0 / math.sqrt(2.0)
# Fewest candidate pixels worth a thread of their own (the result is the same
# whatever the number of threads). At 100_000 a BSDS500 photo (0.15 MP) ran
# its smoothing on one thread; 10_000-40_000 all took 0.9x its time per image.
PIXELS_PER_THREAD = 20_000


@dataclass(frozen=True)
class Neighbourhood:
    """Weights of the neighbours in the Potts prior, as multiples of beta.

    Attributes
    ----------
    edge : float
        Each of the 4 in-plane edge neighbours (y +- 1, x +- 1).
    diagonal : float
        Each of the 4 in-plane diagonal neighbours.
    through : float
        Each of the 2 neighbours in the adjacent planes (z +- 1) of a volume.

    Examples
    --------
    >>> PLANE.total == 4 + 4 / math.sqrt(2)
    True
    >>> volume_neighbourhood((2.0, 1.0, 1.0))
    Neighbourhood(edge=1.0, diagonal=0.0, through=0.5)
    """

    edge: float = 1.0
    diagonal: float = DIAGONAL_WEIGHT
    through: float = 0.0

    @property
    def total(self) -> float:
        """Sum of the weights: the largest log-prior a label can get, over beta."""
        return 4.0 * self.edge + 4.0 * self.diagonal + 2.0 * self.through

    def weights(self, beta: float) -> tuple[np.float32, np.float32, np.float32]:
        """Log-prior per agreeing edge, diagonal and through-plane neighbour."""
        return np.float32(beta * self.edge), np.float32(beta * self.diagonal), np.float32(beta * self.through)


# The 8-neighbourhood of an image's pixels.
PLANE = Neighbourhood()


def volume_neighbourhood(spacing: tuple[float, float, float] | None = None) -> Neighbourhood:
    """The 6-neighbourhood of a volume's voxels, spaced ``spacing`` (z, y, x).

    The neighbours in the adjacent planes weigh the in-plane spacing over the
    plane spacing, at most 1: thick slices (a plane spacing of 3 mm beside
    1 mm pixels) say less about a voxel than its in-plane neighbours, as a
    diagonal neighbour does in an image. No spacing counts every neighbour 1.
    """
    if spacing is None:
        return Neighbourhood(1.0, 0.0, 1.0)
    dz, dy, dx = (float(s) for s in spacing)
    if not all(math.isfinite(s) and s > 0 for s in (dz, dy, dx)):
        raise ValueError(f"spacing must be three positive numbers (z, y, x); got {spacing!r}")
    return Neighbourhood(1.0, 0.0, min(1.0, math.sqrt(dy * dx) / dz))


@dataclass(frozen=True)
class SmoothingInfo:
    """What a call of :func:`smooth_labels` did.

    Attributes
    ----------
    sweeps : int
        Full ICM sweeps run (the last one changes nothing when converged).
    changed : int
        Label changes over all sweeps.
    candidates : int
        Pixels whose label the prior could change (the others were skipped).
    converged : bool
        True when the last sweep changed no label.
    """

    sweeps: int
    changed: int
    candidates: int
    converged: bool


# ----------------------------------------------------------------- kernels
# Labels, candidates and per-pixel state are (Z, H, W): an image is (1, H, W).
# Every kernel takes ``options`` (n, C) int32 and ``option_row`` (M,) int32:
# candidate pixel i may take the labels ``options[option_row[i]]`` (0 pads a
# row), scored by column j of ``data``. An empty ``option_row`` means the
# labels 1..K for every pixel, column k scoring label k + 1 (a mixture's
# components); ``options`` is then not read. ``edge``, ``diagonal`` and
# ``through`` are float32 log-priors per agreeing neighbour (Neighbourhood.weights).
# Scores are indexed by label (``score[label]``), so a neighbour's vote needs
# no search among the options; a label that is no option of the pixel keeps
# the score -inf. The per-pixel helpers are inlined: as calls they halved the
# speed of the ICM sweeps. Loops rather than slice assignments: those take
# seconds longer to compile.
NO_OPTIONS = np.empty((1, 0), dtype=np.int32)
ALL_LABELS = np.empty(0, dtype=np.int32)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _add_neighbour_votes(labels, z, y, x, edge, diagonal, through, score):
    """Add each neighbour's weight to ``score[its label]`` at (z, y, x): in-plane first, then the adjacent planes."""
    Z, H, W = labels.shape
    for ny in range(max(y - 1, 0), min(y + 2, H)):
        for nx in range(max(x - 1, 0), min(x + 2, W)):
            label = labels[z, ny, nx]
            if label > 0 and (ny != y or nx != x):
                score[label] += edge if ny == y or nx == x else diagonal
    for nz in range(max(z - 1, 0), min(z + 2, Z)):
        label = labels[nz, y, x]
        if label > 0 and nz != z:
            score[label] += through


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _neighbour_changed_since(changed, z, y, x, step):
    """Whether a neighbour of (z, y, x) (its 3 x 3 window, the voxels above and below) changed after ``step``."""
    Z, H, W = changed.shape
    for ny in range(max(y - 1, 0), min(y + 2, H)):
        for nx in range(max(x - 1, 0), min(x + 2, W)):
            if changed[z, ny, nx] > step:
                return True
    return (z > 0 and changed[z - 1, y, x] > step) or (z < Z - 1 and changed[z + 1, y, x] > step)


@njit(cache=True, fastmath=FASTMATH)
def _row_in_play(row_changed, row_evaluated, z, y, px):
    """Whether a neighbour of the pixels (z, y, px), (z, y, px + 2), ... changed since they were last examined."""
    Z, H = row_changed.shape[0], row_changed.shape[1]
    last = row_evaluated[z, y, px]
    if last < 0 or row_changed[z, y, 1 - px] > last:
        return True
    if y > 0 and max(row_changed[z, y - 1, 0], row_changed[z, y - 1, 1]) > last:
        return True
    if y < H - 1 and max(row_changed[z, y + 1, 0], row_changed[z, y + 1, 1]) > last:
        return True
    return (z > 0 and row_changed[z - 1, y, px] > last) or (z < Z - 1 and row_changed[z + 1, y, px] > last)


@njit(cache=True, fastmath=FASTMATH)
def _icm_row(labels, candidate, data, options, option_row, edge, diagonal, through, state, step, z, y, px, score):
    """ICM updates of the pixels (z, y, px), (z, y, px + 2), ... of one row; returns the number changed.

    ``score`` is indexed by label, -inf everywhere on entry and on return.
    """
    evaluated, changed, row_evaluated, row_changed = state
    if not _row_in_play(row_changed, row_evaluated, z, y, px):
        return 0
    row_evaluated[z, y, px] = step
    W = labels.shape[2]
    C = data.shape[1]
    direct = option_row.shape[0] == 0
    n_changed = 0
    for x in range(px, W, 2):
        row = candidate[z, y, x]
        if row < 0:
            continue
        last = evaluated[z, y, x]
        if last >= 0 and not _neighbour_changed_since(changed, z, y, x, last):
            continue
        evaluated[z, y, x] = step
        choices = options[0] if direct else options[option_row[row]]
        for j in range(C):
            label = j + 1 if direct else choices[j]
            if label > 0:
                score[label] = data[row, j]
        _add_neighbour_votes(labels, z, y, x, edge, diagonal, through, score)
        current = labels[z, y, x]
        best = current
        for j in range(C):
            label = j + 1 if direct else choices[j]
            if label > 0 and score[label] > score[best]:
                best = label
        for j in range(C):
            label = j + 1 if direct else choices[j]
            if label > 0:
                score[label] = -np.inf
        if best != current:
            labels[z, y, x] = best
            changed[z, y, x] = step
            n_changed += 1
    if n_changed:
        row_changed[z, y, px] = step
    return n_changed


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def icm_phase(labels, candidate, data, options, option_row, max_label, edge, diagonal, through, state, step, pz, py, px, first,
              last):
    """One ICM phase: update the pixels (z, y, x) with z % 2 == pz, y % 2 == py and x % 2 == px.

    The phase's rows are numbered plane by plane: row ``r`` is
    ``(pz + 2 * (r // n), py + 2 * (r % n))`` with ``n`` the phase's rows per
    plane; rows ``first <= r < last`` are updated (different calls may run at
    the same time on disjoint row ranges).

    Parameters
    ----------
    labels : (Z, H, W) int32
        Current labels (0 = no pixel, never changed, casts no vote); updated in place.
    candidate : (Z, H, W) int32
        Row of each pixel in ``data``, or -1 for a pixel never updated.
    data : (M, C) float32
        Data term of each option of the candidate pixels: a log-posterior
        up to a per-pixel constant (e.g. log weight + log density of a
        mixture component; -inf for padding options).
    options, option_row : int32
        The labels each candidate pixel may take (see the note above the kernels).
    max_label : int
        The largest label in ``labels`` and ``options``, or C when larger.
    edge, diagonal, through : float32
        Log-prior added per edge / diagonal / adjacent-plane neighbour with the same label.
    state : tuple of four int32 arrays
        ``evaluated``, ``changed`` (Z, H, W): step at which each pixel was
        last examined / last changed (-1 never); ``row_evaluated``,
        ``row_changed`` (Z, H, 2): the same per row and column parity (the
        latest step of any of those pixels), so that rows without news are
        skipped. Updated in place. A pixel is examined again only if a
        neighbour changed since.
    step : int
        Number of this phase (increasing across calls).
    pz, py, px : int
        Parities of the planes, rows and columns updated.

    Returns
    -------
    n_changed : int
        Number of labels changed. A pixel keeps its label on ties, else
        takes the first best option.
    """
    score = np.full(max_label + 1, -np.inf, dtype=np.float32)
    rows_per_plane = (labels.shape[1] - py + 1) // 2
    total = 0
    for r in range(first, last):
        z, y = pz + 2 * (r // rows_per_plane), py + 2 * (r % rows_per_plane)
        total += _icm_row(labels, candidate, data, options, option_row, edge, diagonal, through, state, step, z, y, px, score)
    return total


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def candidate_confidence(labels, candidate, data, edge, diagonal, through, confidence, first, last):
    """Posterior of each candidate pixel's label under mixture and prior.

    Writes ``confidence[z, y, x]`` (float32, in place) for every pixel with
    ``candidate[z, y, x] >= 0``: the softmax over k of ``data[row, k]`` plus
    the neighbour log-prior, taken at the pixel's label. Other pixels are
    left unchanged, and only rows ``first`` to ``last - 1`` (row ``r`` is
    row ``r % H`` of plane ``r // H``). Shapes and dtypes as in
    :func:`icm_phase`; pixels may take the labels 1..K.
    """
    H, W = labels.shape[1], labels.shape[2]
    K = data.shape[1]
    score = np.zeros(K + 1, dtype=np.float32)  # by label; 0 is no label
    for r in range(first, last):
        z, y = r // H, r % H
        for x in range(W):
            row = candidate[z, y, x]
            if row < 0:
                continue
            for k in range(K):
                score[k + 1] = data[row, k]
            _add_neighbour_votes(labels, z, y, x, edge, diagonal, through, score)
            top = score[1]
            for k in range(2, K + 1):
                top = max(top, score[k])
            total = 0.0
            for k in range(1, K + 1):
                total += math.exp(score[k] - top)
            confidence[z, y, x] = math.exp(score[labels[z, y, x]] - top) / total


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def neighbour_log_prior(labels, pixels, edge, diagonal, through, out, first, last):
    """Potts log-prior of chosen pixels from their neighbours' labels.

    Parameters
    ----------
    labels : (Z, H, W) int32
        Labels 1..K, 0 for none.
    pixels : (M,) int64
        Flat (raster) indices of the pixels.
    edge, diagonal, through : float32
        Log-prior per edge / diagonal / adjacent-plane neighbour with a label.
    out : (M, K) float32
        Written in place: ``out[i, k]`` = sum of the weights of the
        neighbours of pixel ``pixels[i]`` labelled k + 1, for ``first <= i < last``.
    """
    H, W = labels.shape[1], labels.shape[2]
    K = out.shape[1]
    votes = np.zeros(K + 1, dtype=np.float32)  # by label; 0 is no label
    for i in range(first, last):
        for k in range(K + 1):
            votes[k] = 0.0
        z, rest = pixels[i] // (H * W), pixels[i] % (H * W)
        _add_neighbour_votes(labels, z, rest // W, rest % W, edge, diagonal, through, votes)
        for k in range(K):
            out[i, k] = votes[k + 1]


# --------------------------------------------------------------- wrappers
def _as_volume(array: np.ndarray) -> np.ndarray:
    """A (H, W) image as a (1, H, W) view; a (Z, H, W) volume as it is."""
    return array[None] if array.ndim == 2 else array


def potts_log_prior(
    labels: np.ndarray, pixels: np.ndarray, beta: float, n_components: int, neighbourhood: Neighbourhood = PLANE
) -> np.ndarray:
    """Log-prior of every component at some pixels, from their neighbours' labels.

    Parameters
    ----------
    labels : (H, W) or (Z, H, W) int ndarray
        Labels 1..K; 0 marks pixels without a label (they cast no vote).
    pixels : (M,) int ndarray
        Flat raster indices into ``labels``.
    beta : float
        Smoothing strength: the log-prior gained per agreeing edge neighbour.
    n_components : int
        Number of components K.
    neighbourhood : Neighbourhood
        Neighbour weights: :data:`PLANE` (diagonal neighbours count
        1/sqrt(2)) or :func:`volume_neighbourhood`.

    Returns
    -------
    log_prior : (M, K) float32 ndarray
        Suitable for ``Mixture.fit(X, log_prior=...)``.

    Examples
    --------
    >>> labels = np.array([[1, 1], [2, 1]])
    >>> [round(float(v), 3) for v in potts_log_prior(labels, np.array([0]), 1.0, 2)[0]]
    [1.707, 1.0]
    """
    labels = _as_volume(np.ascontiguousarray(labels, dtype=np.int32))
    pixels = np.ascontiguousarray(pixels, dtype=np.int64)
    out = np.empty((len(pixels), n_components), dtype=np.float32)
    weights = neighbourhood.weights(beta)
    threads.run_parts(neighbour_log_prior, len(pixels), labels, pixels, *weights, out, min_part=PIXELS_PER_THREAD)
    return out


def smooth_labels(
    model: Mixture,
    features: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray,
    beta: float,
    *,
    valid: np.ndarray | None = None,
    max_sweeps: int = 20,
    update_confidence: bool = True,
    neighbourhood: Neighbourhood = PLANE,
) -> SmoothingInfo:
    """Relabel pixels to maximise the posterior under a Potts prior (ICM), in place.

    Parameters
    ----------
    model : Mixture
        Fitted mixture that produced ``labels``.
    features : (N, D) ndarray
        Features of the labelled pixels in raster order: all pixels, or
        those where ``valid`` is true.
    labels : (H, W) or (Z, H, W) int32 ndarray
        Start labels 1..K (0 = unlabelled pixel, left alone), normally the
        mixture's most probable components; updated in place.
    confidence : float32 ndarray, the shape of ``labels``
        The mixture posterior of each pixel's label; updated in place to
        the posterior under mixture and prior wherever smoothing could
        change the label (elsewhere the label is certain to within
        ``exp(-beta * neighbourhood.total)`` and its value is kept).
    beta : float
        Smoothing strength >= 0 (0 returns at once).
    valid : (N,) bool ndarray, optional
        Which pixels ``features`` describes; None for all.
    max_sweeps : int
        Upper bound on the ICM sweeps.
    update_confidence : bool
        False leaves ``confidence`` as it was (when it is recomputed anyway).
    neighbourhood : Neighbourhood
        :data:`PLANE` for an image, :func:`volume_neighbourhood` for a volume.

    Returns
    -------
    SmoothingInfo

    Notes
    -----
    Labels are only visited where the mixture's posterior of the start label
    is below ``1 / (1 + exp(-beta * neighbourhood.total))`` (with a small
    safety margin): elsewhere the log-likelihood lead of the label exceeds
    the largest log-prior any neighbourhood can give another label, so ICM
    could never change it. A start label that is not the mixture's most
    probable component must therefore not be above that posterior.
    """
    if labels.dtype != np.int32 or confidence.dtype != np.float32 or not labels.flags.c_contiguous:
        raise TypeError("labels must be C-contiguous int32 and confidence float32")
    if labels.shape != confidence.shape or labels.ndim not in (2, 3):
        raise ValueError(f"labels and confidence must be the same (H, W) or (Z, H, W) shape; got {labels.shape} and {confidence.shape}")
    if beta < 0 or not np.isfinite(beta):
        raise ValueError(f"beta must be a finite number >= 0; got {beta!r}")
    if beta == 0 or labels.size == 0:
        return SmoothingInfo(0, 0, 0, True)
    labels, confidence = _as_volume(labels), _as_volume(confidence)
    flat = labels.reshape(-1)
    in_play = _uncertain(confidence.reshape(-1), beta * neighbourhood.total) & (flat > 0)
    pixels = np.flatnonzero(in_play)
    rows = pixels if valid is None else (np.cumsum(valid) - 1)[pixels]
    data = np.ascontiguousarray(model.weighted_log_prob(features[rows]), dtype=np.float32)
    candidate = np.full(labels.shape, -1, dtype=np.int32)
    candidate.reshape(-1)[pixels] = np.arange(len(pixels), dtype=np.int32)
    sweeps, total, converged = run_icm(labels, candidate, data, beta, max_sweeps, neighbourhood=neighbourhood)
    if len(pixels) and update_confidence:
        n_rows = labels.shape[0] * labels.shape[1]
        min_rows = math.ceil(n_rows * PIXELS_PER_THREAD / len(pixels))
        args = labels, candidate, data, *neighbourhood.weights(beta), confidence
        threads.run_parts(candidate_confidence, n_rows, *args, min_part=min_rows)
    return SmoothingInfo(sweeps, total, len(pixels), converged)


def run_icm(
    labels: np.ndarray,
    candidate: np.ndarray,
    data: np.ndarray,
    beta: float,
    max_sweeps: int,
    options: np.ndarray = NO_OPTIONS,
    option_row: np.ndarray = ALL_LABELS,
    *,
    neighbourhood: Neighbourhood = PLANE,
) -> tuple[int, int, bool]:
    """Iterated conditional modes under the Potts prior, in place, until a sweep changes nothing.

    Parameters
    ----------
    labels : (H, W) or (Z, H, W) int32 ndarray
        Start labels (0 = no pixel); updated in place.
    candidate : int32 ndarray, the shape of ``labels``
        Row of each pixel in ``data``, -1 for pixels that keep their label.
    data : (M, C) float32 ndarray
        Data term of each candidate pixel's options (see :func:`icm_phase`).
    beta : float
        Potts prior strength.
    max_sweeps : int
        Upper bound on the sweeps (four phases each per plane parity).
    options, option_row : int32 ndarrays, optional
        The labels each candidate may take, ``options[option_row[i]]``
        (0 pads); by default the labels 1..C, column k for label k + 1.
    neighbourhood : Neighbourhood
        Neighbour weights (:data:`PLANE` for an image).

    Returns
    -------
    sweeps, changed, converged : int, int, bool
    """
    labels, candidate = _as_volume(labels), _as_volume(candidate)
    depth, height = labels.shape[:2]
    weights = neighbourhood.weights(beta)
    max_label = max([data.shape[1], int(labels.max(initial=0))] + ([int(options.max())] if options.size else []))
    state = tuple(np.full(labels.shape, -1, dtype=np.int32) for _ in range(2))
    state += tuple(np.full((depth, height, 2), -1, dtype=np.int32) for _ in range(2))
    phases = [(pz, py, px) for pz in range(min(depth, 2)) for py in (0, 1) for px in (0, 1)]
    step = total = sweeps = 0
    converged = len(data) == 0
    while not converged and sweeps < max_sweeps:
        sweep_changes = 0
        for pz, py, px in phases:
            n_rows = ((depth - pz + 1) // 2) * ((height - py + 1) // 2)
            min_rows = math.ceil(n_rows * PIXELS_PER_THREAD / max(len(data), 1))
            args = labels, candidate, data, options, option_row, max_label, *weights, state, step, pz, py, px
            sweep_changes += sum(threads.run_parts(icm_phase, n_rows, *args, min_part=min_rows))
            step += 1
        sweeps += 1
        total += sweep_changes
        converged = sweep_changes == 0
    return sweeps, total, converged


def _uncertain(confidence: np.ndarray, lead: float) -> np.ndarray:
    """Pixels whose posterior does not prove a log-likelihood lead of ``lead`` over every rival.

    A posterior c of the best component bounds the lead over any other one
    from below by log(c / (1 - c)).
    """
    lead = lead * 1.001 + 0.01  # margin for the float32 arithmetic behind ``confidence``
    threshold = np.float32(1.0 / (1.0 + math.exp(-lead)))
    if threshold >= np.float32(1.0):  # float32 cannot prove such a lead
        return np.ones(confidence.shape, dtype=bool)
    return confidence < threshold
