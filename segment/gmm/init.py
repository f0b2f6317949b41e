"""Initial means for EM: k-means++ seeding or random data points."""

from __future__ import annotations

import numpy as np

# k-means++ is O(N K D); seeding on a random subset of this size is as good
# for EM and keeps initialisation negligible next to the fit.
SEEDING_SAMPLE = 20_000


def kmeans_plusplus(X: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Choose initial means by k-means++ D^2 sampling.

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
        Rows of ``X``; when fewer distinct points than centres exist the
        remaining centres repeat existing points.
    """
    points = _subsample(X, rng).astype(np.float64)
    centres = np.empty((n_components, points.shape[1]))
    centres[0] = points[rng.integers(len(points))]
    closest = ((points - centres[0]) ** 2).sum(axis=1)
    for k in range(1, n_components):
        total = closest.sum()
        if total > 0:
            index = rng.choice(len(points), p=closest / total)
        else:
            index = rng.integers(len(points))
        centres[k] = points[index]
        np.minimum(closest, ((points - centres[k]) ** 2).sum(axis=1), out=closest)
    return centres


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
    distances = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return points, distances.argmin(axis=1)


def _subsample(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(X) <= SEEDING_SAMPLE:
        return X
    return X[np.sort(rng.choice(len(X), size=SEEDING_SAMPLE, replace=False))]


INITIALISERS = {
    "kmeans++": kmeans_plusplus,
    "k-means++": kmeans_plusplus,
    "random_from_data": random_from_data,
}
