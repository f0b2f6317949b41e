"""GaussianMixture: :class:`~segment.gmm.mixture.Mixture` as a scikit-learn estimator."""

from __future__ import annotations

import numpy as np
import sklearn.exceptions
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from segment.gmm.em import ConvergenceWarning
from segment.gmm.mixture import FLOAT_DTYPES, Mixture


class EstimatorConvergenceWarning(ConvergenceWarning, sklearn.exceptions.ConvergenceWarning):
    """A fit that did not converge: caught by filters on scikit-learn's ConvergenceWarning or on segment's."""


class GaussianMixture(Mixture, DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM in Numba kernels, as a scikit-learn estimator.

    A drop-in for :class:`sklearn.mixture.GaussianMixture`: it passes
    scikit-learn's estimator checks and works with clone, Pipeline and
    GridSearchCV. Parameters, attributes and methods are those of
    :class:`~segment.gmm.mixture.Mixture` (weighted and streaming EM
    included); input validation, ``feature_names_in_``, errors before
    fitting and the printed form are scikit-learn's.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import clone
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> gm
    GaussianMixture(n_components=2, random_state=0)
    >>> clone(gm).get_params()["n_components"]
    2
    >>> gm.predict([[0.0, 0.0], [8.0, 8.0]]).tolist() in ([0, 1], [1, 0])
    True
    """

    convergence_warning = EstimatorConvergenceWarning
    __repr__ = BaseEstimator.__repr__

    def _validate(self, X, reset: bool, min_samples: int = 0):
        # Inference accepts no rows (an image whose pixels are all masked out).
        return np.ascontiguousarray(validate_data(self, X, reset=reset, dtype=FLOAT_DTYPES, ensure_min_samples=min_samples))

    def _check_fitted(self) -> None:
        check_is_fitted(self)
