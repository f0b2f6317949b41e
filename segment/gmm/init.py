"""Initial means for EM: k-means++ seeding or random data points."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from segment.sampling import random_rows

# k-means++ is O(N K D); seeding on a random subset of this size is as good
# for EM and keeps initialisation negligible next to the fit.
SEEDING_SAMPLE = 20_000
# Seedings tried by k-means++; the one with the lowest k-means inertia wins.
N_SEEDINGS = 4
# Lloyd iterations after each seeding (fewer when the centres stop moving).
LLOYD_ITER = 10
# Blocks of points assigned in parallel; fixed, so sums do not depend on the thread count.
LLOYD_BLOCKS = 16


def kmeans_plusplus(X: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Choose initial means by greedy k-means++ seeding refined by Lloyd iterations.

    Each new centre is the best of ``2 + log(K)`` candidates drawn with
    probability proportional to the squared distance to the nearest chosen
    centre; a few Lloyd (k-means) iterations on the same subsample then move
    the centres to cluster means. Of ``N_SEEDINGS`` such runs the one with the
    lowest inertia is kept, which makes EM far less prone to poor local optima
    than a single seeding.

    Parameters
    ----------
    X : (N, D) ndarray
        Data points.
    n_components : int
        Number of centres to choose.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    centres : (n_components, D) float64 ndarray
    """
    points = np.ascontiguousarray(_subsample(X, rng), dtype=np.float64)
    runs = [_lloyd_kernel(points, _seed_centres(points, n_components, rng), LLOYD_ITER) for _ in range(N_SEEDINGS)]
    return min(runs, key=lambda centres: _inertia_kernel(points, centres))


def _seed_centres(points: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    n_points = len(points)
    n_trials = 2 + int(np.log(n_components))
    chosen = np.empty(n_components, dtype=np.int64)
    chosen[0] = rng.integers(n_points)
    closest = np.full(n_points, np.inf)
    _take_closest(points, chosen[0], closest)
    for k in range(1, n_components):
        total = closest.sum()
        if total > 0:
            candidates = np.searchsorted(np.cumsum(closest), rng.random(n_trials) * total)
            candidates = np.minimum(candidates, n_points - 1)
        else:
            candidates = rng.integers(n_points, size=n_trials)
        chosen[k] = _best_candidate(points, closest, candidates)
        _take_closest(points, chosen[k], closest)
    return points[chosen]


@njit(cache=True)
def _squared_distance_to(points, i, j):
    distance = 0.0
    for d in range(points.shape[1]):
        delta = points[i, d] - points[j, d]
        distance += delta * delta
    return distance


@njit(cache=True)
def _best_candidate(points, closest, candidates):
    """The candidate point that, as a new centre, leaves the smallest sum of squared distances to the nearest centre."""
    best, best_potential = candidates[0], np.inf
    for c in candidates:
        potential = 0.0
        for i in range(points.shape[0]):
            potential += min(closest[i], _squared_distance_to(points, i, c))
        if potential < best_potential:
            best, best_potential = c, potential
    return best


@njit(cache=True)
def _take_closest(points, centre, closest):
    """Lower ``closest`` (squared distance to the nearest centre) to the distance to point ``centre``, in place."""
    for i in range(points.shape[0]):
        closest[i] = min(closest[i], _squared_distance_to(points, i, centre))


@njit(cache=True)
def _nearest_into(points, centres, nearest, start, stop, counts, sums):
    """Nearest centre (ties: the lower index) of points ``start:stop``, with their counts and sums per centre.

    Returns the points' sum of squared distances to their nearest centre.
    """
    D = points.shape[1]
    total = 0.0
    for i in range(start, stop):
        best, best_k = np.inf, 0
        for k in range(centres.shape[0]):
            distance = 0.0
            for d in range(D):
                delta = points[i, d] - centres[k, d]
                distance += delta * delta
            if distance < best:
                best, best_k = distance, k
        nearest[i] = best_k
        counts[best_k] += 1.0
        for d in range(D):
            sums[best_k, d] += points[i, d]
        total += best
    return total


@njit(cache=True, parallel=True)
def _assign(points, centres, nearest):
    """Assign every point to its nearest centre in ``LLOYD_BLOCKS`` blocks, in parallel.

    Returns per-block counts (B, K), sums (B, K, D) and inertia (B,): reduced
    in block order, they do not depend on the number of threads.
    """
    N, D = points.shape
    K = centres.shape[0]
    size = (N + LLOYD_BLOCKS - 1) // LLOYD_BLOCKS
    counts = np.zeros((LLOYD_BLOCKS, K))
    sums = np.zeros((LLOYD_BLOCKS, K, D))
    inertia = np.zeros(LLOYD_BLOCKS)
    for b in prange(LLOYD_BLOCKS):
        inertia[b] = _nearest_into(points, centres, nearest, b * size, min(N, (b + 1) * size), counts[b], sums[b])
    return counts, sums, inertia


@njit(cache=True)
def _inertia_kernel(points, centres):
    """Sum of squared distances of (N, D) ``points`` to their nearest centre."""
    return _assign(points, centres, np.empty(points.shape[0], dtype=np.int64))[2].sum()


@njit(cache=True)
def _lloyd_kernel(points, centres, n_iter):
    """k-means iterations from ``centres`` until they stop moving (``np.allclose``) or ``n_iter``.

    An emptied cluster keeps its centre.
    """
    K, D = centres.shape
    nearest = np.empty(points.shape[0], dtype=np.int64)
    for _ in range(n_iter):
        block_counts, block_sums, _ = _assign(points, centres, nearest)
        counts = block_counts.sum(axis=0)
        sums = block_sums.sum(axis=0)
        moved = centres.copy()
        still = True
        for k in range(K):
            if counts[k] > 0:
                for d in range(D):
                    moved[k, d] = sums[k, d] / counts[k]
                    still = still and abs(moved[k, d] - centres[k, d]) <= 1e-8 + 1e-5 * abs(centres[k, d])
        if still:
            break
        centres = moved
    return centres


def _squared_distance(columns: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Squared distance of every point, given as (D, N) ``columns``, to ``centre``."""
    total = (columns[0] - centre[0]) ** 2
    for column, value in zip(columns[1:], centre[1:]):
        total += (column - value) ** 2
    return total


def _nearest(columns: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every point, given as (D, N) ``columns`` (ties: the lower index)."""
    nearest = np.zeros(columns.shape[1], dtype=np.intp)
    best = _squared_distance(columns, centres[0])
    for k in range(1, len(centres)):
        distance = _squared_distance(columns, centres[k])
        nearest[distance < best] = k
        np.minimum(best, distance, out=best)
    return nearest


def random_from_data(X: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Choose ``n_components`` distinct rows of ``X`` at random as initial means."""
    index = rng.choice(len(X), size=n_components, replace=False)
    return np.asarray(X[np.sort(index)], dtype=np.float64)


def hard_assignment(X: np.ndarray, centres: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Assign a subsample of ``X`` to the nearest centre.

    Returns
    -------
    points : (M, D) float64 ndarray
        The subsample.
    labels : (M,) int ndarray
        Index of the nearest centre of each point.
    """
    points = _subsample(X, rng).astype(np.float64)
    return points, _nearest(np.ascontiguousarray(points.T), centres)


def _subsample(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return X[random_rows(len(X), SEEDING_SAMPLE, rng)]


INITIALISERS = {
    "kmeans++": kmeans_plusplus,
    "k-means++": kmeans_plusplus,
    "random_from_data": random_from_data,
}
