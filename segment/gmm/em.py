"""The EM loop of a Mixture's settings, for any E-step: in memory, over chunks, or on Dask workers.

The E-step is a function of the parameters that returns summed
:class:`~segment.gmm.statistics.SufficientStatistics`; where the samples
live is its business. Everything else (restarts, warm starts, convergence,
the fitted attributes) is here, once.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from segment.gmm.parameters import MixtureParameters, precisions_from_cholesky
from segment.gmm.statistics import SufficientStatistics, m_step

EStep = Callable[[MixtureParameters], SufficientStatistics]


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before the lower bound settled."""


@dataclass
class EMRun:
    """Outcome of EM from one start: the last parameters and the lower bound at every iteration.

    Examples
    --------
    >>> import numpy as np
    >>> from segment.gmm.parameters import MixtureParameters
    >>> EMRun(MixtureParameters(np.ones(1), np.zeros((1, 1)), np.ones(1), np.ones(1))).n_iter
    0
    """

    params: MixtureParameters
    lower_bound: float = -np.inf
    lower_bounds: list[float] = field(default_factory=list)
    converged: bool = False

    @property
    def n_iter(self) -> int:
        """Number of EM iterations run."""
        return len(self.lower_bounds)


def run_em(
    e_step: EStep,
    params: MixtureParameters,
    *,
    covariance_type: str,
    reg_covar: float,
    tol: float,
    max_iter: int,
    lower_bound: float = -np.inf,
    on_iteration: Callable[[int, float], None] | None = None,
) -> EMRun:
    """EM from ``params``: E-step, M-step, until the mean log-likelihood changes by less than ``tol``.

    Parameters
    ----------
    e_step : callable
        ``e_step(params) -> SufficientStatistics`` summed over all samples.
    params : MixtureParameters
        Starting parameters.
    covariance_type, reg_covar, tol, max_iter
        As in :class:`~segment.gmm.GaussianMixture`.
    lower_bound : float
        Lower bound before the first iteration (a warm start's last one).
    on_iteration : callable, optional
        Called with the iteration number and the change of the lower bound.

    Returns
    -------
    EMRun
        ``lower_bound`` is the mean log-likelihood under the parameters of
        the last E-step, as scikit-learn reports it.

    Examples
    --------
    >>> import numpy as np
    >>> from functools import partial
    >>> from segment.gmm.statistics import chunk_statistics
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> start = MixtureParameters(np.ones(1), np.zeros((1, 1)), np.ones(1), np.ones(1))
    >>> run = run_em(partial(chunk_statistics, X, covariance_type="spherical"), start,
    ...              covariance_type="spherical", reg_covar=0.0, tol=1e-9, max_iter=10)
    >>> run.params.means, run.converged, run.n_iter
    (array([[1.]]), True, 3)
    """
    run = EMRun(params, lower_bound)
    for n_iter in range(1, max_iter + 1):
        previous = run.lower_bound
        statistics = e_step(run.params)
        run.lower_bound = statistics.log_likelihood / statistics.total_weight
        run.params = m_step(statistics, covariance_type, reg_covar)
        run.lower_bounds.append(run.lower_bound)
        change = run.lower_bound - previous
        if on_iteration is not None:
            on_iteration(n_iter, change)
        if abs(change) < tol:
            run.converged = True
            break
    return run


def fit_estimator(model, e_step: EStep, initialise: Callable[[np.random.Generator], MixtureParameters], n_features: int, dtype) -> None:
    """Fit ``model`` by EM with its own settings and set its fitted attributes.

    ``n_init`` starts from ``initialise(rng)`` (or one warm start from the
    fitted parameters when ``warm_start`` is set and the model is fitted),
    keeping the run with the highest lower bound; a
    :class:`ConvergenceWarning` (the model's ``convergence_warning``) if it did not converge.

    Parameters
    ----------
    model : Mixture
        Read for its settings, written with the fitted attributes.
    e_step : callable
        ``e_step(params) -> SufficientStatistics`` over all samples.
    initialise : callable
        ``initialise(rng) -> MixtureParameters``, one start.
    n_features : int
    dtype : numpy dtype
        Of the features: float32 features give float32 attributes.

    Examples
    --------
    >>> import numpy as np
    >>> from functools import partial
    >>> from segment.gmm import Mixture
    >>> from segment.gmm.init import initial_parameters
    >>> from segment.gmm.statistics import chunk_statistics
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> model = Mixture(1)
    >>> fit_estimator(model, partial(chunk_statistics, X, covariance_type="full"),
    ...               partial(initial_parameters, X, 1), 1, X.dtype)
    >>> model.means_
    array([[1.]])
    """
    warm = model.warm_start and hasattr(model, "converged_")
    rng = as_generator(model.random_state)
    reporter = _Reporter(model.verbose, model.verbose_interval)
    best = None
    for init in range(1 if warm else model.n_init):
        reporter.start(init)
        params = fitted_parameters(model) if warm else initialise(rng)
        run = run_em(
            e_step,
            params,
            covariance_type=model.covariance_type,
            reg_covar=model.reg_covar,
            tol=model.tol,
            max_iter=model.max_iter,
            lower_bound=model.lower_bound_ if warm else -np.inf,
            on_iteration=reporter.iteration,
        )
        reporter.end(run)
        if best is None or run.lower_bound > best.lower_bound:
            best = run
    set_fitted(model, best, n_features, dtype)
    if not best.converged and model.max_iter > 0:
        warnings.warn(
            f"EM did not converge in max_iter={model.max_iter} iterations "
            f"(last change of the lower bound {_last_change(best):.3g}); increase max_iter or tol.",
            type(model).convergence_warning,
            stacklevel=3,
        )


def set_fitted(model, run: EMRun, n_features: int, dtype) -> None:
    """Write a run's parameters and history into ``model``'s fitted attributes, in ``dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> from segment.gmm import Mixture
    >>> model = Mixture(1, covariance_type="spherical")
    >>> run = EMRun(MixtureParameters(np.ones(1), np.zeros((1, 1)), np.ones(1), np.ones(1)), -1.0, [-1.0], True)
    >>> set_fitted(model, run, 1, np.float32)
    >>> model.means_.dtype, model.n_iter_
    (dtype('float32'), 1)
    """
    weights, means, covariances, prec_chol = (np.asarray(a, dtype=dtype) for a in run.params)
    model.weights_ = weights
    model.means_ = means
    model.covariances_ = covariances
    model.precisions_cholesky_ = prec_chol
    model.precisions_ = precisions_from_cholesky(prec_chol, model.covariance_type)
    model.converged_ = run.converged
    model.n_iter_ = run.n_iter
    model.lower_bound_ = float(run.lower_bound)
    model.lower_bounds_ = [float(v) for v in run.lower_bounds]
    model.n_features_in_ = n_features


def fitted_parameters(model) -> MixtureParameters:
    """A fitted model's parameters, float64.

    Examples
    --------
    >>> import numpy as np
    >>> from segment.gmm import Mixture
    >>> model = Mixture(1).fit(np.array([[0.0], [2.0]]))
    >>> fitted_parameters(model).means
    array([[1.]])
    """
    return MixtureParameters(
        *(np.asarray(a, dtype=np.float64) for a in (model.weights_, model.means_, model.covariances_, model.precisions_cholesky_))
    )


def as_generator(random_state) -> np.random.Generator:
    """A NumPy Generator from ``random_state``: None, an int, a Generator or a RandomState.

    An int gives the same Generator every time (so the same fit); a
    RandomState is drawn from, as scikit-learn does.

    Examples
    --------
    >>> as_generator(3).integers(100) == as_generator(3).integers(100)
    np.True_
    """
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


def _last_change(run: EMRun) -> float:
    return run.lower_bounds[-1] - run.lower_bounds[-2] if run.n_iter > 1 else float("nan")


class _Reporter:
    """scikit-learn's ``verbose`` messages on stdout (only when asked for: verbose > 0)."""

    def __init__(self, verbose: int, interval: int) -> None:
        self.verbose, self.interval = verbose, interval
        self.started = self.last = time.perf_counter()

    def start(self, init: int) -> None:
        if self.verbose:
            print(f"Initialization {init}")
            self.started = self.last = time.perf_counter()

    def iteration(self, n_iter: int, change: float) -> None:
        if self.verbose and n_iter % self.interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            else:
                now = time.perf_counter()
                print(f"  Iteration {n_iter}\t time lapse {now - self.last:.5f}s\t ll change {change:.5f}")
                self.last = now

    def end(self, run: EMRun) -> None:
        if self.verbose:
            state = "converged" if run.converged else "did not converge"
            details = f". time lapse {time.perf_counter() - self.started:.5f}s\t lower bound {run.lower_bound:.5f}"
            print(f"Initialization {state}" + (details if self.verbose > 1 else "."))
