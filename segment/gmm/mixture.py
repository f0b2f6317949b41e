"""Mixture: a Gaussian mixture fitted by Numba EM, without scikit-learn.

This is what the segmentation pipeline fits; :class:`segment.gmm.GaussianMixture`
is the same model as a scikit-learn estimator (its subclass). Keeping
scikit-learn out of this module spares every command-line run the seconds that
importing it takes.
"""

from __future__ import annotations

import json
import math
import os
from functools import partial
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
from segment.gmm import _kernels
from segment.gmm.em import ConvergenceWarning, EMRun, as_generator, fit_estimator, fitted_parameters, set_fitted
from segment.gmm.init import INIT_PARAMS, initial_parameters
from segment.gmm.parameters import COVARIANCE_TYPES, MixtureParameters, kernel_parameters, n_parameters, precision_cholesky
from segment.gmm.statistics import chunk_statistics, m_step

MODEL_FORMAT = "segment-gmm"
MODEL_VERSION = 1
# predict_proba works on this many rows at a time, so that besides its output
# it needs one log-likelihood per row of a pass (1 MiB in float64).
ROWS_PER_PASS = 1 << 17
FLOAT_DTYPES = (np.float64, np.float32)


class NotFittedError(ValueError, AttributeError):
    """A model was used before it was fitted (scikit-learn's estimator raises its own class of the same bases)."""


class Mixture:
    """Gaussian mixture fitted by EM in Numba kernels.

    The same parameters, fitted attributes and methods as
    :class:`sklearn.mixture.GaussianMixture`, plus weighted fits
    (``sample_weight``), streaming EM (:meth:`partial_fit`,
    :mod:`segment.gmm.streaming`) and a per-sample log-prior. Float32
    features are fitted in float32 (statistics summed in float64) and give
    float32 attributes and outputs; no (N, K) matrix is built while fitting,
    and :meth:`predict_proba` needs little beyond its output. For use with
    scikit-learn's tools (clone, Pipeline, GridSearchCV) take its subclass
    :class:`segment.gmm.GaussianMixture`.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Covariance structure.
    tol : float, default 1e-3
        EM stops when the lower bound (mean log-likelihood) changes by less.
    reg_covar : float, default 1e-6
        Non-negative value added to covariance diagonals.
    max_iter : int, default 100
        Maximum number of EM iterations per initialisation (0: initialise only).
    n_init : int, default 1
        Number of initialisations; the one with the highest lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data", "kmeans++"}, default "kmeans"
        How the initial parameters are chosen (see
        :func:`segment.gmm.init.initial_parameters`; "kmeans++" is an alias of "kmeans").
    weights_init : (K,) array_like, optional
    means_init : (K, D) array_like, optional
    precisions_init : array_like, optional
        User-provided initial parameters, in scikit-learn's shapes.
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None
        Seed of the initialisation and of :meth:`sample`.
    warm_start : bool, default False
        Start :meth:`fit` from the fitted parameters (one initialisation).
    verbose : int, default 0
        Print progress on stdout (1: iterations, 2: also times and changes).
    verbose_interval : int, default 10
        Iterations between two progress messages.

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
    lower_bounds_ : list of float
        The lower bound at every iteration of the best initialisation.
    n_features_in_ : int
    statistics_ : SufficientStatistics
        After :meth:`partial_fit`: the statistics accumulated so far.
    metadata_ : dict
        Free-form information saved with the model (e.g. feature settings).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
    >>> gm = Mixture(2, random_state=0).fit(X)
    >>> bool(np.allclose(np.sort(gm.means_[:, 0]), [0.0, 8.0], atol=0.3))
    True
    >>> gm.predict([[0.0, 0.0], [8.0, 8.0]]).tolist() in ([0, 1], [1, 0])
    True
    """

    #: The warning class of a fit that did not converge.
    convergence_warning: type[Warning] = ConvergenceWarning

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: np.ndarray | None = None,
        means_init: np.ndarray | None = None,
        precisions_init: np.ndarray | None = None,
        random_state: int | np.random.Generator | np.random.RandomState | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
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
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ------------------------------------------------------------------ fit
    def fit(
        self, X: np.ndarray, y: Any = None, *, sample_weight: np.ndarray | None = None, log_prior: np.ndarray | None = None
    ) -> Mixture:
        """Estimate the parameters by EM.

        Parameters
        ----------
        X : (N, D) array_like
            Samples; float32 stays float32, anything else becomes float64.
        y : ignored
        sample_weight : (N,) array_like, optional
            Non-negative weight of each sample: an integer weight is the same
            as that many copies of the sample (e.g. fit a histogram's bins
            weighted by their counts instead of every pixel).
        log_prior : (N, K) float32 ndarray, optional
            Per-sample log-prior added to the component log-densities
            (used by the spatial smoothing).

        Returns
        -------
        self : Mixture

        Examples
        --------
        >>> import numpy as np
        >>> bins = np.array([[0.0], [1.0], [2.0]])
        >>> Mixture(1).fit(bins, sample_weight=[1, 0, 3]).means_
        array([[1.5]])
        """
        self.validate_parameters()
        X = self._validate(X, reset=True, min_samples=1)
        weights = self._check_sample_weight(sample_weight, X)
        if X.shape[0] < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]}"
            )
        e_step = partial(chunk_statistics, X, covariance_type=self.covariance_type, sample_weight=weights, log_prior=log_prior)
        fit_estimator(self, e_step, partial(self.initial_parameters, X, sample_weight=weights), X.shape[1], X.dtype)
        return self

    def partial_fit(self, X: np.ndarray, y: Any = None, sample_weight: np.ndarray | None = None) -> Mixture:
        """One step of streaming (incremental) EM on a chunk of samples.

        The chunk's E-step runs under the current parameters; its sufficient
        statistics are added to those of the chunks seen before
        (``statistics_``) and the parameters become the M-step of the sum.
        The first call initialises from its chunk (or continues a fitted
        model). ``lower_bound_`` is the chunk's mean log-likelihood before
        the update and ``n_iter_`` counts the calls; ``converged_`` stays
        False. For exact EM over chunks see
        :func:`segment.gmm.streaming.fit_chunks`.

        Parameters
        ----------
        X : (N, D) array_like
        y : ignored
        sample_weight : (N,) array_like, optional

        Returns
        -------
        self : Mixture

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> gm = Mixture(1)
        >>> for _ in range(5):
        ...     gm = gm.partial_fit(rng.normal(3.0, 1.0, size=(200, 1)))
        >>> gm.n_iter_, bool(abs(gm.means_[0, 0] - 3.0) < 0.2)
        (5, True)
        """
        self.validate_parameters()
        first = not hasattr(self, "n_features_in_")
        X = self._validate(X, reset=first, min_samples=1)
        weights = self._check_sample_weight(sample_weight, X)
        if hasattr(self, "means_"):
            params = fitted_parameters(self)
        else:
            params = self.initial_parameters(X, as_generator(self.random_state), sample_weight=weights)
        chunk = chunk_statistics(X, params, self.covariance_type, sample_weight=weights)
        total = chunk if not hasattr(self, "statistics_") else self.statistics_ + chunk
        lower_bound = chunk.log_likelihood / chunk.total_weight
        history = [*getattr(self, "lower_bounds_", []), lower_bound]
        set_fitted(self, EMRun(m_step(total, self.covariance_type, self.reg_covar), lower_bound, history), X.shape[1], X.dtype)
        self.statistics_ = total
        return self

    def initial_parameters(self, X: np.ndarray, rng: np.random.Generator, *, sample_weight: np.ndarray | None = None):
        """One start of EM on ``X`` from this model's settings (``init_params`` and the ``*_init`` parameters).

        Parameters
        ----------
        X : (N, D) ndarray
        rng : numpy.random.Generator
        sample_weight : (N,) ndarray, optional

        Returns
        -------
        MixtureParameters

        Examples
        --------
        >>> import numpy as np
        >>> Mixture(1).initial_parameters(np.array([[0.0], [2.0]]), np.random.default_rng(0)).means
        array([[1.]])
        """
        return initial_parameters(
            X,
            self.n_components,
            rng,
            covariance_type=self.covariance_type,
            reg_covar=self.reg_covar,
            init_params=self.init_params,
            sample_weight=sample_weight,
            weights_init=self.weights_init,
            means_init=self.means_init,
            precisions_init=self.precisions_init,
        )

    def fit_predict(self, X: np.ndarray, y: Any = None, *, sample_weight: np.ndarray | None = None) -> np.ndarray:
        """Fit, then the most probable component of each sample of ``X`` (N,) (a final E-step, as scikit-learn).

        Examples
        --------
        >>> import numpy as np
        >>> labels = Mixture(2, random_state=0).fit_predict([[0.0], [0.1], [9.0], [9.1]])
        >>> labels[0] == labels[1] != labels[2] == labels[3]
        np.True_
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

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

        Examples
        --------
        >>> import numpy as np
        >>> gm = Mixture(1).fit([[0.0], [1.0]])
        >>> gm.label(np.array([[0.5]], dtype=np.float32))
        (array([0], dtype=int32), array([1.], dtype=float32))
        """
        X, kernel_params = self._inference_arguments(X)
        labels = np.empty(X.shape[0], dtype=np.int32)
        confidence = np.empty(X.shape[0], dtype=np.float32)
        _kernels.predict_labels(X, *kernel_params, self._log_prior(log_prior), labels, confidence)
        return labels, confidence

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of the most probable component of each sample, (N,) int.

        Examples
        --------
        >>> Mixture(1).fit([[0.0], [1.0]]).predict([[0.5]])
        array([0])
        """
        return self.label(X)[0].astype(np.intp)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Posterior probability of each component, (N, K), of the features' float dtype.

        Computed in passes of ``ROWS_PER_PASS`` rows: besides the output it
        needs about 1 MiB, however many rows there are.

        Examples
        --------
        >>> Mixture(1).fit([[0.0], [1.0]]).predict_proba([[0.5]])
        array([[1.]])
        """
        X, kernel_params = self._inference_arguments(X)
        resp = np.empty((X.shape[0], self.n_components), dtype=X.dtype)
        log_likelihood = np.empty(min(len(X), ROWS_PER_PASS), dtype=X.dtype)
        no_prior = self._log_prior(None)
        for start in range(0, len(X), ROWS_PER_PASS):
            stop = min(len(X), start + ROWS_PER_PASS)
            _kernels.posteriors(X[start:stop], *kernel_params, no_prior, resp[start:stop], log_likelihood[: stop - start])
        return resp

    def weighted_log_prob(self, X: np.ndarray) -> np.ndarray:
        """Log of weight times density, log(pi_k N(x | mu_k, Sigma_k)), for every sample and component.

        The log-posteriors up to a per-sample constant, in the dtype of the
        features (float32 stays float32): (N, K).

        Examples
        --------
        >>> Mixture(1).fit([[-1.0], [1.0]]).weighted_log_prob([[0.0]]).round(3)
        array([[-0.919]])
        """
        X, kernel_params = self._inference_arguments(X)
        out = np.empty((X.shape[0], self.n_components), dtype=X.dtype)
        _kernels.weighted_log_prob(X, *kernel_params, self._log_prior(None), out)
        return out

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Log-likelihood of each sample, (N,), of the features' float dtype.

        Examples
        --------
        >>> Mixture(1).fit([[-1.0], [1.0]]).score_samples([[0.0]]).round(3)
        array([-0.919])
        """
        X, kernel_params = self._inference_arguments(X)
        out = np.empty(X.shape[0], dtype=X.dtype)
        _kernels.posteriors(X, *kernel_params, self._log_prior(None), np.empty((0, self.n_components), X.dtype), out)
        return out

    def score(self, X: np.ndarray, y: Any = None) -> float:
        """Mean log-likelihood per sample.

        Examples
        --------
        >>> round(Mixture(1).fit([[-1.0], [1.0]]).score([[-1.0], [1.0]]), 3)
        -1.419
        """
        return float(self.score_samples(X).mean(dtype=np.float64))

    def bic(self, X: np.ndarray) -> float:
        """Bayesian information criterion on ``X`` (lower is better).

        Examples
        --------
        >>> X = [[-1.0], [1.0]]
        >>> round(Mixture(1).fit(X).bic(X), 3)  # 2 log-likelihood terms + 2 parameters * log(2)
        7.062
        """
        n = len(X)
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X: np.ndarray) -> float:
        """Akaike information criterion on ``X`` (lower is better).

        Examples
        --------
        >>> round(Mixture(1).fit([[-1.0], [1.0]]).aic([[-1.0], [1.0]]), 3)
        9.676
        """
        return -2 * self.score(X) * len(X) + 2 * self._n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture, grouped by component.

        Parameters
        ----------
        n_samples : int, default 1

        Returns
        -------
        X : (n_samples, D) ndarray
        y : (n_samples,) int ndarray
            The component of each sample.

        Examples
        --------
        >>> X, y = Mixture(1, random_state=0).fit([[-1.0], [1.0]]).sample(3)
        >>> X.shape, y.tolist()
        ((3, 1), [0, 0, 0])
        """
        self._check_fitted()
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples!r}; the sampling requires at least one sample.")
        rng = as_generator(self.random_state)
        params = fitted_parameters(self)
        counts = rng.multinomial(n_samples, params.weights / params.weights.sum())
        K, D = params.means.shape
        blocks = []
        for k, count in enumerate(counts):
            if self.covariance_type in ("full", "tied"):
                covariance = params.covariances if self.covariance_type == "tied" else params.covariances[k]
                factor = np.linalg.cholesky(covariance)
            else:
                factor = np.diag(np.broadcast_to(np.sqrt(params.covariances[k]), (D,)))
            blocks.append(params.means[k] + rng.standard_normal((count, D)) @ factor.T)
        labels = np.repeat(np.arange(K), counts)
        return np.concatenate(blocks).astype(self.means_.dtype, copy=False), labels

    def permute_components(self, order: np.ndarray) -> Mixture:
        """Reorder the fitted components in place: new component i is old ``order[i]``.

        Examples
        --------
        >>> gm = Mixture(2, random_state=0).fit([[0.0], [0.1], [9.0], [9.1]])
        >>> gm.permute_components(np.argsort(-gm.means_[:, 0])).means_.round(2)
        array([[9.05],
               [0.05]])
        """
        self._check_fitted()
        order = np.asarray(order)
        self.weights_ = self.weights_[order]
        self.means_ = self.means_[order]
        if self.covariance_type != "tied":
            for name in ("covariances_", "precisions_", "precisions_cholesky_"):
                setattr(self, name, getattr(self, name)[order])
        return self

    @property
    def log_likelihood_history_(self) -> list[float]:
        """The lower bound at every iteration (the same as ``lower_bounds_``)."""
        return self.lower_bounds_

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return n_parameters(K, D, self.covariance_type)

    def _inference_arguments(self, X):
        self._check_fitted()
        X = self._validate(X, reset=False)
        return X, kernel_parameters(fitted_parameters(self), self.covariance_type, X.dtype)

    def _log_prior(self, log_prior):
        if log_prior is None:
            return np.empty((0, self.n_components), dtype=np.float32)
        return np.ascontiguousarray(log_prior, dtype=np.float32)

    # ---------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> None:
        """Write the fitted model to an ``.npz`` file (atomically).

        Parameters
        ----------
        path : path-like
            Destination file.
        metadata : dict, optional
            JSON-serialisable information stored with the model.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> gm = Mixture(1).fit([[0.0], [2.0]])
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     gm.save(pathlib.Path(folder) / "model.npz", metadata={"bands": 1})
        ...     Mixture.load(pathlib.Path(folder) / "model.npz").metadata_
        {'bands': 1}
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
    def load(cls, path: str | os.PathLike) -> Mixture:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ValueError
            If the file is not a readable model of a known version, or its
            parameters are inconsistent.

        Examples
        --------
        See :meth:`save`.
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
        try:
            prec_chol = precision_cholesky(covariances, covariance_type)
        except ValueError:
            raise ValueError(f"{path}: model covariances are not positive definite") from None
        model = cls(n_components=K, covariance_type=covariance_type)
        params = MixtureParameters(weights / weights.sum(), means, covariances, prec_chol)
        set_fitted(model, EMRun(params, -np.inf, [], True), means.shape[1], np.float64)
        model.metadata_ = header.get("metadata") or {}
        return model

    # ----------------------------------------------------------- validation
    def validate_parameters(self) -> None:
        """Check the constructor's arguments (scikit-learn's rules); a ValueError names the parameter and the value.

        Examples
        --------
        >>> Mixture(0).validate_parameters()
        Traceback (most recent call last):
        ...
        ValueError: n_components must be an integer >= 1; got 0
        """

        def integer(name, low):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")

        def non_negative(name):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0; got {value!r}")

        integer("n_components", 1)
        integer("max_iter", 0)
        integer("n_init", 1)
        integer("verbose", 0)
        integer("verbose_interval", 1)
        non_negative("tol")
        non_negative("reg_covar")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)}; got {self.covariance_type!r}")
        if self.init_params not in INIT_PARAMS:
            raise ValueError(f"init_params must be one of {', '.join(INIT_PARAMS)}; got {self.init_params!r}")
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be a bool; got {self.warm_start!r}")

    def _validate(self, X, reset: bool, min_samples: int = 0) -> np.ndarray:
        """``X`` as a C-contiguous (N, D) float32 or float64 array of finite values; ``reset`` records D.

        Inference accepts no rows (an image whose pixels are all masked out).
        """
        X = np.asarray(X)
        X = np.ascontiguousarray(X, dtype=X.dtype if X.dtype in FLOAT_DTYPES else np.float64)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array of samples (N, D); got shape {X.shape}")
        if X.shape[0] < min_samples:
            raise ValueError(f"expected at least {min_samples} sample(s); got {X.shape[0]}")
        if not np.isfinite(X).all():
            raise ValueError("the samples contain NaN or infinity")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input")
        return X

    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call 'fit' first.")

    @staticmethod
    def _check_sample_weight(sample_weight, X) -> np.ndarray | None:
        if sample_weight is None:
            return None
        weights = np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (X.shape[0],):
            raise ValueError(f"sample_weight must have shape ({X.shape[0]},) like the samples; got {weights.shape}")
        if not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError("sample_weight must be finite and non-negative")
        if not weights.sum() > 0:
            raise ValueError("sample_weight must not be all zero: no sample would count")
        return weights.astype(X.dtype)

