"""The parameters of a Gaussian mixture and their conversions (covariances, precisions, kernel arrays)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
SINGULAR_COVARIANCE = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease "
    "the number of components, increase reg_covar, or scale the input data."
)


class MixtureParameters(NamedTuple):
    """Weights, means, covariances and precision Cholesky factors of a mixture, float64.

    Shapes follow scikit-learn for the covariance type: ``covariances`` and
    ``precisions_cholesky`` are (K, D, D) "full", (D, D) "tied", (K, D)
    "diag", (K,) "spherical".

    Examples
    --------
    >>> import numpy as np
    >>> p = MixtureParameters(np.array([1.0]), np.zeros((1, 2)), np.ones((1, 2)), np.ones((1, 2)))
    >>> p.means.shape
    (1, 2)
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


def precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """Upper-triangular P with P P^T = inverse covariance (scikit-learn's layout).

    Parameters
    ----------
    covariances : ndarray
        Covariances in the shape of ``covariance_type``.
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    ndarray
        Same shape as ``covariances``; for "diag" and "spherical" the
        inverse standard deviations.

    Raises
    ------
    ValueError
        If a covariance is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> precision_cholesky(np.array([[4.0, 0.0], [0.0, 1.0]]), "tied")
    array([[0.5, 0. ],
           [0. , 1. ]])
    >>> precision_cholesky(np.array([4.0, 0.25]), "spherical")
    array([0.5, 2. ])
    """
    if covariance_type in ("diag", "spherical"):
        if np.any(covariances <= 0.0):
            raise ValueError(SINGULAR_COVARIANCE)
        return 1.0 / np.sqrt(covariances)
    stacked = covariances[None] if covariance_type == "tied" else covariances
    try:
        chol = np.linalg.cholesky(stacked)
    except np.linalg.LinAlgError:
        raise ValueError(SINGULAR_COVARIANCE) from None
    eye = np.broadcast_to(np.eye(stacked.shape[-1]), stacked.shape)
    prec_chol = np.linalg.solve(chol, eye).transpose(0, 2, 1)
    return prec_chol[0] if covariance_type == "tied" else prec_chol


def precisions_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """Precision matrices (inverse covariances) from their Cholesky factors.

    Examples
    --------
    >>> import numpy as np
    >>> precisions_from_cholesky(np.array([0.5, 2.0]), "spherical")
    array([0.25, 4.  ])
    """
    if covariance_type == "full":
        return prec_chol @ prec_chol.transpose(0, 2, 1)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def covariances_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Covariances from precisions (``precisions_init`` in scikit-learn's shapes).

    Examples
    --------
    >>> import numpy as np
    >>> covariances_from_precisions(np.array([[4.0, 1.0]]), "diag")
    array([[0.25, 1.  ]])
    """
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("diag", "spherical"):
        return 1.0 / precisions
    return np.linalg.inv(precisions)


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Number of free parameters of the mixture (for BIC and AIC).

    Examples
    --------
    >>> n_parameters(3, 2, "full")  # 3 * 3 covariance + 3 * 2 means + 2 weights
    17
    """
    K, D = n_components, n_features
    covariance = {"full": K * D * (D + 1) // 2, "diag": K * D, "tied": D * (D + 1) // 2, "spherical": K}
    return covariance[covariance_type] + K * D + K - 1


def kernel_parameters(params: MixtureParameters, covariance_type: str, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means, full (K, D, D) precision Cholesky factors and log-normalisers, as the kernels take them.

    Parameters
    ----------
    params : MixtureParameters
    covariance_type : {"full", "tied", "diag", "spherical"}
    dtype : numpy dtype
        The features' dtype; every array is returned C-contiguous in it.

    Returns
    -------
    means : (K, D) ndarray
    prec_chol : (K, D, D) ndarray
    log_norm : (K,) ndarray
        log(weight_k) + log det(P_k) - D/2 log(2 pi).

    Examples
    --------
    >>> import numpy as np
    >>> p = MixtureParameters(np.array([1.0]), np.zeros((1, 1)), np.ones(1), np.ones(1))
    >>> means, prec, log_norm = kernel_parameters(p, "spherical", np.float32)
    >>> prec.shape, round(float(log_norm[0]), 4)
    ((1, 1, 1), -0.9189)
    """
    weights, means, _, prec_chol = params
    K, D = means.shape
    if covariance_type == "full":
        full = prec_chol
    elif covariance_type == "tied":
        full = np.broadcast_to(prec_chol, (K, D, D))
    elif covariance_type == "diag":
        full = prec_chol[:, :, None] * np.eye(D)
    else:
        full = prec_chol[:, None, None] * np.eye(D)
    log_det = np.log(np.diagonal(full, axis1=1, axis2=2)).sum(axis=1)
    with np.errstate(divide="ignore"):
        log_norm = np.log(weights) + log_det - 0.5 * D * math.log(2 * math.pi)
    return (
        np.ascontiguousarray(means, dtype=dtype),
        np.ascontiguousarray(full, dtype=dtype),
        np.ascontiguousarray(log_norm, dtype=dtype),
    )
