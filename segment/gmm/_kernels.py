"""Numba kernels of the Gaussian mixture: E-step statistics, labelling, densities.

Every kernel takes the model as arrays of the feature dtype:

- ``X``: (N, D) float32 or float64, C-contiguous features.
- ``means``: (K, D) component means.
- ``prec_chol``: (K, D, D) upper-triangular Cholesky factors P_k of the
  precisions (P_k P_k^T = Sigma_k^-1), whatever the covariance type.
- ``log_norm``: (K,) log(weight_k) + log det(P_k) - D/2 log(2 pi).
- ``log_prior``: (N, K) float32 extra log-prior per pixel (the smoothing
  prior), or a (0, K) array for none.

Pixels are processed in blocks of ``BLOCK`` (transposed to (D, BLOCK) so the
inner loops run over contiguous pixels and vectorise) inside parallel chunks
of ``CHUNK`` pixels. The chunk size does not depend on the number of threads,
and partial sums are returned per chunk and reduced in a fixed order, so a fit
is bit-identical whatever the thread count. Kernels do not validate inputs.
"""

import math

import numpy as np
from numba import njit, prange

# No nnan/ninf: log-likelihoods are legitimately -inf.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
BLOCK = 128
CHUNK = 8192


@njit(cache=True, fastmath=FASTMATH)
def _block_log_prob(X, start, nb, means, prec_chol, log_norm, log_prior, xb, diff, log_prob):
    """Fill ``diff[k, :, :nb]`` (X - mean_k) and ``log_prob[k, :nb]`` for one block."""
    K, D = means.shape
    for d in range(D):
        for i in range(nb):
            xb[d, i] = X[start + i, d]
    for k in range(K):
        for d in range(D):
            mu = means[k, d]
            for i in range(nb):
                diff[k, d, i] = xb[d, i] - mu
        ln = log_norm[k]
        for i in range(nb):
            log_prob[k, i] = ln
        for c in range(D):
            # y_c = sum_{r <= c} diff_r * P[r, c]; log N = log_norm - |y|^2 / 2
            p = prec_chol[k, c, c]
            for i in range(nb):
                xb[D, i] = diff[k, c, i] * p
            for r in range(c):
                p = prec_chol[k, r, c]
                for i in range(nb):
                    xb[D, i] += diff[k, r, i] * p
            for i in range(nb):
                log_prob[k, i] -= 0.5 * xb[D, i] * xb[D, i]
    if log_prior.shape[0] > 0:
        for i in range(nb):
            for k in range(K):
                log_prob[k, i] += log_prior[start + i, k]


@njit(cache=True, fastmath=FASTMATH)
def _block_posteriors(nb, K, log_prob, resp, lse):
    """Turn ``log_prob[:, :nb]`` into posteriors ``resp`` and log-sum-exp ``lse``."""
    for i in range(nb):
        lse[i] = log_prob[0, i]
    for k in range(1, K):
        for i in range(nb):
            lse[i] = max(lse[i], log_prob[k, i])
    for i in range(nb):
        resp[K, i] = 0.0
    for k in range(K):
        for i in range(nb):
            e = math.exp(log_prob[k, i] - lse[i])
            resp[k, i] = e
            resp[K, i] += e
    for i in range(nb):
        lse[i] += math.log(resp[K, i])
        resp[K, i] = 1.0 / resp[K, i]
    for k in range(K):
        for i in range(nb):
            resp[k, i] *= resp[K, i]


@njit(cache=True, fastmath=FASTMATH)
def _alloc_block(X, K):
    D = X.shape[1]
    xb = np.empty((D + 1, BLOCK), dtype=X.dtype)
    diff = np.empty((K, D, BLOCK), dtype=X.dtype)
    log_prob = np.empty((K, BLOCK), dtype=X.dtype)
    resp = np.empty((K + 1, BLOCK), dtype=X.dtype)
    lse = np.empty(BLOCK, dtype=X.dtype)
    return xb, diff, log_prob, resp, lse


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def em_statistics(X, means, prec_chol, log_norm, log_prior):
    """One fused E-step and sufficient-statistics pass.

    Returns per-chunk partial sums (float64), to be summed over axis 0:
    ``loglik`` (C,) sum of log p(x); ``nk`` (C, K) sum of responsibilities;
    ``s1`` (C, K, D) sum of r * (x - mean_k); ``s2`` (C, K, D, D) upper
    triangle of sum of r * (x - mean_k)(x - mean_k)^T. Statistics are taken
    about the current means, which keeps them well conditioned.
    """
    N, D = X.shape
    K = means.shape[0]
    n_chunks = (N + CHUNK - 1) // CHUNK
    loglik = np.zeros(n_chunks)
    nk = np.zeros((n_chunks, K))
    s1 = np.zeros((n_chunks, K, D))
    s2 = np.zeros((n_chunks, K, D, D))
    for c in prange(n_chunks):
        xb, diff, log_prob, resp, lse = _alloc_block(X, K)
        stop = min(N, (c + 1) * CHUNK)
        for start in range(c * CHUNK, stop, BLOCK):
            nb = min(BLOCK, stop - start)
            _block_log_prob(X, start, nb, means, prec_chol, log_norm, log_prior, xb, diff, log_prob)
            _block_posteriors(nb, K, log_prob, resp, lse)
            total = 0.0
            for i in range(nb):
                total += lse[i]
            loglik[c] += total
            for k in range(K):
                total = 0.0
                for i in range(nb):
                    total += resp[k, i]
                nk[c, k] += total
                for a in range(D):
                    total = 0.0
                    for i in range(nb):
                        xb[a, i] = resp[k, i] * diff[k, a, i]
                        total += xb[a, i]
                    s1[c, k, a] += total
                    for b in range(a, D):
                        total = 0.0
                        for i in range(nb):
                            total += xb[a, i] * diff[k, b, i]
                        s2[c, k, a, b] += total
    return loglik, nk, s1, s2


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def predict_labels(X, means, prec_chol, log_norm, log_prior, labels, confidence):
    """Write the argmax component into ``labels`` (N,) int32 and its posterior into ``confidence`` (N,) float32."""
    N = X.shape[0]
    K = means.shape[0]
    n_chunks = (N + CHUNK - 1) // CHUNK
    for c in prange(n_chunks):
        xb, diff, log_prob, resp, lse = _alloc_block(X, K)
        stop = min(N, (c + 1) * CHUNK)
        for start in range(c * CHUNK, stop, BLOCK):
            nb = min(BLOCK, stop - start)
            _block_log_prob(X, start, nb, means, prec_chol, log_norm, log_prior, xb, diff, log_prob)
            _block_posteriors(nb, K, log_prob, resp, lse)
            for i in range(nb):
                best = 0
                for k in range(1, K):
                    if log_prob[k, i] > log_prob[best, i]:
                        best = k
                labels[start + i] = best
                confidence[start + i] = resp[best, i]


@njit(parallel=True, cache=True, fastmath=FASTMATH)
def posteriors(X, means, prec_chol, log_norm, log_prior, resp_out, lse_out):
    """Write posteriors into ``resp_out`` (N, K) and log p(x) into ``lse_out`` (N,), both float64.

    ``resp_out`` may have zero rows to skip the posteriors.
    """
    N = X.shape[0]
    K = means.shape[0]
    n_chunks = (N + CHUNK - 1) // CHUNK
    write_resp = resp_out.shape[0] > 0
    for c in prange(n_chunks):
        xb, diff, log_prob, resp, lse = _alloc_block(X, K)
        stop = min(N, (c + 1) * CHUNK)
        for start in range(c * CHUNK, stop, BLOCK):
            nb = min(BLOCK, stop - start)
            _block_log_prob(X, start, nb, means, prec_chol, log_norm, log_prior, xb, diff, log_prob)
            _block_posteriors(nb, K, log_prob, resp, lse)
            for i in range(nb):
                lse_out[start + i] = lse[i]
            if write_resp:
                for i in range(nb):
                    for k in range(K):
                        resp_out[start + i, k] = resp[k, i]
