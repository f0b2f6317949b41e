"""EM as two pure functions: the E-step to sufficient statistics, and the M-step from them.

Statistics of disjoint sets of samples add up, so an E-step can run over
chunks, processes or machines and only K x D x D numbers travel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from segment.gmm import _kernels
from segment.gmm.parameters import MixtureParameters, kernel_parameters, precision_cholesky

# Keeps empty components' weights and means finite (scikit-learn's guard).
_EPS = 10 * np.finfo(np.float64).eps


@dataclass(frozen=True)
class SufficientStatistics:
    """What an E-step over some samples leaves for the M-step, all float64.

    The sums are taken about ``reference`` (the means of the parameters of
    the E-step), which keeps them well conditioned:
    ``s1[k] = sum_i w_i r_ik (x_i - reference_k)`` and
    ``s2[k] = sum_i w_i r_ik (x_i - reference_k)(x_i - reference_k)^T``.
    The raw sums are :attr:`sum_x` and :attr:`sum_xx`. Statistics add with
    ``+`` (or :func:`add_statistics`) whatever their references.

    Attributes
    ----------
    log_likelihood : float
        sum_i w_i log p(x_i).
    total_weight : float
        sum_i w_i (the number of samples when unweighted).
    nk : (K,) ndarray
        sum_i w_i r_ik, the weighted responsibilities.
    s1 : (K, D) ndarray
    s2 : (K, D, D) ndarray
    reference : (K, D) ndarray

    Examples
    --------
    >>> import numpy as np
    >>> stats = SufficientStatistics(0.0, 2.0, np.array([2.0]), np.array([[1.0]]),
    ...                              np.array([[[1.0]]]), np.array([[1.0]]))
    >>> stats.sum_x, stats.sum_xx  # samples 1 and 2 about reference 1
    (array([[3.]]), array([[[5.]]]))
    """

    log_likelihood: float
    total_weight: float
    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    reference: np.ndarray

    def about(self, reference: np.ndarray) -> SufficientStatistics:
        """The same statistics taken about another ``reference`` (K, D).

        Examples
        --------
        >>> import numpy as np
        >>> stats = SufficientStatistics(0.0, 1.0, np.ones(1), np.zeros((1, 1)), np.zeros((1, 1, 1)), np.ones((1, 1)))
        >>> stats.about(np.zeros((1, 1))).s1
        array([[1.]])
        """
        reference = np.asarray(reference, dtype=np.float64)
        if np.array_equal(reference, self.reference):
            return self
        shift = self.reference - reference
        s1 = self.s1 + self.nk[:, None] * shift
        s2 = (
            self.s2
            + self.s1[:, :, None] * shift[:, None, :]
            + shift[:, :, None] * self.s1[:, None, :]
            + self.nk[:, None, None] * shift[:, :, None] * shift[:, None, :]
        )
        return SufficientStatistics(self.log_likelihood, self.total_weight, self.nk, s1, s2, reference)

    @property
    def sum_x(self) -> np.ndarray:
        """(K, D) sum_i w_i r_ik x_i."""
        return self.about(np.zeros_like(self.reference)).s1

    @property
    def sum_xx(self) -> np.ndarray:
        """(K, D, D) sum_i w_i r_ik x_i x_i^T."""
        return self.about(np.zeros_like(self.reference)).s2

    def __add__(self, other: SufficientStatistics) -> SufficientStatistics:
        other = other.about(self.reference)
        return SufficientStatistics(
            self.log_likelihood + other.log_likelihood,
            self.total_weight + other.total_weight,
            self.nk + other.nk,
            self.s1 + other.s1,
            self.s2 + other.s2,
            self.reference,
        )


def chunk_statistics(
    X: np.ndarray,
    params: MixtureParameters,
    covariance_type: str,
    *,
    sample_weight: np.ndarray | None = None,
    log_prior: np.ndarray | None = None,
) -> SufficientStatistics:
    """E-step over the samples ``X`` under ``params``: their sufficient statistics.

    One pass of the Numba kernel; no (N, K) array is built.

    Parameters
    ----------
    X : (N, D) ndarray
        Samples, float32 (computed in float32, summed in float64) or float64.
    params : MixtureParameters
    covariance_type : {"full", "tied", "diag", "spherical"}
    sample_weight : (N,) ndarray, optional
        Non-negative weight of each sample (an integer weight counts as that
        many copies of the sample).
    log_prior : (N, K) ndarray, optional
        Per-sample log-prior added to the component log-densities.

    Returns
    -------
    SufficientStatistics

    Examples
    --------
    >>> import numpy as np
    >>> params = MixtureParameters(np.array([1.0]), np.zeros((1, 1)), np.ones(1), np.ones(1))
    >>> stats = chunk_statistics(np.array([[1.0], [3.0]]), params, "spherical")
    >>> stats.nk, stats.sum_x, stats.sum_xx
    (array([2.]), array([[4.]]), array([[[10.]]]))
    """
    X = np.ascontiguousarray(X, dtype=np.float32 if np.asarray(X).dtype == np.float32 else np.float64)
    means, prec_chol, log_norm = kernel_parameters(params, covariance_type, X.dtype)
    K = len(means)
    if sample_weight is None:
        weights = np.empty(0, dtype=X.dtype)
        total_weight = float(len(X))
    else:
        weights = np.ascontiguousarray(sample_weight, dtype=X.dtype)
        total_weight = float(np.sum(weights, dtype=np.float64))
    prior = np.empty((0, K), np.float32) if log_prior is None else np.ascontiguousarray(log_prior, dtype=np.float32)
    loglik, nk, s1, s2 = _kernels.em_statistics(X, means, prec_chol, log_norm, prior, weights)
    s2 = s2.sum(axis=0)
    s2 = s2 + np.triu(s2, 1).transpose(0, 2, 1)
    # The kernel's statistics are about its (possibly float32-rounded) means.
    return SufficientStatistics(float(loglik.sum()), total_weight, nk.sum(axis=0), s1.sum(axis=0), s2, means.astype(np.float64))


def add_statistics(statistics: Iterable[SufficientStatistics]) -> SufficientStatistics:
    """Sum the statistics of disjoint sets of samples, in the order given.

    Examples
    --------
    >>> import numpy as np
    >>> params = MixtureParameters(np.array([1.0]), np.zeros((1, 1)), np.ones(1), np.ones(1))
    >>> X = np.array([[1.0], [3.0], [4.0]])
    >>> parts = [chunk_statistics(X[:1], params, "spherical"), chunk_statistics(X[1:], params, "spherical")]
    >>> bool(np.allclose(add_statistics(parts).s2, chunk_statistics(X, params, "spherical").s2))
    True
    """
    iterator = iter(statistics)
    try:
        total = next(iterator)
    except StopIteration:
        raise ValueError("add_statistics needs at least one set of statistics") from None
    for stats in iterator:
        total = total + stats
    return total


def m_step(statistics: SufficientStatistics, covariance_type: str, reg_covar: float) -> MixtureParameters:
    """The parameters that maximise the expected log-likelihood given the statistics.

    Parameters
    ----------
    statistics : SufficientStatistics
        Summed over all samples.
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to the covariances' diagonals.

    Returns
    -------
    MixtureParameters

    Raises
    ------
    ValueError
        If a covariance is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> params = MixtureParameters(np.array([1.0]), np.zeros((1, 1)), np.ones(1), np.ones(1))
    >>> new = m_step(chunk_statistics(np.array([[1.0], [3.0]]), params, "spherical"), "spherical", 0.0)
    >>> new.means, new.covariances
    (array([[2.]]), array([1.]))
    """
    nk = statistics.nk + _EPS
    s1, s2 = statistics.s1, statistics.s2
    means = statistics.reference + s1 / nk[:, None]
    scatter = s2 - s1[:, :, None] * s1[:, None, :] / nk[:, None, None]
    D = means.shape[1]
    if covariance_type == "full":
        covariances = scatter / nk[:, None, None] + reg_covar * np.eye(D)
    elif covariance_type == "tied":
        covariances = scatter.sum(axis=0) / nk.sum() + reg_covar * np.eye(D)
    else:
        covariances = np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None] + reg_covar
        if covariance_type == "spherical":
            covariances = covariances.mean(axis=1)
    weights = nk / nk.sum()
    return MixtureParameters(weights, means, covariances, precision_cholesky(covariances, covariance_type))
