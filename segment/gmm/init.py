"""Initial parameters for EM: k-means, k-means++ seeding, random responsibilities or random data points.

Every initialiser works on a seeding sample of at most ``SEEDING_SAMPLE``
points, each with a weight, so that weighted samples (``sample_weight``) and
samples with repeated rows are initialised alike.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from segment import threads
from segment.sampling import random_rows
from segment.gmm.parameters import MixtureParameters, covariances_from_precisions, precision_cholesky
from segment.gmm.statistics import SufficientStatistics, m_step

# k-means++ is O(N K D); seeding on a random subset of this size is as good
# for EM and keeps initialisation negligible next to the fit.
SEEDING_SAMPLE = 20_000
# Seedings tried by k-means; the one with the lowest k-means inertia wins.
N_SEEDINGS = 4
# Lloyd iterations after each seeding (fewer when the centres stop moving).
LLOYD_ITER = 10
# Blocks whose sums are added in order (fixed, as when they ran on threads: the same centres as before).
LLOYD_BLOCKS = 16


def weighted_draws(weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn with replacement with probability proportional to ``weights``.

    Rows of weight 0 are never drawn. A row repeated w times (contiguously)
    is drawn as often as the row once with weight w, from the same draws.

    Examples
    --------
    >>> import numpy as np
    >>> weighted_draws(np.array([0.0, 1.0, 0.0]), 3, np.random.default_rng(0))
    array([1, 1, 1])
    """
    cumulative = np.cumsum(weights, dtype=np.float64)
    draws = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")
    return np.minimum(draws, len(weights) - 1)


def seeding_sample(
    X: np.ndarray, sample_weight: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The points the initialisers work on, with their weights.

    All of ``X`` when its total weight is at most ``SEEDING_SAMPLE``, else
    ``SEEDING_SAMPLE`` rows drawn in proportion to their weights (without
    weights: distinct rows), each of weight 1.

    Returns
    -------
    points : (M, D) float64 ndarray
    weights : (M,) float64 ndarray

    Examples
    --------
    >>> import numpy as np
    >>> points, weights = seeding_sample(np.zeros((5, 2)), np.arange(5.0), np.random.default_rng(0))
    >>> points.shape, weights.tolist()
    ((5, 2), [0.0, 1.0, 2.0, 3.0, 4.0])
    """
    weights = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if weights.sum() <= SEEDING_SAMPLE:
        return np.asarray(X, dtype=np.float64), weights
    rows = random_rows(len(X), SEEDING_SAMPLE, rng) if sample_weight is None else np.sort(weighted_draws(weights, SEEDING_SAMPLE, rng))
    return np.asarray(X[rows], dtype=np.float64), np.ones(SEEDING_SAMPLE)


def kmeans_centres(points: np.ndarray, weights: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """Initial means by k-means: greedy k-means++ seeding refined by Lloyd iterations.

    Each new centre is the best of ``2 + log(K)`` candidates drawn with
    probability proportional to weight times the squared distance to the
    nearest chosen centre; a few weighted Lloyd (k-means) iterations then
    move the centres to cluster means. Of ``N_SEEDINGS`` such runs the one
    with the lowest inertia is kept, which makes EM far less prone to poor
    local optima than a single seeding. The seedings draw from ``rng`` in
    turn; their Lloyd iterations run on the kernel threads
    (:mod:`segment.threads`), with the same result on any number of them.

    Parameters
    ----------
    points : (M, D) float64 ndarray
    weights : (M,) float64 ndarray
    n_components : int
    rng : numpy.random.Generator

    Returns
    -------
    centres : (n_components, D) float64 ndarray

    Examples
    --------
    >>> import numpy as np
    >>> points = np.array([[0.0], [0.1], [10.0], [10.1]])
    >>> np.sort(kmeans_centres(points, np.ones(4), 2, np.random.default_rng(0)), axis=0)
    array([[ 0.05],
           [10.05]])
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    columns = np.ascontiguousarray(points.T)
    seedings = [kmeans_plusplus_centres(points, weights, n_components, rng) for _ in range(N_SEEDINGS)]
    runs = [None] * N_SEEDINGS

    def refine(start: int, stop: int) -> None:  # the seedings drew from rng in turn; their refinements are independent
        for i in range(start, stop):
            centres = _lloyd(columns, weights, seedings[i], LLOYD_ITER)
            runs[i] = centres, _assign(columns, weights, centres)[2]

    threads.run_parts(refine, N_SEEDINGS)
    return min(runs, key=lambda run: run[1])[0]


def kmeans_plusplus(X: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """k-means initial means of the (unweighted) samples ``X``: :func:`kmeans_centres` on their seeding sample.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [10.0], [10.1]])
    >>> np.sort(kmeans_plusplus(X, 2, np.random.default_rng(0)), axis=0)
    array([[ 0.05],
           [10.05]])
    """
    return kmeans_centres(*seeding_sample(X, None, rng), n_components, rng)


def kmeans_plusplus_centres(
    points: np.ndarray, weights: np.ndarray, n_components: int, rng: np.random.Generator
) -> np.ndarray:
    """Initial means by greedy k-means++ seeding alone (scikit-learn's ``init_params="k-means++"``).

    Examples
    --------
    >>> import numpy as np
    >>> points = np.array([[0.0], [0.1], [10.0], [10.1]])
    >>> centres = kmeans_plusplus_centres(points, np.ones(4), 2, np.random.default_rng(0))
    >>> sorted(int(c >= 5) for c in centres[:, 0])
    [0, 1]
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    columns = np.ascontiguousarray(points.T)
    n_trials = 2 + int(np.log(n_components))
    chosen = np.empty(n_components, dtype=np.int64)
    chosen[0] = weighted_draws(weights, 1, rng)[0]
    closest = _nearest(columns, points[chosen[:1]])[1]
    for k in range(1, n_components):
        potential = weights * closest
        if potential.sum() > 0:
            candidates = weighted_draws(potential, n_trials, rng)
        else:
            candidates = weighted_draws(weights, n_trials, rng)
        # The candidate leaving the smallest weighted sum of squared distances to the nearest centre.
        best_potential = np.inf
        for candidate in candidates:
            nearer, total = _nearer_with(columns, weights, closest, points[candidate])
            if total < best_potential:
                chosen[k], best_potential, best_closest = candidate, total, nearer
        closest = best_closest
    return points[chosen]


@njit(cache=True, nogil=True)
def _add_squared_gaps(values, value, out, first):
    """``out = (values - value) ** 2`` for the first feature, else ``out += (values - value) ** 2``.

    1-D arrays: indexing a 2-D array in these loops keeps them from vectorising (4x slower).
    """
    if first:
        for i in range(out.shape[0]):
            gap = values[i] - value
            out[i] = gap * gap
    else:
        for i in range(out.shape[0]):
            gap = values[i] - value
            out[i] += gap * gap


@njit(cache=True, nogil=True)
def _nearer_with(columns, weights, closest, centre):
    """Squared distance of every point to its nearest centre once ``centre`` joins those of ``closest``, and the
    weighted sum of these distances, added in index order."""
    D, N = columns.shape
    nearer = np.empty(N)
    for d in range(D):
        _add_squared_gaps(columns[d], centre[d], nearer, d == 0)
    total = 0.0
    for i in range(N):
        nearer[i] = min(closest[i], nearer[i])
        total += weights[i] * nearer[i]
    return nearer, total


def _assign(columns: np.ndarray, weights: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Assign every point to its nearest centre: the weight, weighted sum of points and inertia of the centres.

    Returns ``counts`` (K,), ``sums`` (K, D) and the inertia (weighted sum
    of squared distances to the nearest centre). The sums are taken in
    index order within ``LLOYD_BLOCKS`` blocks, then added block after block.
    """
    nearest, distance = _nearest(columns, centres)
    counts, sums, inertia = _block_sums(columns, weights, nearest, distance, len(centres), LLOYD_BLOCKS)
    return _add_blocks(counts), _add_blocks(sums), float(_add_blocks(inertia))


@njit(cache=True, nogil=True)
def _block_sums(columns, weights, nearest, distance, n_centres, n_blocks):
    """Per block of consecutive points, added in index order: the weight and weighted sum of the points nearest
    each centre, and their weighted squared distances."""
    D, N = columns.shape
    counts = np.zeros((n_blocks, n_centres))
    sums = np.zeros((n_blocks, n_centres, D))
    inertia = np.zeros(n_blocks)
    block_size = max(-(-N // n_blocks), 1)
    for i in range(N):
        block = i // block_size
        w = weights[i]
        counts[block, nearest[i]] += w
        for d in range(D):
            sums[block, nearest[i], d] += w * columns[d, i]
        inertia[block] += w * distance[i]
    return counts, sums, inertia


def _add_blocks(per_block: np.ndarray) -> np.ndarray:
    total = np.zeros(per_block.shape[1:])
    for part in per_block:
        total = total + part
    return total


def _lloyd(columns: np.ndarray, weights: np.ndarray, centres: np.ndarray, n_iter: int) -> np.ndarray:
    """Weighted k-means iterations from ``centres`` until they stop moving (``np.allclose``) or ``n_iter``.

    A cluster without weight keeps its centre.
    """
    for _ in range(n_iter):
        counts, sums, _ = _assign(columns, weights, centres)
        filled = counts > 0
        moved = centres.copy()
        moved[filled] = sums[filled] / counts[filled, None]
        if np.all(np.abs(moved[filled] - centres[filled]) <= 1e-8 + 1e-5 * np.abs(centres[filled])):
            break
        centres = moved
    return centres


@njit(cache=True, nogil=True)
def _nearest(columns, centres):
    """Index of the nearest centre of every point, given as (D, N) ``columns`` (ties: the lower index), and its
    squared distance, the features' squared differences added in order."""
    D, N = columns.shape
    nearest = np.zeros(N, dtype=np.int64)
    best = np.empty(N)
    run = 512  # points at a time, one feature after another
    distance = np.empty(run)
    for start in range(0, N, run):
        n = min(run, N - start)
        for k in range(centres.shape[0]):
            for d in range(D):
                _add_squared_gaps(columns[d, start:start + n], centres[k, d], distance[:n], d == 0)
            closest = best[start:start + n]
            index = nearest[start:start + n]
            for i in range(n):
                closer = k == 0 or distance[i] < closest[i]
                closest[i] = distance[i] if closer else closest[i]
                index[i] = k if closer else index[i]
    return nearest, best


def random_from_data_centres(points: np.ndarray, weights: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """``n_components`` distinct points of positive weight, drawn at random, as initial means.

    Examples
    --------
    >>> import numpy as np
    >>> random_from_data_centres(np.array([[0.0], [1.0], [2.0]]), np.array([1.0, 0.0, 1.0]), 2, np.random.default_rng(0))
    array([[0.],
           [2.]])
    """
    candidates = np.flatnonzero(weights > 0)
    if len(candidates) < n_components:
        candidates = np.arange(len(points))
    index = rng.choice(candidates, size=n_components, replace=False)
    return np.asarray(points[np.sort(index)], dtype=np.float64)


CENTRE_INITIALISERS = {
    "kmeans": kmeans_centres,
    "kmeans++": kmeans_centres,  # the name segment's configuration has always used
    "k-means++": kmeans_plusplus_centres,
    "random_from_data": random_from_data_centres,
}
INIT_PARAMS = (*CENTRE_INITIALISERS, "random")


def initial_parameters(
    X: np.ndarray,
    n_components: int,
    rng: np.random.Generator,
    *,
    covariance_type: str = "full",
    reg_covar: float = 1e-6,
    init_params: str = "kmeans",
    sample_weight: np.ndarray | None = None,
    weights_init: np.ndarray | None = None,
    means_init: np.ndarray | None = None,
    precisions_init: np.ndarray | None = None,
) -> MixtureParameters:
    """Starting parameters of EM, with scikit-learn's ``init_params`` and ``*_init`` meanings.

    The initial responsibilities (hard assignments to the nearest initial
    mean, or random ones for ``"random"``) of the seeding sample give the
    parameters by one M-step; user-given weights, means or precisions then
    replace theirs. When all three are given (a warm start) they are the
    parameters, and no seeding is done.

    Parameters
    ----------
    X : (N, D) ndarray
    n_components : int
    rng : numpy.random.Generator
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
    init_params : {"kmeans", "k-means++", "random", "random_from_data", "kmeans++"}
        "kmeans": k-means (k-means++ seeding and Lloyd iterations);
        "k-means++": the seeding alone; "random": random responsibilities;
        "random_from_data": random points as means; "kmeans++" is an alias
        of "kmeans".
    sample_weight : (N,) ndarray, optional
    weights_init, means_init, precisions_init : ndarray, optional
        scikit-learn's shapes.

    Returns
    -------
    MixtureParameters

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.2], [10.0], [10.2]])
    >>> params = initial_parameters(X, 2, np.random.default_rng(0), covariance_type="spherical")
    >>> np.sort(params.means[:, 0]).round(2), params.weights
    (array([ 0.1, 10.1]), array([0.5, 0.5]))
    """
    if weights_init is not None and means_init is not None and precisions_init is not None:
        covariances = covariances_from_precisions(precisions_init, covariance_type)
        return MixtureParameters(
            np.asarray(weights_init, dtype=np.float64), np.asarray(means_init, dtype=np.float64), covariances,
            precision_cholesky(covariances, covariance_type),
        )
    points, weights = seeding_sample(X, sample_weight, rng)
    if init_params == "random" and means_init is None:
        resp = rng.uniform(size=(len(points), n_components))
        resp /= resp.sum(axis=1, keepdims=True)
        reference = np.zeros((n_components, points.shape[1]))
    else:
        if means_init is not None:
            reference = np.asarray(means_init, dtype=np.float64)
        else:
            reference = CENTRE_INITIALISERS[init_params](points, weights, n_components, rng)
        resp = np.zeros((len(points), n_components))
        resp[np.arange(len(points)), _nearest(np.ascontiguousarray(points.T), reference)[0]] = 1.0
    params = m_step(_statistics(points, weights, resp, reference), covariance_type, reg_covar)
    weights_, means, covariances, prec_chol = params
    if weights_init is not None:
        weights_ = np.asarray(weights_init, dtype=np.float64)
    if means_init is not None:
        means = reference
    if precisions_init is not None:
        covariances = covariances_from_precisions(precisions_init, covariance_type)
        prec_chol = precision_cholesky(covariances, covariance_type)
    return MixtureParameters(weights_, means, covariances, prec_chol)


def _statistics(points, weights, resp, reference):
    """Sufficient statistics of weighted ``points`` with responsibilities ``resp`` (M, K), about ``reference``."""
    weighted = resp * weights[:, None]
    s1 = np.empty(reference.shape)
    s2 = np.empty((*reference.shape, reference.shape[1]))
    for k, centre in enumerate(reference):  # a matrix product per component: far faster than a 3-operand einsum
        diff = points - centre
        weighted_diff = diff * weighted[:, k, None]
        s1[k] = weighted_diff.sum(axis=0)
        s2[k] = weighted_diff.T @ diff
    return SufficientStatistics(0.0, float(weights.sum()), weighted.sum(axis=0), s1, s2, reference)
