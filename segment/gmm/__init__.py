"""Gaussian mixture models fitted by EM in Numba kernels: the estimator, its EM steps and streaming EM."""

from sklearn.exceptions import ConvergenceWarning

from segment.gmm.mixture import GaussianMixture

__all__ = ["ConvergenceWarning", "GaussianMixture"]
