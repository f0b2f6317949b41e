"""Initial means for EM: k-means++ seeding or random data points."""

from __future__ import annotations

import numpy as np
from numba import njit

# k-means++ is O(N K D); seeding on a random subset of this size is as good
# for EM and keeps initialisation negligible next to the fit.
SEEDING_SAMPLE = 20_000
# Seedings tried by k-means++; the one with the lowest k-means inertia wins.
N_SEEDINGS = 4


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
    # Points as (D, N) columns: every distance is then D whole-array
    # operations, much faster than NumPy's reductions over a short last axis.
    points = np.ascontiguousarray(_subsample(X, rng), dtype=np.float64)
    columns = np.ascontiguousarray(points.T)
    runs = [_lloyd(points, _seed_centres(columns, n_components, rng)) for _ in range(N_SEEDINGS)]
    return min(runs, key=lambda centres: _inertia(points, centres))


def _seed_centres(columns: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    n_points = columns.shape[1]
    n_trials = 2 + int(np.log(n_components))
    centres = np.empty((n_components, len(columns)))
    centres[0] = columns[:, rng.integers(n_points)]
    closest = _squared_distance(columns, centres[0])
    for k in range(1, n_components):
        total = closest.sum()
        if total > 0:
            candidates = np.searchsorted(np.cumsum(closest), rng.random(n_trials) * total)
            candidates = np.minimum(candidates, n_points - 1)
        else:
            candidates = rng.integers(n_points, size=n_trials)
        distances = [_squared_distance(columns, columns[:, candidate]) for candidate in candidates]
        potentials = [np.minimum(closest, distance).sum() for distance in distances]
        best = int(np.argmin(potentials))
        centres[k] = columns[:, candidates[best]]
        np.minimum(closest, distances[best], out=closest)
    return centres


def _lloyd(points: np.ndarray, centres: np.ndarray, n_iter: int = 10) -> np.ndarray:
    """A few k-means iterations over (N, D) ``points``; an emptied cluster keeps its centre."""
    return _lloyd_kernel(points, np.ascontiguousarray(centres, dtype=np.float64), n_iter)


def _inertia(points: np.ndarray, centres: np.ndarray) -> float:
    """Sum of squared distances of (N, D) ``points`` to their nearest centre."""
    return float(_inertia_kernel(points, np.ascontiguousarray(centres, dtype=np.float64)))


@njit(cache=True)
def _nearest_into(points, centres, nearest):
    """Write the index of each point's nearest centre (ties: the lower index); return the sum of squared distances."""
    N, D = points.shape
    total = 0.0
    for i in range(N):
        best = np.inf
        for k in range(centres.shape[0]):
            distance = 0.0
            for d in range(D):
                delta = points[i, d] - centres[k, d]
                distance += delta * delta
            if distance < best:
                best = distance
                nearest[i] = k
        total += best
    return total


@njit(cache=True)
def _inertia_kernel(points, centres):
    return _nearest_into(points, centres, np.empty(points.shape[0], dtype=np.int64))


@njit(cache=True)
def _lloyd_kernel(points, centres, n_iter):
    """k-means iterations from ``centres`` until they stop moving (``np.allclose``) or ``n_iter``."""
    N, D = points.shape
    K = centres.shape[0]
    nearest = np.empty(N, dtype=np.int64)
    for _ in range(n_iter):
        _nearest_into(points, centres, nearest)
        sums = np.zeros((K, D))
        counts = np.zeros(K)
        for i in range(N):
            counts[nearest[i]] += 1.0
            for d in range(D):
                sums[nearest[i], d] += points[i, d]
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
    if len(X) <= SEEDING_SAMPLE:
        return X
    return X[np.sort(rng.choice(len(X), size=SEEDING_SAMPLE, replace=False))]


INITIALISERS = {
    "kmeans++": kmeans_plusplus,
    "k-means++": kmeans_plusplus,
    "random_from_data": random_from_data,
}
