"""Pixels per second of exact EM with the E-step on 1 and 2 Dask worker processes.

Synthetic colour-and-position features (float32, D = 5) of ``--pixels``
pixels in ``--chunks`` chunks, K = 8, a fixed number of EM iterations from
the same start (tol = 0). Prints, for the in-memory fit and for each worker
count, the time per iteration and pixels per second (pixels x iterations /
time), and the largest relative difference of the means from the in-memory fit.

    python scripts/bench_distributed_fit.py --pixels 4000000 --iterations 5
"""

from __future__ import annotations

import argparse
import time
import warnings

import dask
import numpy as np
from distributed import Client, LocalCluster

from segment.gmm import ConvergenceWarning, GaussianMixture
from segment.gmm.streaming import fit_dask

K, D = 8, 5


def features(n_pixels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 100, size=(K, D))
    return (centres[rng.integers(K, size=n_pixels)] + rng.normal(scale=6.0, size=(n_pixels, D))).astype(np.float32)


def model(X: np.ndarray, iterations: int) -> GaussianMixture:
    start = GaussianMixture(K, random_state=0).initial_parameters(X[:50_000], np.random.default_rng(0))
    return GaussianMixture(
        K, max_iter=iterations, tol=0, random_state=0,
        weights_init=start.weights, means_init=start.means, precisions_init=np.linalg.inv(start.covariances),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=4_000_000)
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    X = features(args.pixels)
    warnings.simplefilter("ignore", ConvergenceWarning)
    model(X, 1).fit(X[:10_000])  # compile
    started = time.perf_counter()
    reference = model(X, args.iterations).fit(X)
    elapsed = time.perf_counter() - started
    print(f"in memory : {elapsed / args.iterations:.3f} s/iteration, {args.pixels * args.iterations / elapsed / 1e6:.1f} Mpixel/s")
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cluster:
            with Client(cluster) as client:
                chunks = client.persist([dask.delayed(np.asarray)(part) for part in np.array_split(X, args.chunks)])
                fit_dask(model(X, 1), chunks, client)  # compile on the workers, chunks in place
                started = time.perf_counter()
                fitted = fit_dask(model(X, args.iterations), chunks, client)
                elapsed = time.perf_counter() - started
        difference = np.max(np.abs(fitted.means_ - reference.means_) / np.abs(reference.means_))
        print(
            f"{workers} worker{'s' if workers > 1 else ' '}: {elapsed / args.iterations:.3f} s/iteration, "
            f"{args.pixels * args.iterations / elapsed / 1e6:.1f} Mpixel/s, means differ by {difference:.1e}"
        )


if __name__ == "__main__":
    main()
