"""Gaussian mixture models fitted by EM in Numba kernels."""

from segment.gmm.mixture import ConvergenceWarning, GaussianMixture

__all__ = ["ConvergenceWarning", "GaussianMixture"]
