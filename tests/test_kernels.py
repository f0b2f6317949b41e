"""The EM kernels against a slow, readable float64 NumPy reference."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy.special import logsumexp

from segment.gmm import _kernels


def _model(K, D, dtype, rng):
    """Random means, upper-triangular precision Cholesky factors and log-normalisers."""
    means = rng.normal(scale=3.0, size=(K, D))
    prec_chol = np.triu(rng.normal(scale=0.3, size=(K, D, D)), 1) + np.eye(D) * rng.uniform(0.5, 2.0, size=(K, D, 1))
    weights = rng.dirichlet(np.ones(K))
    log_norm = np.log(weights) + np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1) - 0.5 * D * np.log(2 * np.pi)
    return [np.ascontiguousarray(a, dtype=dtype) for a in (means, prec_chol, log_norm)]


def _reference(X, means, prec_chol, log_norm, log_prior):
    """Per-pixel log-probabilities, log p(x), posteriors and statistics, in float64."""
    X, means, prec_chol, log_norm = (np.asarray(a, dtype=np.float64) for a in (X, means, prec_chol, log_norm))
    diff = X[:, None, :] - means[None]  # (N, K, D)
    y = np.einsum("nkr,krc->nkc", diff, prec_chol)
    log_prob = log_norm - 0.5 * (y**2).sum(axis=2)
    if len(log_prior):
        log_prob = log_prob + log_prior
    lse = logsumexp(log_prob, axis=1)
    resp = np.exp(log_prob - lse[:, None])
    nk = resp.sum(axis=0)
    s1 = np.einsum("nk,nkd->kd", resp, diff)
    s2 = np.triu(np.einsum("nk,nka,nkb->kab", resp, diff, diff))
    return log_prob, lse, resp, nk, s1, s2


# N spans several chunks and a ragged last block; D = 1 and K = 1 are edge cases.
# D in UNROLLED runs generated kernels, other D the generic ones.
CASES = [(20_000, 5, 8), (3_001, 3, 4), (1_000, 1, 3), (700, 4, 1), (1_500, 2, 3), (2_500, 6, 5), (1_200, 9, 3)]


def test_cases_cover_both_kernel_families():
    dimensions = {D for _, D, _ in CASES}
    assert set(range(1, 7)) <= dimensions
    assert set(_kernels.UNROLLED) <= dimensions and dimensions - set(_kernels.UNROLLED)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 2e-4)])
@pytest.mark.parametrize("N, D, K", CASES)
def test_em_statistics_match_reference(N, D, K, dtype, rtol):
    rng = np.random.default_rng(N + D + K)
    means, prec_chol, log_norm = _model(K, D, dtype, rng)
    X = np.ascontiguousarray(means[rng.integers(K, size=N)] + rng.normal(size=(N, D)), dtype=dtype)
    no_prior = np.empty((0, K), dtype=np.float32)
    _, lse, _, nk, s1, s2 = _reference(X, means, prec_chol, log_norm, no_prior)
    unit = np.empty(0, dtype=dtype)
    loglik, nk_k, s1_k, s2_k = (a.sum(axis=0) for a in _kernels.em_statistics(X, means, prec_chol, log_norm, no_prior, unit))
    scale = N  # statistics are sums over pixels: compare relative to their size
    assert loglik == pytest.approx(lse.sum(), rel=rtol)
    assert np.abs(nk_k - nk).max() < rtol * scale
    assert np.abs(s1_k - s1).max() < rtol * scale * np.abs(X).max()
    assert np.abs(np.triu(s2_k) - s2).max() < rtol * scale * np.abs(X).max() ** 2
    assert np.all(np.tril(s2_k, -1) == 0)


@pytest.mark.parametrize("D", [3, 4])
def test_weighted_statistics_match_reference(D):
    rng = np.random.default_rng(D)
    N, K = 5_000, 4
    means, prec_chol, log_norm = _model(K, D, np.float64, rng)
    X = means[rng.integers(K, size=N)] + rng.normal(size=(N, D))
    weights = rng.uniform(0.0, 3.0, size=N)
    weights[::7] = 0.0
    no_prior = np.empty((0, K), dtype=np.float32)
    _, lse, resp, _, _, _ = _reference(X, means, prec_chol, log_norm, no_prior)
    diff = X[:, None, :] - means[None]
    loglik, nk, s1, s2 = (a.sum(axis=0) for a in _kernels.em_statistics(X, means, prec_chol, log_norm, no_prior, weights))
    weighted = resp * weights[:, None]
    assert loglik == pytest.approx((weights * lse).sum(), rel=1e-12)
    np.testing.assert_allclose(nk, weighted.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(s1, np.einsum("nk,nkd->kd", weighted, diff), rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(np.triu(s2), np.triu(np.einsum("nk,nka,nkb->kab", weighted, diff, diff)), rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("D", [5, 6])
def test_labels_posteriors_and_densities_match_reference(dtype, D):
    rng = np.random.default_rng(1)
    K, N = 6, 9_000
    means, prec_chol, log_norm = _model(K, D, dtype, rng)
    X = np.ascontiguousarray(means[rng.integers(K, size=N)] + rng.normal(size=(N, D)), dtype=dtype)
    log_prior = np.log(rng.dirichlet(np.ones(K), size=N)).astype(np.float32)
    log_prob, lse, resp, *_ = _reference(X, means, prec_chol, log_norm, log_prior)

    labels = np.empty(N, np.int32)
    confidence = np.empty(N, np.float32)
    _kernels.predict_labels(X, means, prec_chol, log_norm, log_prior, labels, confidence)
    clear = np.sort(log_prob, axis=1)[:, -1] - np.sort(log_prob, axis=1)[:, -2] > 1e-3
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(labels[clear], log_prob.argmax(axis=1)[clear])
    np.testing.assert_allclose(confidence, resp.max(axis=1), rtol=1e-5 if dtype == np.float32 else 1e-6)

    resp_k = np.empty((N, K))
    lse_k = np.empty(N)
    _kernels.posteriors(X, means, prec_chol, log_norm, log_prior, resp_k, lse_k)
    atol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(resp_k, resp, atol=atol)
    np.testing.assert_allclose(lse_k, lse, rtol=atol, atol=atol * np.abs(lse).max())


def test_far_components_get_exactly_zero_posterior():
    # Component 1 lies 1000 standard deviations away: its exp is skipped, not approximated.
    X = np.random.default_rng(2).normal(size=(5_000, 2)).astype(np.float32)
    means = np.array([[0.0, 0.0], [1000.0, 0.0]], dtype=np.float32)
    prec_chol = np.stack([np.eye(2), np.eye(2)]).astype(np.float32)
    log_norm = np.full(2, np.log(0.5) - np.log(2 * np.pi), dtype=np.float32)
    resp = np.empty((len(X), 2))
    _kernels.posteriors(X, means, prec_chol, log_norm, np.empty((0, 2), np.float32), resp, np.empty(len(X)))
    assert np.all(resp[:, 1] == 0.0) and np.all(resp[:, 0] == 1.0)


def test_float32_exp_is_accurate_over_its_range():
    # Through the kernel: two identical components but for a log-prior gap, so
    # that their posteriors' ratio is exp(gap); gaps down to the float32 negligible gap.
    negligible = np.log(np.finfo(np.float32).eps) + _kernels.NEGLIGIBLE_BELOW_EPS
    gaps = -np.linspace(0.0, -negligible, 4001)
    X = np.zeros((len(gaps), 1), dtype=np.float32)
    means = np.zeros((2, 1), dtype=np.float32)
    prec_chol = np.ones((2, 1, 1), dtype=np.float32)
    log_norm = np.zeros(2, dtype=np.float32)
    log_prior = np.stack([np.zeros_like(gaps), gaps], axis=1).astype(np.float32)
    resp = np.empty((len(gaps), 2))
    _kernels.posteriors(X, means, prec_chol, log_norm, log_prior, resp, np.empty(len(gaps)))
    expected = np.exp(log_prior[:, 1].astype(np.float64))
    np.testing.assert_allclose(resp[:, 1] / resp[:, 0], expected, rtol=5e-7)


SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    import numpy as np
    from segment.gmm import GaussianMixture
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(60_000, 5)) + rng.integers(4, size=(60_000, 1)) * 3).astype(np.float32)
    warnings.simplefilter("ignore")
    model = GaussianMixture(4, max_iter=15, tol=0, random_state=3).fit(X)
    labels, confidence = model.label(X)
    sys.stdout.buffer.write(model.means_.tobytes() + model.covariances_.tobytes() + labels.tobytes() + confidence.tobytes())
    """
)


def test_fit_is_bit_identical_whatever_the_thread_count():
    outputs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, check=True)
        outputs.append(done.stdout)
    assert len(outputs[0]) > 60_000 * 8
    assert outputs[0] == outputs[1]


GENERIC_FIT = textwrap.dedent(
    """
    import sys, warnings
    import numpy as np
    from segment.gmm import Mixture
    rng = np.random.default_rng(0)
    warnings.simplefilter("ignore")
    out = b""
    for D, dtype in ((1, np.float64), (2, np.float32)):  # feature counts served by the generic kernels
        X = (rng.normal(size=(20_000, D)) + rng.integers(4, size=(20_000, 1)) * 3).astype(dtype)
        model = Mixture(n_components=4, max_iter=20, tol=0, random_state=0).fit(X)
        labels, confidence = model.label(X)
        out += model.means_.tobytes() + labels.tobytes() + confidence.tobytes()
    sys.stdout.buffer.write(out)
    """
)


def test_fit_is_bit_identical_compiled_or_loaded_from_the_cache(tmp_path):
    """The first process compiles the kernels into an empty cache, the second loads them: the same fit."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    outputs = [subprocess.run([sys.executable, "-c", GENERIC_FIT], env=env, capture_output=True, check=True).stdout for _ in range(2)]
    assert any(tmp_path.rglob("*.nbi"))  # the second process had a cache to load
    assert len(outputs[0]) > 20_000 * 8
    assert outputs[0] == outputs[1]
