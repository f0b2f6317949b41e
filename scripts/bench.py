"""Benchmark the EM fit against scikit-learn, and time segment_image and the CLI end to end.

In one run, on photos upscaled from a sample image (Lab colour + x, y, D = 5):

1. EM per iteration, K = 8 full covariance, from identical initial weights,
   means and precisions, tol = 0: ``segment.GaussianMixture`` (float32
   features) and ``sklearn.mixture.GaussianMixture`` on the same features, at
   each of ``--sizes`` megapixels. A fit of n iterations is timed against one
   of a single iteration, and the difference divided by n - 1, so that set-up
   and scikit-learn's final E-step are not counted. Also reported: the distance
   from the machine's arithmetic limit (~40 multiply-adds per pixel and
   component at ``--gflops``).
2. Labels of a fit on the default grid sample against a fit on every pixel,
   after matching the components (Hungarian assignment on the confusion
   matrix), both fits with default settings from the same initial parameters:
   the share of pixels that agree, for every photo in ``sample_images/`` and
   for the 12-megapixel photo at several sample sizes, with the fit time.
3. ``segment_image`` with default settings on the 12-megapixel photo: warm
   (in this process, after one call) and cold (a fresh process, Numba cache
   warm), with the peak resident memory of the cold process; the same for the
   plain per-pixel mixture (no smoothing, region merging or relabelling); and
   the default with its spatial steps at full resolution instead of on a
   working copy (``work_pixels=0``), with the Rand index between the two.
4. ``segment image`` (the CLI) on a 0.5-megapixel photo in a fresh process with
   a warm Numba cache.

With ``--histogram``, only this: the fit stage on a synthetic 16-bit greyscale
12-megapixel scan (the photo in grey, upscaled, with read and shot noise),
colour features only (``position_weight=0``), K = 8: the pipeline's histogram
fit (exact EM over every pixel, weighted by the counts of the distinct values)
against the fit of the default grid sample, side by side: seconds (median of
``--repeats``), the mean log-likelihood of all pixels under each model, and
the adjusted Rand index between the two label maps of all pixels. For scale,
also EM on the features of every pixel in memory from the histogram fit's
start (timed once), and how far its means are from the histogram fit's.

Prints a markdown table with medians and writes the same figures as JSON::

    python scripts/bench.py --json bench.json
    python scripts/bench.py --sizes 1 4 --repeats 3 --skip-sklearn-above 4
    python scripts/bench.py --histogram
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from segment import SegmentConfig, features, segment_image  # noqa: E402
from segment.gmm import GaussianMixture  # noqa: E402
from segment.gmm.init import kmeans_plusplus  # noqa: E402
from segment.metrics import rand_index  # noqa: E402
from segment import sampling, threads  # noqa: E402

N_COMPONENTS = 8
REG_COVAR = 1e-3
# Multiply-adds per pixel and component of one EM iteration for D = 5: the
# triangular solve (15), the exp (~10) and the sufficient statistics (21).
MADDS_PER_PIXEL_COMPONENT = 40
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def photo(source: np.ndarray, megapixels: float) -> np.ndarray:
    """``source`` resized (bicubic) to a 4:3 RGB photo of about ``megapixels``."""
    side = np.sqrt(megapixels * 1e6 / 12)
    return cv2.resize(source, (int(round(4 * side)), int(round(3 * side))), interpolation=cv2.INTER_CUBIC)


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"error: {path}: cannot read image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def initial_parameters(X: np.ndarray, n_components: int, reg_covar: float, seed: int) -> dict[str, np.ndarray]:
    """Weights, means and precisions from k-means++ means and one hard assignment, float64."""
    rng = np.random.default_rng(seed)
    sample = X[rng.choice(len(X), size=min(len(X), 50_000), replace=False)].astype(np.float64)
    means = kmeans_plusplus(sample, n_components, rng)
    nearest = ((sample[:, None, :] - means[None]) ** 2).sum(axis=2).argmin(axis=1)
    weights = np.bincount(nearest, minlength=n_components) + 1.0
    eye = np.eye(X.shape[1])
    precisions = np.stack(
        [np.linalg.inv(np.cov(sample[nearest == k].T) + reg_covar * eye) if (nearest == k).sum() > X.shape[1] else eye
         for k in range(n_components)]
    )
    return dict(weights_init=weights / weights.sum(), means_init=means, precisions_init=precisions)


def time_fit(make, X: np.ndarray, n_iter: int, repeats: int) -> float:
    """Median seconds per EM iteration: (fit(n_iter) - fit(1)) / (n_iter - 1)."""
    per_iteration = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neither converges with tol=0
        make(1).fit(X[: 4 * N_COMPONENTS * 1000])  # compile / import outside the clock
        for _ in range(repeats):
            times = {}
            for n in (1, n_iter):
                start = time.perf_counter()
                make(n).fit(X)
                times[n] = time.perf_counter() - start
            per_iteration.append(max(times[n_iter] - times[1], 0.0) / (n_iter - 1))
    return statistics.median(per_iteration)


def bench_em(source: np.ndarray, args: argparse.Namespace) -> list[dict]:
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    rows = []
    for megapixels in args.sizes:
        X = features.pixel_features(photo(source, megapixels), "lab", 0.5)
        init = initial_parameters(X, N_COMPONENTS, REG_COVAR, seed=0)
        common = dict(covariance_type="full", tol=0.0, reg_covar=REG_COVAR, **init)
        ours = time_fit(lambda n: GaussianMixture(N_COMPONENTS, max_iter=n, **common), X, args.iterations, args.repeats)
        row = {
            "megapixels": round(len(X) / 1e6, 2),
            "ours_ms_per_mp_iter": 1e3 * ours / (len(X) / 1e6),
            "sklearn_ms_per_mp_iter": None,
            "ratio": None,
        }
        if megapixels <= args.skip_sklearn_above:
            theirs = time_fit(
                lambda n: SkGaussianMixture(N_COMPONENTS, max_iter=n, **common), X, args.sklearn_iterations, args.repeats
            )
            row["sklearn_ms_per_mp_iter"] = 1e3 * theirs / (len(X) / 1e6)
            row["ratio"] = theirs / ours
        limit_s_per_mp = 1e6 * N_COMPONENTS * MADDS_PER_PIXEL_COMPONENT * 2 / (args.gflops * 1e9)
        row["limit_ms_per_mp_iter"] = 1e3 * limit_s_per_mp
        row["times_the_limit"] = row["ours_ms_per_mp_iter"] / row["limit_ms_per_mp_iter"]
        rows.append(row)
        print(f"# EM {row['megapixels']} MP: {row}", file=sys.stderr)
        del X
    return rows


def matched_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixels with the same label after the best one-to-one matching of label ids."""
    from scipy.optimize import linear_sum_assignment

    ids_a, inverse_a = np.unique(a, return_inverse=True)
    ids_b, inverse_b = np.unique(b, return_inverse=True)
    confusion = np.zeros((len(ids_a), len(ids_b)), dtype=np.int64)
    np.add.at(confusion, (inverse_a.ravel(), inverse_b.ravel()), 1)
    rows, cols = linear_sum_assignment(-confusion)
    return float(confusion[rows, cols].sum() / a.size)


def sample_fit_agreement(image: np.ndarray, fit_sample: int) -> tuple[float, float]:
    """Agreement of the labels of a fit on a grid sample with those of a fit on every pixel, and its seconds.

    Both fits use the default settings and start from the same parameters, so
    that only the data differ (not the local optimum that EM lands in).
    """
    cfg = SegmentConfig()
    X = features.pixel_features(image, cfg.color_space, cfg.position_weight)
    init = initial_parameters(X, cfg.n_components, cfg.reg_covar, seed=cfg.seed)
    settings = dict(covariance_type=cfg.covariance_type, tol=cfg.tol, reg_covar=cfg.reg_covar, max_iter=cfg.max_iter, **init)
    rows = sampling.fit_sample(image.shape[:2], None, fit_sample, np.random.default_rng(cfg.seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        sampled = GaussianMixture(cfg.n_components, **settings).fit(X[rows])
        seconds = time.perf_counter() - start
        full = GaussianMixture(cfg.n_components, **settings).fit(X)
    return matched_agreement(sampled.label(X)[0], full.label(X)[0]), seconds


def bench_sample_agreement(big: np.ndarray, args: argparse.Namespace) -> dict:
    """Fits on the default grid sample against fits on all pixels (mixture labels, no post-processing)."""
    default = SegmentConfig().fit_sample
    photos = {}
    for path in sorted((ROOT / "sample_images").iterdir()):
        if path.suffix.lower() not in PHOTO_EXTENSIONS or path.stem.endswith("_truth"):
            continue
        image = read_rgb(path)
        photos[path.name] = {
            "megapixels": round(image.shape[0] * image.shape[1] / 1e6, 3),
            "agreement": sample_fit_agreement(image, default)[0],
        }
    sweep = {}
    for size in args.sample_sizes:
        agreement, seconds = sample_fit_agreement(big, size)
        sweep[str(size)] = {"fit_s": seconds, "agreement": agreement}
    print(f"# sample agreement: {photos} {sweep}", file=sys.stderr)
    return {"photos": photos, "sweep_megapixels": round(big.shape[0] * big.shape[1] / 1e6, 2), "sweep": sweep}


# Prepended to every child: report the peak resident memory of the process's
# own address space (VmHWM), which, unlike ru_maxrss, does not inherit the
# parent's peak across fork and exec.
PEAK_RSS_PRELUDE = (
    "import atexit, sys; atexit.register(lambda: sys.stderr.write("
    "'peak_rss_kib ' + [line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0]))\n"
)


def peak_rss_mib(stderr: str) -> float:
    """The peak RSS that :data:`PEAK_RSS_PRELUDE` wrote at the end of a child's ``stderr``, in MiB."""
    return int(stderr.rsplit("peak_rss_kib ", 1)[1].split()[0]) / 1024


# The per-pixel mixture alone: what the EM and labelling kernels cost end to end.
PLAIN_MIXTURE = {"smoothing": 0.0, "merge_cost": 0.0, "min_fraction": 0.0, "relabel": False}


def scan16(source: np.ndarray, megapixels: float, seed: int = 0) -> np.ndarray:
    """A 16-bit greyscale scan of about ``megapixels`` made from an RGB photo: read noise and shot noise added."""
    grey = cv2.cvtColor(photo(source, megapixels), cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(257)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(grey.shape, dtype=np.float32) * (np.float32(120) + np.sqrt(np.float32(30) * grey))
    return np.clip(np.round(grey + noise), 0, 65535).astype(np.uint16)


def bench_histogram(source: np.ndarray, args: argparse.Namespace) -> dict:
    """Histogram fit against sample fit on a 16-bit greyscale scan (fit stage, all pixels labelled by each)."""
    from sklearn.metrics import adjusted_rand_score

    from segment.histogram import feature_histogram
    from segment.pipeline import fit_image_model, fit_model

    image = scan16(source, args.histogram_megapixels)
    cfg = SegmentConfig(position_weight=0.0)
    spec = features.FeatureSpec.for_image(image, cfg.color_space, cfg.position_weight)

    def sample_fit() -> GaussianMixture:
        flat = sampling.fit_sample(spec.shape, None, cfg.fit_sample, np.random.default_rng(cfg.seed))
        return fit_model(spec.pixel_features(image, flat), spec.n_colour, cfg)

    def histogram_fit() -> GaussianMixture:
        return fit_image_model(image, spec, None, cfg)

    warnings.simplefilter("ignore", UserWarning)
    fits, seconds = {}, {}
    for name, fit in (("sample", sample_fit), ("histogram", histogram_fit)):
        fit()  # compile
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            fits[name] = fit()
            times.append(time.perf_counter() - started)
        seconds[name] = statistics.median(times)
    histogram = feature_histogram(image, spec)
    every = spec.image_features(image)
    labels = {name: model.predict(every) for name, model in fits.items()}
    # The histogram fit's start (its initialisation draws from this generator) for EM on every row.
    start = fits["histogram"].initial_parameters(
        histogram.features, np.random.default_rng(cfg.seed), sample_weight=histogram.counts
    )

    def from_start() -> GaussianMixture:
        return GaussianMixture(
            fits["histogram"].n_components, tol=cfg.tol, reg_covar=cfg.reg_covar, max_iter=cfg.max_iter,
            weights_init=start.weights, means_init=start.means, precisions_init=np.linalg.inv(start.covariances),
        )

    started = time.perf_counter()
    from_start().fit(histogram.features, sample_weight=histogram.counts)
    seconds["histogram EM"] = time.perf_counter() - started
    exact = from_start()
    started = time.perf_counter()
    exact.fit(every)
    seconds["every pixel"] = time.perf_counter() - started
    exact.permute_components(np.lexsort(exact.means_.T[::-1]))
    fits["every pixel"] = exact
    return {
        "shape": list(image.shape),
        "dtype": str(image.dtype),
        "distinct_values": len(histogram),
        "fit_sample": cfg.fit_sample,
        "n_components": cfg.n_components,
        "seconds": seconds,
        "n_iter": {name: int(model.n_iter_) for name, model in fits.items()},
        "em_seconds_from_the_same_start": {"histogram": seconds.pop("histogram EM"), "every pixel": seconds["every pixel"]},
        "mean_log_likelihood": {
            name: float(np.dot(model.score_samples(histogram.features), histogram.counts) / histogram.n_pixels)
            for name, model in fits.items()
        },
        "adjusted_rand_index": float(adjusted_rand_score(labels["sample"], labels["histogram"])),
        "histogram_vs_every_pixel_means": float(
            np.max(np.abs(exact.means_ - fits["histogram"].means_) / np.abs(exact.means_))
        ),
    }


def histogram_markdown(result: dict) -> str:
    height, width = result["shape"]
    lines = [
        f"Fit stage on a {width} x {height} {result['dtype']} greyscale scan ({height * width / 1e6:.1f} MP, "
        f"{result['distinct_values']} distinct values), K = {result['n_components']}, position_weight = 0:",
        "",
        "| fit | seconds | EM iterations | mean log-likelihood of all pixels |",
        "|---|---:|---:|---:|",
    ]
    for name, label in (
        ("sample", f"grid sample of {result['fit_sample']:,} pixels"),
        ("histogram", "histogram (every pixel, weighted)"),
        ("every pixel", "every pixel in memory, from the histogram fit's start (once)"),
    ):
        lines.append(
            f"| {label} | {result['seconds'][name]:.3f} | {result['n_iter'][name]} | {result['mean_log_likelihood'][name]:.5f} |"
        )
    em = result["em_seconds_from_the_same_start"]
    lines += [
        "",
        f"EM alone from the histogram fit's start: {em['histogram']:.3f} s on the histogram, "
        f"{em['every pixel']:.3f} s on every pixel ({em['every pixel'] / em['histogram']:.0f} x).",
        "",
        f"Adjusted Rand index between the sample's and the histogram's label maps (all pixels): "
        f"{result['adjusted_rand_index']:.4f}; means of the histogram fit and of EM on every pixel differ by "
        f"{result['histogram_vs_every_pixel_means']:.1e} (relative).",
    ]
    return "\n".join(lines)


def run_child(code: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``python -c code`` in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_RSS_PRELUDE + code], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: child failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, peak_rss_mib(done.stderr)


def bench_end_to_end(big: np.ndarray, tmp: Path, args: argparse.Namespace) -> dict:
    path = tmp / "photo_12mp.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    segment_image(path)  # compile or load the kernels, fill the Numba cache
    warm = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = segment_image(path)
        warm.append(time.perf_counter() - start)
    cold = [run_child(f"import segment; segment.segment_image({str(path)!r})") for _ in range(args.repeats)]
    start = time.perf_counter()
    full_resolution = segment_image(path, work_pixels=0)
    full_resolution_s = time.perf_counter() - start
    plain = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        segment_image(path, **PLAIN_MIXTURE)
        plain.append(time.perf_counter() - start)
    plain_cold = [
        run_child(f"import segment; segment.segment_image({str(path)!r}, **{PLAIN_MIXTURE!r})") for _ in range(args.repeats)
    ]

    small = tmp / "photo_05mp.jpg"
    cv2.imwrite(str(small), cv2.cvtColor(photo(big, 0.5), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    argv = ["segment", "image", str(small), "-o", str(tmp / "out"), "-q"]
    cli = f"import runpy; sys.argv = {argv!r}; runpy.run_module('segment', run_name='__main__')"
    run_child(cli)  # warm the cache for exactly what the CLI compiles
    cli_runs = [run_child(cli) for _ in range(args.cli_repeats)]
    return {
        "megapixels": round(big.shape[0] * big.shape[1] / 1e6, 2),
        "warm_s": statistics.median(warm),
        "warm_stages_s": {k: round(v, 3) for k, v in result.timings.items()},
        "working_shape": list(result.working_shape) if result.working_shape else None,
        "full_resolution_warm_s": full_resolution_s,
        "full_resolution_rand_index": rand_index(result.labels, full_resolution.labels),
        "regions": result.n_labels,
        "full_resolution_regions": full_resolution.n_labels,
        "cold_process_s": statistics.median(w for w, _ in cold),
        "cold_peak_rss_mib": max(p for _, p in cold),
        "plain_warm_s": statistics.median(plain),
        "plain_cold_process_s": statistics.median(w for w, _ in plain_cold),
        "plain_cold_peak_rss_mib": max(p for _, p in plain_cold),
        "cli_0_5mp_cold_process_s": statistics.median(w for w, _ in cli_runs),
        "cli_peak_rss_mib": max(p for _, p in cli_runs),
    }


CONTENT_CHILD = """
import time, numpy as np, segment
image = np.load({path!r})
start = time.perf_counter()
result = segment.segment_image(image)
first = time.perf_counter() - start
start = time.perf_counter()
result = segment.segment_image(image)
print('seconds', time.perf_counter() - start, 'first', first, 'regions', result.n_labels)
"""


def bench_content(source: np.ndarray, tmp: Path, args: argparse.Namespace) -> list[dict]:
    """``segment_image`` (defaults) on the photo and on worst-case content of the same size, each in a fresh process.

    Each picture is segmented twice in its process: the second call's time is
    reported (the first also loads the cached kernels, about a second). A run
    that exceeds ``--content-timeout`` seconds is stopped and reported as such
    (seconds None). Peak RSS is the whole process's, imports included.
    """
    from content_images import content_set

    rows = []
    for megapixels in args.content_sizes:
        side = np.sqrt(megapixels * 1e6 / 12)
        shape = (int(round(3 * side)), int(round(4 * side)))
        for name, image in content_set(source, shape).items():
            path = tmp / "content.npy"
            np.save(path, image)
            del image
            code = PEAK_RSS_PRELUDE + CONTENT_CHILD.format(path=str(path))
            try:
                done = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=args.content_timeout
                )
            except subprocess.TimeoutExpired:
                rows.append({"megapixels": megapixels, "shape": list(shape), "content": name, "seconds": None})
                print(f"{megapixels} MP {name}: over {args.content_timeout} s", file=sys.stderr)
                continue
            if done.returncode != 0:
                raise SystemExit(f"error: content child failed ({done.returncode}): {done.stderr[-2000:]}")
            words = done.stdout.split()
            row = {
                "megapixels": megapixels,
                "shape": list(shape),
                "content": name,
                "seconds": float(words[words.index("seconds") + 1]),
                "first_call_seconds": float(words[words.index("first") + 1]),
                "regions": int(words[words.index("regions") + 1]),
                "peak_rss_mib": peak_rss_mib(done.stderr),
            }
            rows.append(row)
            print(f"{megapixels} MP {name}: {row['seconds']:.2f} s, {row['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    return rows


def content_markdown(rows: list[dict], timeout: float) -> list[str]:
    lines = [
        "",
        "Default settings on worst-case content, each picture the photo's size (second call in a fresh process):",
        "",
        "| megapixels | content | seconds | × photo | peak RSS (MiB) | × photo | regions |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    photo_rows = {row["megapixels"]: row for row in rows if row["content"] == "photo"}
    for row in rows:
        base = photo_rows.get(row["megapixels"])
        if row["seconds"] is None:
            lines.append(f"| {row['megapixels']} | {row['content']} | > {timeout:.0f} | | | | |")
            continue
        ratio = f"{row['seconds'] / base['seconds']:.2f}" if base and base["seconds"] else ""
        rss = f"{row['peak_rss_mib'] / base['peak_rss_mib']:.2f}" if base and base["seconds"] else ""
        lines.append(
            f"| {row['megapixels']} | {row['content']} | {row['seconds']:.2f} | {ratio} "
            f"| {row['peak_rss_mib']:.0f} | {rss} | {row['regions']} |"
        )
    return lines


def machine() -> dict:
    import numba
    import sklearn

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") if Path("/proc/cpuinfo").exists() else open(os.devnull) as handle:
        names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    return {
        "cpu": names[0] if names else cpu,
        "cores": os.cpu_count(),
        "kernel_threads": threads.available(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
    }


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Numba {m['numba']} ({m['kernel_threads']} kernel threads), "
        f"NumPy {m['numpy']}, scikit-learn {m['scikit-learn']}, Python {m['python']}.",
        "",
        f"EM per iteration, K = {N_COMPONENTS} full covariance, D = 5 (Lab + x, y), same initial parameters "
        f"(medians of {report['settings']['repeats']}):",
        "",
        "| megapixels | segment (ms / MP / iter) | scikit-learn (ms / MP / iter) | speed-up | × arithmetic limit |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in report["em"]:
        sk = f"{row['sklearn_ms_per_mp_iter']:.0f}" if row["sklearn_ms_per_mp_iter"] else "—"
        ratio = f"{row['ratio']:.0f}×" if row["ratio"] else "—"
        lines.append(
            f"| {row['megapixels']} | {row['ours_ms_per_mp_iter']:.1f} | {sk} | {ratio} | {row['times_the_limit']:.1f} |"
        )
    e2e = report.get("end_to_end")
    if e2e:
        lines += [
            "",
            "| end to end (default settings) | seconds | peak RSS (MiB) |",
            "|---|---:|---:|",
            f"| `segment_image`, {e2e['megapixels']} MP photo, warm | {e2e['warm_s']:.2f} | |",
            f"| `segment_image`, {e2e['megapixels']} MP photo, fresh process | {e2e['cold_process_s']:.2f} "
            f"| {e2e['cold_peak_rss_mib']:.0f} |",
            f"| plain mixture (no smoothing, merging, relabelling), {e2e['megapixels']} MP photo, warm "
            f"| {e2e['plain_warm_s']:.2f} | |",
            f"| plain mixture, {e2e['megapixels']} MP photo, fresh process | {e2e['plain_cold_process_s']:.2f} "
            f"| {e2e['plain_cold_peak_rss_mib']:.0f} |",
            f"| `segment image` CLI, 0.5 MP photo, fresh process (median of {report['settings']['cli_repeats']}) "
            f"| {e2e['cli_0_5mp_cold_process_s']:.2f} "
            f"| {e2e['cli_peak_rss_mib']:.0f} |",
            f"| default settings with the spatial steps at full resolution (`work_pixels=0`), "
            f"{e2e['megapixels']} MP photo, warm, once | {e2e['full_resolution_warm_s']:.2f} | |",
        ]
        working = e2e["working_shape"]
        copy = f"a {working[1]}×{working[0]} working copy" if working else "the full-resolution image"
        lines += [
            "",
            f"The default ran its spatial steps on {copy} ({e2e['regions']} regions); against the same settings "
            f"at full resolution ({e2e['full_resolution_regions']} regions) the Rand index of the two label maps "
            f"is {e2e['full_resolution_rand_index']:.4f}.",
        ]
    agreement = report.get("sample_agreement")
    if agreement:
        lines += [
            "",
            "Fit on a grid sample against a fit on every pixel, both from the same start (default settings):",
            "",
            "| fit on | fit (s) | pixels labelled as by the full fit |",
            "|---|---:|---:|",
        ]
        for size, row in agreement["sweep"].items():
            lines.append(
                f"| {int(size):,} pixel sample ({agreement['sweep_megapixels']} MP photo) | {row['fit_s']:.2f} "
                f"| {row['agreement']:.2%} |"
            )
        for name, row in agreement["photos"].items():
            lines.append(f"| default sample, `{name}` ({row['megapixels']} MP) | | {row['agreement']:.2%} |")
    if report.get("content"):
        lines += content_markdown(report["content"], report["settings"]["content_timeout"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 12], help="Megapixels of the EM benchmark.")
    parser.add_argument("--iterations", type=int, default=10, help="EM iterations of our timed fits.")
    parser.add_argument("--sklearn-iterations", type=int, default=3, help="EM iterations of scikit-learn's timed fits.")
    parser.add_argument("--repeats", type=int, default=3, help="Repeats of every measurement (medians are reported).")
    parser.add_argument("--cli-repeats", type=int, default=9, help="Repeats of the short CLI run, whose wall time varies most.")
    parser.add_argument(
        "--skip-sklearn-above", type=float, default=float("inf"), help="No scikit-learn timing above this many megapixels."
    )
    parser.add_argument("--sample-sizes", type=int, nargs="+", default=[50_000, 100_000, 200_000, 400_000])
    parser.add_argument("--photo", type=Path, default=ROOT / "sample_images" / "coffee.jpg", help="Photo to upscale.")
    parser.add_argument("--gflops", type=float, default=200.0, help="The machine's float32 GEMM rate, for the limit.")
    parser.add_argument("--skip-end-to-end", action="store_true", help="Only the EM and agreement benchmarks.")
    parser.add_argument("--content-sizes", type=float, nargs="*", default=[0.25, 12], help="Megapixels of the content benchmark.")
    parser.add_argument("--content-timeout", type=float, default=600.0, help="Seconds after which a content run is stopped.")
    parser.add_argument("--content-only", action="store_true", help="Only the content benchmark.")
    parser.add_argument("--json", type=Path, help="Write the figures to this JSON file.")
    parser.add_argument("--histogram", action="store_true", help="Only the histogram-fit benchmark (16-bit greyscale scan).")
    parser.add_argument("--histogram-megapixels", type=float, default=12.0, help="Size of the histogram benchmark's scan.")
    args = parser.parse_args(argv)
    if args.iterations < 2 or args.sklearn_iterations < 2:
        parser.error("--iterations and --sklearn-iterations must be at least 2")

    source = read_rgb(args.photo)
    if args.histogram:
        result = bench_histogram(source, args)
        print(histogram_markdown(result))
        if args.json:
            args.json.write_text(json.dumps({"machine": machine(), "histogram": result}, indent=2) + "\n")
        return
    report = {
        "machine": machine(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "json"},
        "defaults": SegmentConfig().to_dict(),
        "em": [],
    }
    if not args.content_only:
        big = photo(source, 12)
        report["em"] = bench_em(source, args)
        report["sample_agreement"] = bench_sample_agreement(big, args)
        if not args.skip_end_to_end:
            with tempfile.TemporaryDirectory() as tmp:
                report["end_to_end"] = bench_end_to_end(big, Path(tmp), args)
    if args.content_sizes:
        segment_image(source)  # fill the Numba cache before the fresh processes
        with tempfile.TemporaryDirectory() as tmp:
            report["content"] = bench_content(source, Path(tmp), args)
    text = markdown(report)
    print(text)
    if args.json:
        report["markdown"] = text
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
