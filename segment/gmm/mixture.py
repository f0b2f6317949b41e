"""GaussianMixture with scikit-learn's names and semantics, fitted by Numba EM."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from segment.gmm import _kernels
from segment.gmm.init import INITIALISERS, hard_assignment

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
MODEL_FORMAT = "segment-gmm"
MODEL_VERSION = 1
_EPS = 10 * np.finfo(np.float64).eps
_SINGULAR = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease "
    "the number of components, increase reg_covar, or scale the input data."
)


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the log-likelihood settled within ``tol``."""


class GaussianMixture:
    """Gaussian mixture fitted by EM in Numba kernels.

    A drop-in for :class:`sklearn.mixture.GaussianMixture`: same parameters,
    fitted attributes and methods, so either can replace the other. Features
    may be float32 (fast path, statistics still accumulated in float64) or
    float64; no (N, K) matrix is built while fitting.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Covariance structure.
    tol : float, default 1e-3
        EM stops when the mean log-likelihood changes by less than this.
    reg_covar : float, default 1e-6
        Non-negative value added to covariance diagonals.
    max_iter : int, default 100
        Maximum number of EM iterations per initialisation.
    n_init : int, default 1
        Number of initialisations; the one with the highest final
        log-likelihood is kept.
    init_params : {"kmeans++", "k-means++", "random_from_data"}, default "kmeans++"
        How initial means are chosen when ``means_init`` is not given.
    weights_init, means_init, precisions_init : ndarray, optional
        User-provided initial parameters (scikit-learn's shapes).
    random_state : int, numpy.random.Generator or None
        Seed of the initialisation.

    Attributes
    ----------
    weights_ : (K,) ndarray
    means_ : (K, D) ndarray
    covariances_, precisions_, precisions_cholesky_ : ndarray
        Shapes as in scikit-learn for the covariance type.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood of the best initialisation at its last E-step.
    log_likelihood_history_ : list of float
        Mean log-likelihood at every iteration of the best initialisation.
    metadata_ : dict
        Free-form information saved with the model (e.g. feature settings).
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans++",
        weights_init: np.ndarray | None = None,
        means_init: np.ndarray | None = None,
        precisions_init: np.ndarray | None = None,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X: np.ndarray, y: Any = None, *, log_prior: np.ndarray | None = None) -> "GaussianMixture":
        """Estimate the parameters by EM.

        Parameters
        ----------
        X : (N, D) array_like
            Samples; float32 stays float32, anything else becomes float64.
        y : ignored
        log_prior : (N, K) float32 ndarray, optional
            Per-sample log-prior added to the component log-densities
            (used by the spatial smoothing).

        Returns
        -------
        self : GaussianMixture
        """
        self._check_parameters()
        X = self._check_X(X, fitting=True)
        rng = np.random.default_rng(self.random_state)
        best: tuple | None = None
        for _ in range(self.n_init):
            params = self._initial_parameters(X, rng)
            result = self._run_em(X, params, log_prior)
            if best is None or result[1] > best[1]:
                best = result
        params, lower_bound, history, converged = best
        self._set_parameters(*params)
        self.lower_bound_ = lower_bound
        self.log_likelihood_history_ = history
        self.n_iter_ = len(history)
        self.converged_ = converged
        self.n_features_in_ = X.shape[1]
        if not converged:
            warnings.warn(
                f"EM did not converge in max_iter={self.max_iter} iterations "
                f"(last change {history[-1] - history[-2] if len(history) > 1 else float('nan'):.3g}); "
                "increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _run_em(self, X, params, log_prior):
        history: list[float] = []
        lower_bound = -np.inf
        converged = False
        for _ in range(self.max_iter):
            previous = lower_bound
            loglik, stats = self._e_step_statistics(X, params, log_prior)
            lower_bound = loglik / X.shape[0]
            params = _m_step(*stats, self.covariance_type, self.reg_covar)
            history.append(lower_bound)
            if abs(lower_bound - previous) < self.tol:
                converged = True
                break
        return params, lower_bound, history, converged

    def _e_step_statistics(self, X, params, log_prior):
        weights, means, covariances, prec_chol = params
        kernel_means, kernel_prec, log_norm = _kernel_parameters(
            weights, means, prec_chol, self.covariance_type, X.dtype
        )
        loglik, nk, s1, s2 = _kernels.em_statistics(
            X, kernel_means, kernel_prec, log_norm, _as_log_prior(log_prior, len(weights))
        )
        s2 = s2.sum(axis=0)
        s2 = s2 + np.triu(s2, 1).transpose(0, 2, 1)
        # The kernel's statistics are about its (possibly float32-rounded) means.
        return loglik.sum(), (nk.sum(axis=0), s1.sum(axis=0), s2, kernel_means.astype(np.float64))

    def _initial_parameters(self, X, rng):
        K = self.n_components
        if self.means_init is not None:
            centres = np.asarray(self.means_init, dtype=np.float64)
        else:
            centres = INITIALISERS[self.init_params](X, K, rng)
        points, labels = hard_assignment(X, centres, rng)
        diff = points - centres[labels]
        nk = np.bincount(labels, minlength=K).astype(np.float64)
        s1 = np.stack([np.bincount(labels, weights=diff[:, d], minlength=K) for d in range(X.shape[1])], axis=1)
        s2 = np.zeros((K, X.shape[1], X.shape[1]))
        for k in range(K):
            members = diff[labels == k]
            s2[k] = members.T @ members
        weights, means, covariances, prec_chol = _m_step(nk, s1, s2, centres, self.covariance_type, self.reg_covar)
        if self.weights_init is not None:
            weights = np.asarray(self.weights_init, dtype=np.float64)
        if self.means_init is not None:
            means = centres
        if self.precisions_init is not None:
            covariances = _invert_precisions(np.asarray(self.precisions_init, dtype=np.float64), self.covariance_type)
            prec_chol = _precision_cholesky(covariances, self.covariance_type)
        return weights, means, covariances, prec_chol

    def _set_parameters(self, weights, means, covariances, prec_chol):
        self.weights_ = weights
        self.means_ = means
        self.covariances_ = covariances
        self.precisions_cholesky_ = prec_chol
        if self.covariance_type in ("full",):
            self.precisions_ = prec_chol @ prec_chol.transpose(0, 2, 1)
        elif self.covariance_type == "tied":
            self.precisions_ = prec_chol @ prec_chol.T
        else:
            self.precisions_ = prec_chol**2

    # ------------------------------------------------------------ inference
    def label(self, X: np.ndarray, *, log_prior: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Most probable component and its posterior for every sample, in one pass.

        Parameters
        ----------
        X : (N, D) array_like
        log_prior : (N, K) float32 ndarray, optional

        Returns
        -------
        labels : (N,) int32 ndarray
        confidence : (N,) float32 ndarray
            Posterior probability of the chosen component.
        """
        X = self._check_X(X)
        labels = np.empty(X.shape[0], dtype=np.int32)
        confidence = np.empty(X.shape[0], dtype=np.float32)
        _kernels.predict_labels(*self._kernel_arguments(X, log_prior), labels, confidence)
        return labels, confidence

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of the most probable component of each sample, (N,) int."""
        return self.label(X)[0].astype(np.intp)

    def fit_predict(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        """Fit, then predict the components of ``X`` (a final E-step, as scikit-learn)."""
        return self.fit(X).predict(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Posterior probability of each component, (N, K) float64."""
        X = self._check_X(X)
        resp = np.empty((X.shape[0], self.n_components))
        lse = np.empty(X.shape[0])
        _kernels.posteriors(*self._kernel_arguments(X, None), resp, lse)
        return resp

    def weighted_log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log of weight times density, log(pi_k N(x | mu_k, Sigma_k)), for every sample and component.

        The log-posteriors up to a per-sample constant, in the dtype of the
        features (float32 stays float32): (N, K).
        """
        X = self._check_X(X)
        out = np.empty((X.shape[0], self.n_components), dtype=X.dtype)
        _kernels.weighted_log_prob(*self._kernel_arguments(X, None), out)
        return out

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Log-likelihood of each sample, (N,) float64."""
        X = self._check_X(X)
        lse = np.empty(X.shape[0])
        _kernels.posteriors(*self._kernel_arguments(X, None), np.empty((0, self.n_components)), lse)
        return lse

    def score(self, X: np.ndarray, y: Any = None) -> float:
        """Mean log-likelihood per sample."""
        return float(self.score_samples(X).mean())

    def bic(self, X: np.ndarray) -> float:
        """Bayesian information criterion on ``X`` (lower is better)."""
        n = len(X)
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X: np.ndarray) -> float:
        """Akaike information criterion on ``X`` (lower is better)."""
        return -2 * self.score(X) * len(X) + 2 * self._n_parameters()

    def permute_components(self, order: np.ndarray) -> "GaussianMixture":
        """Reorder the fitted components in place: new component i is old ``order[i]``."""
        self._check_fitted()
        order = np.asarray(order)
        tied = self.covariance_type == "tied"
        self._set_parameters(
            self.weights_[order],
            self.means_[order],
            self.covariances_ if tied else self.covariances_[order],
            self.precisions_cholesky_ if tied else self.precisions_cholesky_[order],
        )
        return self

    def _kernel_arguments(self, X, log_prior):
        self._check_fitted()
        means, prec, log_norm = _kernel_parameters(
            self.weights_, self.means_, self.precisions_cholesky_, self.covariance_type, X.dtype
        )
        return X, means, prec, log_norm, _as_log_prior(log_prior, self.n_components)

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        covariance = {"full": K * D * (D + 1) // 2, "diag": K * D, "tied": D * (D + 1) // 2, "spherical": K}
        return covariance[self.covariance_type] + K * D + K - 1

    # ---------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """Write the fitted model to an ``.npz`` file (atomically).

        Parameters
        ----------
        path : path-like
            Destination file.
        metadata : dict, optional
            JSON-serialisable information stored with the model.
        """
        self._check_fitted()
        path = Path(path)
        header = {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "covariance_type": self.covariance_type,
            "n_components": int(self.n_components),
            "metadata": metadata if metadata is not None else getattr(self, "metadata_", {}),
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as handle:
                np.savez(
                    handle,
                    header=np.array(json.dumps(header)),
                    weights=self.weights_,
                    means=self.means_,
                    covariances=self.covariances_,
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GaussianMixture":
        """Read a model written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is not a readable model of a known version, or its
            parameters are inconsistent.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                arrays = {name: np.asarray(data[name], dtype=np.float64) for name in ("weights", "means", "covariances")}
        except FileNotFoundError:
            raise
        except Exception as exc:  # any decoding failure means "not a model file"
            raise ValueError(f"{path}: not a segment model file ({type(exc).__name__})") from None
        if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path}: not a segment model file")
        if header.get("version") != MODEL_VERSION:
            raise ValueError(f"{path}: model version {header.get('version')!r} is not supported (expected {MODEL_VERSION})")
        covariance_type = header.get("covariance_type")
        if covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"{path}: unknown covariance type {covariance_type!r}")
        weights, means, covariances = arrays["weights"], arrays["means"], arrays["covariances"]
        K = len(weights)
        expected = {"full": (K,) + means.shape[1:] * 2, "tied": means.shape[1:] * 2, "diag": means.shape, "spherical": (K,)}
        if means.ndim != 2 or len(means) != K or covariances.shape != expected[covariance_type]:
            raise ValueError(f"{path}: model arrays have inconsistent shapes")
        if not all(np.isfinite(a).all() for a in arrays.values()) or (weights < 0).any():
            raise ValueError(f"{path}: model parameters are not finite and non-negative")
        model = cls(n_components=K, covariance_type=covariance_type)
        try:
            prec_chol = _precision_cholesky(covariances, covariance_type)
        except ValueError:
            raise ValueError(f"{path}: model covariances are not positive definite") from None
        model._set_parameters(weights / weights.sum(), means, covariances, prec_chol)
        model.metadata_ = header.get("metadata") or {}
        model.converged_ = True
        model.n_iter_ = 0
        model.lower_bound_ = -np.inf
        model.log_likelihood_history_ = []
        model.n_features_in_ = means.shape[1]
        return model

    # ----------------------------------------------------------- validation
    def _check_parameters(self) -> None:
        if isinstance(self.n_components, bool) or not isinstance(self.n_components, (int, np.integer)) or self.n_components < 1:
            raise ValueError(f"n_components must be an integer >= 1; got {self.n_components!r}")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)}; got {self.covariance_type!r}")
        if self.init_params not in INITIALISERS:
            raise ValueError(f"init_params must be one of {', '.join(INITIALISERS)}; got {self.init_params!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be an integer >= 1; got {self.max_iter!r}")
        if not (isinstance(self.n_init, (int, np.integer)) and self.n_init >= 1):
            raise ValueError(f"n_init must be an integer >= 1; got {self.n_init!r}")
        if not (np.isscalar(self.tol) and self.tol >= 0):
            raise ValueError(f"tol must be >= 0; got {self.tol!r}")
        if not (np.isscalar(self.reg_covar) and self.reg_covar >= 0):
            raise ValueError(f"reg_covar must be >= 0; got {self.reg_covar!r}")

    def _check_X(self, X, fitting: bool = False) -> np.ndarray:
        X = np.asarray(X)
        if X.dtype != np.float32:
            X = X.astype(np.float64)
        X = np.ascontiguousarray(X)
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D array of samples; got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("Input contains NaN or infinity")
        if fitting and X.shape[0] < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]}"
            )
        if not fitting:
            self._check_fitted()
            if X.shape[1] != self.means_.shape[1]:
                raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with {self.means_.shape[1]}")
        return X

    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            raise AttributeError("This GaussianMixture is not fitted yet; call fit first")


def _m_step(nk, s1, s2, ref_means, covariance_type, reg_covar):
    """Parameters from statistics taken about ``ref_means`` (see the kernels)."""
    nk = nk + _EPS
    means = ref_means + s1 / nk[:, None]
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
    return weights, means, covariances, _precision_cholesky(covariances, covariance_type)


def _precision_cholesky(covariances, covariance_type):
    """Upper-triangular P with P P^T = inverse covariance (scikit-learn's layout)."""
    if covariance_type in ("diag", "spherical"):
        if np.any(covariances <= 0.0):
            raise ValueError(_SINGULAR)
        return 1.0 / np.sqrt(covariances)
    stacked = covariances[None] if covariance_type == "tied" else covariances
    try:
        chol = np.linalg.cholesky(stacked)
    except np.linalg.LinAlgError:
        raise ValueError(_SINGULAR) from None
    eye = np.broadcast_to(np.eye(stacked.shape[-1]), stacked.shape)
    prec_chol = np.linalg.solve(chol, eye).transpose(0, 2, 1)
    return prec_chol[0] if covariance_type == "tied" else prec_chol


def _invert_precisions(precisions, covariance_type):
    if covariance_type in ("diag", "spherical"):
        return 1.0 / precisions
    return np.linalg.inv(precisions)


def _kernel_parameters(weights, means, prec_chol, covariance_type, dtype):
    """Means, full (K, D, D) Cholesky factors and log-normalisers for the kernels."""
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


def _as_log_prior(log_prior, K):
    if log_prior is None:
        return np.empty((0, K), dtype=np.float32)
    return np.ascontiguousarray(log_prior, dtype=np.float32)
