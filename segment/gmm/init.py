"""Initial means for EM: k-means++ seeding or random data points."""

from __future__ import annotations

import numpy as np

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
    points = _subsample(X, rng).astype(np.float64)
    runs = [_lloyd(points, _seed_centres(points, n_components, rng)) for _ in range(N_SEEDINGS)]
    return min(runs, key=lambda centres: _inertia(points, centres))


def _seed_centres(points: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    n_trials = 2 + int(np.log(n_components))
    centres = np.empty((n_components, points.shape[1]))
    centres[0] = points[rng.integers(len(points))]
    closest = ((points - centres[0]) ** 2).sum(axis=1)
    for k in range(1, n_components):
        total = closest.sum()
        if total > 0:
            candidates = np.searchsorted(np.cumsum(closest), rng.random(n_trials) * total)
            candidates = np.minimum(candidates, len(points) - 1)
        else:
            candidates = rng.integers(len(points), size=n_trials)
        distances = ((points[None, :, :] - points[candidates][:, None, :]) ** 2).sum(axis=2)
        potentials = np.minimum(closest[None, :], distances).sum(axis=1)
        best = int(np.argmin(potentials))
        centres[k] = points[candidates[best]]
        np.minimum(closest, distances[best], out=closest)
    return centres


def _lloyd(points: np.ndarray, centres: np.ndarray, n_iter: int = 10) -> np.ndarray:
    """A few k-means iterations; an emptied cluster keeps its centre."""
    for _ in range(n_iter):
        nearest = _nearest(points, centres)
        counts = np.bincount(nearest, minlength=len(centres))
        sums = np.stack([np.bincount(nearest, weights=column, minlength=len(centres)) for column in points.T], axis=1)
        moved = centres.copy()
        filled = counts > 0
        moved[filled] = sums[filled] / counts[filled, None]
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres


def _inertia(points: np.ndarray, centres: np.ndarray) -> float:
    return float(((points - centres[_nearest(points, centres)]) ** 2).sum())


def _nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every point (ties: the lower index)."""
    # Broadcast rather than the matrix-product expansion: for a few features it
    # is as fast without BLAS's thread start-up, and exact.
    distances = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return distances.argmin(axis=1)


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
    return points, _nearest(points, centres)


def _subsample(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(X) <= SEEDING_SAMPLE:
        return X
    return X[np.sort(rng.choice(len(X), size=SEEDING_SAMPLE, replace=False))]


INITIALISERS = {
    "kmeans++": kmeans_plusplus,
    "k-means++": kmeans_plusplus,
    "random_from_data": random_from_data,
}
