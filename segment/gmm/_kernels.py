"""Numba kernels of the Gaussian mixture: E-step statistics, labelling, densities.

Every kernel takes the model as arrays of the feature dtype:

- ``X``: (N, D) float32 or float64, C-contiguous features.
- ``means``: (K, D) component means.
- ``prec_chol``: (K, D, D) upper-triangular Cholesky factors P_k of the
  precisions (P_k P_k^T = Sigma_k^-1), whatever the covariance type.
- ``log_norm``: (K,) log(weight_k) + log det(P_k) - D/2 log(2 pi).
- ``log_prior``: (N, K) float32 extra log-prior per pixel (the smoothing
  prior), or a (0, K) array for none.
- ``sample_weight``: (N,) per-pixel weights of X's dtype multiplying the
  pixel's statistics and log-likelihood (a pixel of weight 3 counts as three
  copies), or a (0,) array for unit weights.

Pixels are processed in blocks of ``BLOCK``, transposed to (D, BLOCK), so that
every inner loop runs over contiguous pixels without branches and the compiler
vectorises it; all arithmetic stays in the feature dtype (float32 constants
included, and a polynomial exp instead of the scalar libm call), and block sums
are added to float64 accumulators. Blocks are grouped in chunks of ``CHUNK``
pixels, and threads take contiguous runs of chunks (:mod:`segment.threads`).
The chunk size does not depend on the number of threads, and partial sums are
returned per chunk and reduced in a fixed order, so a fit is bit-identical
whatever the thread count. Kernels do not validate inputs.

For the feature counts in ``UNROLLED`` the per-pixel work (transposition,
Mahalanobis distance, sufficient statistics) is generated as straight-line
code for that D: every mean, precision entry, difference and partial sum is
its own scalar, so the compiler keeps them in vector registers and computes a
block of pixels with one pass per component instead of one pass per matrix
entry. These kernels are generated and compiled (or loaded from Numba's
cache) on the first call for a given D and dtype, so a process pays only for
the D it uses. Other D use the generic kernels, whose loops run over arrays
(about 1.4x slower for float32 at D = 5, as fast for float64): each D
generated costs seconds of compilation, so only the common counts are.
"""

import functools
import math
import types as pytypes

import numpy as np
from numba import njit, types
from numba.extending import overload

from segment import threads

# No nnan/ninf: log-likelihoods are legitimately -inf.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
BLOCK = 256
CHUNK = 8192
# A component whose log-probability is this far below the best one for every
# pixel of a block gets zero posteriors there: log(machine epsilon) - 4 of the
# features' dtype (-19.9 for float32, -40 for float64), so its posterior would
# not change the sum of posteriors in that precision and float64 EM stays
# exactly monotone. Blocks of neighbouring pixels usually have only a few
# components within reach, so this saves much of the exp and statistics work.
NEGLIGIBLE_BELOW_EPS = -4.0
# Largest log2 of a product of per-pixel sums that float64 holds (2^1023 max).
_LOG2_PRODUCT_LIMIT = 1000.0
# Feature counts with generated kernels: a colour image (3 colour features, or
# grey with x and y) and a colour image with x and y (5), the defaults.
UNROLLED = (3, 5)


def _exp_accumulate(values, shift, total, nb, bits):
    """Replace ``values[:nb]`` by ``exp(values - shift)`` and add it to ``total`` (compiled per dtype below)."""
    raise NotImplementedError("only callable from jitted code")


@overload(_exp_accumulate, jit_options={"fastmath": FASTMATH})
def _exp_accumulate_impl(values, shift, total, nb, bits):
    if values.dtype == types.float64:

        def exp_float64(values, shift, total, nb, bits):
            for i in range(nb):
                values[i] = math.exp(values[i] - shift[i])
                total[i] += values[i]

        return exp_float64

    def exp_float32(values, shift, total, nb, bits):
        # libm's expf is a scalar call; this is Cephes' range reduction and
        # minimax polynomial (relative error ~1e-7), with 2^n built from its
        # exponent bits so that the loop vectorises. Arguments are <= 0 and
        # clamped at -87, where exp already underflows float32's normal range.
        scale = bits.view(np.float32)
        for i in range(nb):
            x = max(values[i] - shift[i], np.float32(-87.0))
            n = np.floor(x * np.float32(1.44269504) + np.float32(0.5))
            f = x - n * np.float32(0.693359375) + n * np.float32(2.12194440e-4)
            p = np.float32(1.9875691500e-4)
            p = p * f + np.float32(1.3981999507e-3)
            p = p * f + np.float32(8.3334519073e-3)
            p = p * f + np.float32(4.1665795894e-2)
            p = p * f + np.float32(1.6666665459e-1)
            p = p * f + np.float32(5.0000001201e-1)
            values[i] = p * f * f + f + np.float32(1.0)
            bits[i] = np.int32((n + np.float32(127.0)) * np.float32(8388608.0))
        for i in range(nb):
            values[i] *= scale[i]
            total[i] += values[i]

    return exp_float32


# The generic kernels' helpers are inlined into them. Called instead, a kernel compiled in
# this process and the same kernel loaded from the cache rounded differently (found with
# "reassoc"; without it they agreed), so the first run after installing fitted other numbers
# than every later one (tests/test_kernels.py).
@njit(cache=True, fastmath=FASTMATH, inline="always")
def _alloc_block(dtype, D, K):
    """Per-thread work arrays of one block; see the helpers for their roles (``vec`` rows: y or peak, total)."""
    xb = np.empty((D, BLOCK), dtype=dtype)
    dk = np.empty((D, BLOCK), dtype=dtype)
    log_prob = np.empty((K, BLOCK), dtype=dtype)
    vec = np.empty((3, BLOCK), dtype=dtype)
    bits = np.empty(BLOCK, dtype=np.int32)
    best = np.empty(BLOCK, dtype=np.int32)
    active = np.empty(K, dtype=np.bool_)
    return xb, dk, log_prob, vec, bits, best, active


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _load_block(X, start, nb, xb):
    """Copy ``X[start:start + nb]`` transposed into ``xb[:, :nb]``."""
    for i in range(nb):
        for d in range(X.shape[1]):
            xb[d, i] = X[start + i, d]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _block_log_prob(xb, nb, means, prec_chol, log_norm, log_prior, start, dk, y, log_prob):
    """Fill ``log_prob[k, :nb]`` with log(weight_k N(x | mean_k, Sigma_k)) + log-prior.

    The pixels are ``xb[:, :nb]`` (transposed), the first one being pixel
    ``start`` of ``log_prior``. With d = x - mean_k and P = prec_chol[k], the
    Mahalanobis distance is |y|^2 with y_c = sum_{r <= c} d_r P[r, c]; the
    pass that computes d_c (kept in ``dk`` (D, BLOCK)) also finishes column c
    (adds its last term and the square). ``y`` (BLOCK,) is scratch.
    """
    K, D = means.shape
    half = log_prob.dtype.type(0.5)
    for k in range(K):
        for c in range(D):
            if c > 0:
                p = prec_chol[k, 0, c]
                for i in range(nb):
                    y[i] = dk[0, i] * p
                for r in range(1, c):
                    p = prec_chol[k, r, c]
                    for i in range(nb):
                        y[i] += dk[r, i] * p
            else:
                for i in range(nb):
                    y[i] = 0.0
                    log_prob[k, i] = 0.0
            mu = means[k, c]
            p = prec_chol[k, c, c]
            for i in range(nb):
                d = xb[c, i] - mu
                dk[c, i] = d
                t = y[i] + d * p
                log_prob[k, i] += t * t
        ln = log_norm[k]
        for i in range(nb):
            log_prob[k, i] = ln - half * log_prob[k, i]
        if log_prior.shape[0] > 0:
            for i in range(nb):
                log_prob[k, i] += log_prior[start + i, k]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _block_posteriors(nb, log_prob, peak, total, bits, active):
    """Turn ``log_prob[:, :nb]`` into unnormalised posteriors exp(log_prob - peak).

    Writes ``peak`` (the largest log-probability) and ``total`` (the sum of
    the unnormalised posteriors, in [1, K]): log p(x) = peak + log(total).
    ``active[k]`` is False where component k is negligible for the whole
    block; its posteriors are then exactly 0.
    """
    K = log_prob.shape[0]
    negligible = math.log(np.finfo(log_prob.dtype).eps) + NEGLIGIBLE_BELOW_EPS
    for i in range(nb):
        peak[i] = log_prob[0, i]
        total[i] = 0.0
    for k in range(1, K):
        for i in range(nb):
            value = log_prob[k, i]
            peak[i] = value if value > peak[i] else peak[i]
    for k in range(K):
        near = 0
        for i in range(nb):
            near += log_prob[k, i] - peak[i] > negligible
        active[k] = near > 0
        if active[k]:
            _exp_accumulate(log_prob[k], peak, total, nb, bits)
        else:
            log_prob[k, :nb] = 0.0


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _block_argmax(nb, log_prob, best):
    """Write into ``best`` the most probable component of each pixel (the first one on ties)."""
    for i in range(nb):
        peak = log_prob[0, i]
        choice = 0
        for k in range(1, log_prob.shape[0]):
            if log_prob[k, i] > peak:
                peak = log_prob[k, i]
                choice = k
        best[i] = choice


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _block_log_likelihood(nb, peak, total, group, sample_weight, start):
    """Sum of (weighted) log p(x) = peak + log(total) over a block, in float64.

    Without weights the logs of ``group`` totals are taken as one log of
    their product, which cannot overflow float64 (see
    :func:`_product_group`), to spare the per-pixel scalar log. Pixels of
    weight 0 add nothing, even where their log p(x) is -inf.
    """
    result = 0.0
    if sample_weight.shape[0] > 0:
        for i in range(nb):
            w = sample_weight[start + i]
            if w != 0:
                result += float(w) * (float(peak[i]) + math.log(float(total[i])))
        return result
    for i in range(nb):
        result += peak[i]
    for first in range(0, nb, group):
        product = 1.0
        for i in range(first, min(nb, first + group)):
            product *= total[i]
        result += math.log(product)
    return result


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _block_scale(nb, total, sample_weight, start):
    """Replace the posteriors' sums ``total`` by weight / total: the factor that turns them into weighted responsibilities."""
    one = total.dtype.type(1.0)
    if sample_weight.shape[0] > 0:
        for i in range(nb):
            total[i] = sample_weight[start + i] / total[i]
    else:
        for i in range(nb):
            total[i] = one / total[i]


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _product_group(K):
    """Number of per-pixel totals (each at most ``K``) whose product fits in float64."""
    return max(1, int(_LOG2_PRODUCT_LIMIT / math.log2(K + 1)))


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _block_statistics(xb, nb, means, resp, scale, active, w, nk, s1, s2):
    """Add one block's sufficient statistics to ``nk`` (K,), ``s1`` (K, D), ``s2`` (K, D, D).

    ``resp[:, :nb]`` holds the unnormalised posteriors of the pixels
    ``xb[:, :nb]`` and ``scale`` the factor (weight / sum of posteriors) that
    makes them weighted responsibilities, applied to ``resp`` in place;
    ``w`` (D, BLOCK) is scratch. Sums over
    the block are taken in the feature dtype, then added to the float64
    arrays. Components that are not ``active`` in the block are skipped.
    """
    K, D = means.shape
    zero = resp.dtype.type(0.0)
    for k in range(K):
        if not active[k]:
            continue
        acc = zero
        for i in range(nb):
            resp[k, i] *= scale[i]
            acc += resp[k, i]
        nk[k] += acc
        for a in range(D):
            mu = means[k, a]
            acc = zero
            for i in range(nb):
                v = resp[k, i] * (xb[a, i] - mu)
                w[a, i] = v
                acc += v
            s1[k, a] += acc
        for b in range(D):
            mu = means[k, b]
            for a in range(b + 1):
                acc = zero
                for i in range(nb):
                    acc += w[a, i] * (xb[b, i] - mu)
                s2[k, a, b] += acc


# Kernels. Their source is compiled once per D (see _kernels_for) so that
# each D gets its own block helpers and its own entries in Numba's cache:
# ``load_block``, ``block_log_prob`` and ``block_statistics`` are the generic
# helpers above or the generated ones, with the same arguments. The suffix
# in the names keeps the cache entries of different D apart.

_KERNELS_SOURCE = '''
def em_statistics_{suffix}(X, means, prec_chol, log_norm, log_prior, sample_weight, loglik, nk, s1, s2, first, last):
    N, D = X.shape
    K = means.shape[0]
    group = _product_group(K)
    xb, dk, log_prob, vec, bits, best, active = _alloc_block(X.dtype, D, K)
    for c in range(first, last):
        stop = min(N, (c + 1) * CHUNK)
        for start in range(c * CHUNK, stop, BLOCK):
            nb = min(BLOCK, stop - start)
            load_block(X, start, nb, xb)
            block_log_prob(xb, nb, means, prec_chol, log_norm, log_prior, start, dk, vec[0], log_prob)
            _block_posteriors(nb, log_prob, vec[0], vec[1], bits, active)
            loglik[c] += _block_log_likelihood(nb, vec[0], vec[1], group, sample_weight, start)
            _block_scale(nb, vec[1], sample_weight, start)
            block_statistics(xb, nb, means, log_prob, vec[1], active, dk, nk[c], s1[c], s2[c])


def predict_labels_{suffix}(X, means, prec_chol, log_norm, log_prior, labels, confidence, first, last):
    N, D = X.shape
    K = means.shape[0]
    xb, dk, log_prob, vec, bits, best, active = _alloc_block(X.dtype, D, K)
    for c in range(first, last):
        stop = min(N, (c + 1) * CHUNK)
        for start in range(c * CHUNK, stop, BLOCK):
            nb = min(BLOCK, stop - start)
            load_block(X, start, nb, xb)
            block_log_prob(xb, nb, means, prec_chol, log_norm, log_prior, start, dk, vec[0], log_prob)
            _block_argmax(nb, log_prob, best)
            _block_posteriors(nb, log_prob, vec[0], vec[1], bits, active)
            for i in range(nb):
                labels[start + i] = best[i]
                confidence[start + i] = 1.0 / vec[1, i]


def posteriors_{suffix}(X, means, prec_chol, log_norm, log_prior, resp_out, lse_out, first, last):
    N, D = X.shape
    K = means.shape[0]
    write_resp = resp_out.shape[0] > 0
    xb, dk, log_prob, vec, bits, best, active = _alloc_block(X.dtype, D, K)
    for c in range(first, last):
        stop = min(N, (c + 1) * CHUNK)
        for start in range(c * CHUNK, stop, BLOCK):
            nb = min(BLOCK, stop - start)
            load_block(X, start, nb, xb)
            block_log_prob(xb, nb, means, prec_chol, log_norm, log_prior, start, dk, vec[0], log_prob)
            _block_posteriors(nb, log_prob, vec[0], vec[1], bits, active)
            for i in range(nb):
                lse_out[start + i] = vec[0, i] + math.log(vec[1, i])
            if write_resp:
                for i in range(nb):
                    for k in range(K):
                        resp_out[start + i, k] = log_prob[k, i] / vec[1, i]


def weighted_log_prob_{suffix}(X, means, prec_chol, log_norm, log_prior, out, first, last):
    N, D = X.shape
    K = means.shape[0]
    xb, dk, log_prob, vec, bits, best, active = _alloc_block(X.dtype, D, K)
    for c in range(first, last):
        stop = min(N, (c + 1) * CHUNK)
        for start in range(c * CHUNK, stop, BLOCK):
            nb = min(BLOCK, stop - start)
            load_block(X, start, nb, xb)
            block_log_prob(xb, nb, means, prec_chol, log_norm, log_prior, start, dk, vec[0], log_prob)
            for i in range(nb):
                for k in range(K):
                    out[start + i, k] = log_prob[k, i]
'''


def _unrolled_helpers_source(D):
    """Source of ``load_block``, ``block_log_prob`` and ``block_statistics`` for D features.

    The same computations as :func:`_load_block`, :func:`_block_log_prob`
    and :func:`_block_statistics`, with every loop over features written out
    (``dk``, ``y`` and ``w`` are unused: the values live in scalars).
    """
    features = range(D)
    upper = [(r, c) for c in features for r in range(c + 1)]

    def lines(template, pairs, indent):
        return "\n".join(" " * indent + template.format(a=a, b=b) for a, b in pairs)

    each = [(a, None) for a in features]
    # y_c = sum_{r <= c} d_r P[r, c], and the squared distance |y|^2.
    columns = "\n".join(f"            y{c} = " + " + ".join(f"d{r} * p{r}_{c}" for r in range(c + 1)) for c in features)
    squares = " + ".join(f"y{c} * y{c}" for c in features)
    return f'''
def load_block(X, start, nb, xb):
    for i in range(nb):
{lines("xb[{a}, i] = X[start + i, {a}]", each, 8)}


def block_log_prob(xb, nb, means, prec_chol, log_norm, log_prior, start, dk, y, log_prob):
    half = log_prob.dtype.type(0.5)
    for k in range(means.shape[0]):
{lines("m{a} = means[k, {a}]", each, 8)}
{lines("p{a}_{b} = prec_chol[k, {a}, {b}]", upper, 8)}
        ln = log_norm[k]
        for i in range(nb):
{lines("d{a} = xb[{a}, i] - m{a}", each, 12)}
{columns}
            log_prob[k, i] = ln - half * ({squares})
        if log_prior.shape[0] > 0:
            for i in range(nb):
                log_prob[k, i] += log_prior[start + i, k]


def block_statistics(xb, nb, means, resp, scale, active, w, nk, s1, s2):
    zero = resp.dtype.type(0.0)
    for k in range(means.shape[0]):
        if not active[k]:
            continue
{lines("m{a} = means[k, {a}]", each, 8)}
        n = zero
{lines("f{a} = zero", each, 8)}
{lines("g{a}_{b} = zero", upper, 8)}
        for i in range(nb):
            r = resp[k, i] * scale[i]
            n += r
{lines("d{a} = xb[{a}, i] - m{a}", each, 12)}
{lines("w{a} = r * d{a}", each, 12)}
{lines("f{a} += w{a}", each, 12)}
{lines("g{a}_{b} += w{a} * d{b}", upper, 12)}
        nk[k] += n
{lines("s1[k, {a}] += f{a}", each, 8)}
{lines("s2[k, {a}, {b}] += g{a}_{b}", upper, 8)}
'''


KERNEL_NAMES = ("em_statistics", "predict_labels", "posteriors", "weighted_log_prob")


@functools.cache
def _kernels_for(D):
    """The kernels for D features, compiled lazily (on first call per dtype) and cached on disk."""
    # Compiled under this file's name: Numba caches only functions with a
    # source file, and invalidates their entries when that file changes.
    namespace = dict(globals())
    if D in UNROLLED:
        suffix = f"d{D}"
        helpers = njit(fastmath=FASTMATH)
        exec(compile(_unrolled_helpers_source(D), __file__, "exec"), namespace)
        for name in ("load_block", "block_log_prob", "block_statistics"):
            namespace[name] = helpers(namespace[name])
    else:
        suffix = "generic"
        namespace.update(load_block=_load_block, block_log_prob=_block_log_prob, block_statistics=_block_statistics)
    exec(compile(_KERNELS_SOURCE.format(suffix=suffix), __file__, "exec"), namespace)
    kernel = njit(nogil=True, cache=True, fastmath=FASTMATH)
    return pytypes.SimpleNamespace(
        **{name: kernel(namespace[f"{name}_{suffix}"]) for name in KERNEL_NAMES}
    )


def _chunks(X):
    return (X.shape[0] + CHUNK - 1) // CHUNK


def em_statistics(X, means, prec_chol, log_norm, log_prior, sample_weight):
    """One fused E-step and sufficient-statistics pass.

    Returns per-chunk partial sums (float64), to be summed over axis 0:
    ``loglik`` (C,) sum of w log p(x); ``nk`` (C, K) sum of w * responsibilities;
    ``s1`` (C, K, D) sum of r * (x - mean_k); ``s2`` (C, K, D, D) upper
    triangle of sum of r * (x - mean_k)(x - mean_k)^T. Statistics are taken
    about the given means, which keeps them well conditioned.
    """
    (K, D), C = means.shape, _chunks(X)
    sums = np.zeros(C), np.zeros((C, K)), np.zeros((C, K, D)), np.zeros((C, K, D, D))
    kernel = _kernels_for(D).em_statistics
    threads.run_parts(kernel, C, X, means, prec_chol, log_norm, log_prior, sample_weight, *sums)
    return sums


def predict_labels(X, means, prec_chol, log_norm, log_prior, labels, confidence):
    """Write the argmax component into ``labels`` (N,) int32 and its posterior into ``confidence`` (N,) float32."""
    kernel = _kernels_for(X.shape[1]).predict_labels
    threads.run_parts(kernel, _chunks(X), X, means, prec_chol, log_norm, log_prior, labels, confidence)


def posteriors(X, means, prec_chol, log_norm, log_prior, resp_out, lse_out):
    """Write posteriors into ``resp_out`` (N, K) and log p(x) into ``lse_out`` (N,).

    Both float32 or float64 (the sums are exact in either). ``resp_out`` may
    have zero rows to skip the posteriors.
    """
    kernel = _kernels_for(X.shape[1]).posteriors
    threads.run_parts(kernel, _chunks(X), X, means, prec_chol, log_norm, log_prior, resp_out, lse_out)


def weighted_log_prob(X, means, prec_chol, log_norm, log_prior, out):
    """Write log(weight_k N(x | mean_k, Sigma_k)) + log-prior into ``out`` (N, K), of X's dtype."""
    kernel = _kernels_for(X.shape[1]).weighted_log_prob
    threads.run_parts(kernel, _chunks(X), X, means, prec_chol, log_norm, log_prior, out)
