"""Exact EM over data that does not fit in memory or lives on other machines.

An E-step over a chunk of samples leaves K x D x D numbers
(:func:`chunk_statistics`); the statistics of all chunks add up
(:func:`add_statistics`) and the M-step needs nothing else (:func:`m_step`).
:func:`fit_chunks` runs EM with one pass over an iterable of chunks per
iteration, in memory bounded by one chunk; :func:`fit_dask` runs the E-step
on Dask workers, where the chunks stay, and only statistics and parameters
travel. Both give the fit of the concatenated chunks from the same start.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterable

import numpy as np

from segment.gmm.em import fit_estimator
from segment.gmm.statistics import SufficientStatistics, add_statistics, chunk_statistics, m_step

__all__ = ["SufficientStatistics", "add_statistics", "chunk_statistics", "fit_chunks", "fit_dask", "m_step"]


def fit_chunks(model, chunks: Iterable[np.ndarray] | Callable[[], Iterable[np.ndarray]]):
    """Fit ``model`` by exact EM over chunks of samples, one pass over all chunks per iteration.

    Parameters
    ----------
    model : Mixture
        Its settings are used and its fitted attributes set, as by ``fit``.
        The start is drawn from the first chunk, except what the ``*_init``
        parameters give (all three give the start of an in-memory fit), or
        the fitted parameters with ``warm_start``.
    chunks : sequence of (n_i, D) arrays, or a callable returning an iterable of them
        Read once per iteration; a callable (e.g. one that reads the chunks
        from files) is called for every pass, so that only one chunk needs
        to be in memory at a time.

    Returns
    -------
    model : Mixture

    Examples
    --------
    >>> import numpy as np
    >>> from segment.gmm import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (200, 1)), rng.normal(9, 1, (200, 1))])
    >>> start = dict(weights_init=[0.5, 0.5], means_init=[[1.0], [8.0]], precisions_init=[[[1.0]], [[1.0]]])
    >>> chunked = fit_chunks(GaussianMixture(2, **start), np.array_split(X, 4))
    >>> whole = GaussianMixture(2, **start).fit(X)
    >>> bool(np.allclose(chunked.means_, whole.means_, rtol=1e-9))
    True
    """
    passes = chunks if callable(chunks) else lambda: chunks
    model.validate_parameters()
    first = _features(next(iter(passes())))

    def e_step(params):
        return add_statistics(chunk_statistics(_features(chunk), params, model.covariance_type) for chunk in passes())

    fit_estimator(model, e_step, partial(model.initial_parameters, first), first.shape[1], first.dtype)
    return model


def fit_dask(model, chunks, client):
    """Fit ``model`` by exact EM with the E-step on Dask workers.

    The chunks are computed once on the workers and stay there; each
    iteration sends the parameters, runs :func:`chunk_statistics` next to
    every chunk and brings back only their statistics, which are added in
    chunk order (so the fit does not depend on the number of workers).

    Parameters
    ----------
    model : Mixture
        As for :func:`fit_chunks`; the start is drawn from the first chunk.
    chunks : list of dask.delayed objects or futures
        Each an (n_i, D) array.
    client : distributed.Client

    Returns
    -------
    model : Mixture

    Examples
    --------
    >>> from distributed import Client, LocalCluster
    >>> import dask, numpy as np
    >>> from segment.gmm import GaussianMixture
    >>> X = np.random.default_rng(0).normal(size=(400, 2))
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
    ...     model = fit_dask(GaussianMixture(1), [dask.delayed(part) for part in np.array_split(X, 2)], client)
    >>> bool(np.allclose(model.means_, X.mean(axis=0)))
    True
    """
    from distributed import Future

    model.validate_parameters()
    futures = [chunk if isinstance(chunk, Future) else client.compute(chunk) for chunk in chunks]
    futures = client.map(_features, futures)
    n_features, dtype = client.submit(_shape_and_dtype, futures[0]).result()

    def e_step(params):
        parts = client.map(chunk_statistics, futures, params=params, covariance_type=model.covariance_type)
        return add_statistics(client.gather(parts))

    def initialise(rng):
        return client.submit(_initial_parameters, model, futures[0], rng.integers(2**63)).result()

    fit_estimator(model, e_step, initialise, n_features, dtype)
    return model


def _features(chunk) -> np.ndarray:
    chunk = np.asarray(chunk)
    return np.ascontiguousarray(chunk, dtype=np.float32 if chunk.dtype == np.float32 else np.float64)


def _shape_and_dtype(chunk: np.ndarray):
    return chunk.shape[1], chunk.dtype


def _initial_parameters(model, chunk, seed):
    return model.initial_parameters(chunk, np.random.default_rng(seed))
