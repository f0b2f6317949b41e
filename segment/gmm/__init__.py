"""Gaussian mixture models fitted by EM in Numba kernels: the model, its scikit-learn estimator, EM steps and streaming EM.

``GaussianMixture`` (the scikit-learn estimator) is imported on first use:
scikit-learn takes seconds to import, and the pipeline needs only ``Mixture``.
"""

from __future__ import annotations

from typing import Any

from segment.gmm.em import ConvergenceWarning
from segment.gmm.mixture import Mixture, NotFittedError

__all__ = ["ConvergenceWarning", "GaussianMixture", "Mixture", "NotFittedError"]


def __getattr__(name: str) -> Any:
    if name == "GaussianMixture":
        from segment.gmm.estimator import GaussianMixture

        return GaussianMixture
    raise AttributeError(f"module 'segment.gmm' has no attribute {name!r}")
