"""Streaming EM: statistics that add up, EM over chunks and on Dask workers equal to the in-memory fit."""

import time

import dask
import numpy as np
import pytest
from distributed import Client, LocalCluster

from segment.gmm import GaussianMixture
from segment.gmm.parameters import MixtureParameters
from segment.gmm.statistics import chunk_statistics, m_step
from segment.gmm.streaming import add_statistics, fit_chunks, fit_dask

START = dict(
    weights_init=[0.3, 0.3, 0.4],
    means_init=[[1.0, 1.0, 0.0], [5.0, 0.0, -1.0], [-3.0, 4.0, 2.0]],
    precisions_init=np.stack([np.eye(3)] * 3),
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    truth = rng.integers(3, size=6000)
    means = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [-4.0, 5.0, 3.0]])
    return means[truth] + rng.normal(size=(6000, 3)) * (1 + truth[:, None] * 0.3)


def _model():
    return GaussianMixture(3, tol=1e-8, max_iter=200, random_state=0, **START)


def _assert_same_fit(a, b, rtol=1e-6):
    assert a.n_iter_ == b.n_iter_ and a.converged_ and b.converged_
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=1e-12)
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=rtol)


def test_statistics_add_up_and_raw_sums_are_consistent(data):
    params = _model().initial_parameters(data, np.random.default_rng(0))
    whole = chunk_statistics(data, params, "full")
    parts = add_statistics(chunk_statistics(part, params, "full") for part in np.array_split(data, 7))
    np.testing.assert_allclose(parts.nk, whole.nk, rtol=1e-12)
    np.testing.assert_allclose(parts.sum_xx, whole.sum_xx, rtol=1e-11)
    assert parts.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-12)
    # Raw sums against the posteriors of the estimator with the same parameters.
    model = _model().fit(data[:10])
    for name, value in zip(("weights_", "means_", "covariances_", "precisions_cholesky_"), params):
        setattr(model, name, value)
    resp = model.predict_proba(data)
    np.testing.assert_allclose(whole.sum_x, resp.T @ data, rtol=1e-9)
    np.testing.assert_allclose(whole.sum_xx, np.einsum("nk,na,nb->kab", resp, data, data), rtol=1e-9)
    # Statistics taken about different references still add up to the same M-step.
    other = MixtureParameters(params.weights, params.means + 1.0, params.covariances, params.precisions_cholesky)
    shifted = chunk_statistics(data[:10], other, "full").about(whole.reference)
    np.testing.assert_allclose(shifted.sum_xx, chunk_statistics(data[:10], other, "full").sum_xx, rtol=1e-12)
    np.testing.assert_allclose(m_step(parts, "full", 1e-6).means, m_step(whole, "full", 1e-6).means, rtol=1e-12)


def test_fit_chunks_equals_the_in_memory_fit(data):
    whole = _model().fit(data)
    _assert_same_fit(fit_chunks(_model(), np.array_split(data, 5)), whole)
    # A callable is read anew for every pass (e.g. chunks read from files).
    passes = []

    def read():
        passes.append(1)
        return iter(np.array_split(data, 3))

    _assert_same_fit(fit_chunks(_model(), read), whole)
    assert len(passes) == whole.n_iter_ + 1  # one to look at the first chunk


def test_fit_dask_on_two_worker_processes_equals_the_in_memory_fit(data):
    whole = _model().fit(data)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cluster:
        with Client(cluster) as client:
            started = time.perf_counter()
            chunks = [dask.delayed(np.asarray)(part) for part in np.array_split(data, 4)]
            model = fit_dask(_model(), chunks, client)
            assert time.perf_counter() - started < 60
            futures = client.scatter(np.array_split(data, 4))
            again = fit_dask(_model(), futures, client)
    _assert_same_fit(model, whole)
    _assert_same_fit(again, whole)
