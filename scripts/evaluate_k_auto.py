"""How well ``-k auto`` finds the number of classes: synthetic images of known K, and BSDS500 photos.

Every synthetic image comes from :func:`segment.synthetic.class_image` with
random layout, shading, texture, colour or grey and (half the time) a class
at 2–5 % of the image, for each true K in 2..8, each size and each noise
level; ``--seeds`` chooses the image sets (seed 1 tuned the criterion, seeds
2 and 3 report it). Each criterion sees what the pipeline gives the
selection: the colour features (Lab, scaled) of a 50,000-pixel random subset
of the stratified 200,000-pixel fit sample.

The selection looks at "local" colours (segment.model_selection.local_colours): each
sampled pixel's colour averaged over its 5x5 window, pixels whose window straddles a
border left out. Criteria compared (``--criteria``):
  bic-full   BIC on colour + position features of the pixels, K = 2..10 (the criterion before)
  bic        BIC on the local colours
  icl        ICL: BIC + 2 x entropy of the responsibilities (local colours)
  icl-smooth ICL with the responsibilities averaged over each pixel's 5x5 neighbourhood
             (the spatial prior's view), on a grid of about 50,000 pixels
  dpgmm      scikit-learn's BayesianGaussianMixture (Dirichlet process, 12 components,
             on 5,000 rows): components above 1 % of the weight
  merge      fit range top + 2 components to the local colours, widen each by a colour
             resolution, merge the closest (Bhattacharyya) while below a threshold, count
             the groups (the product's criterion, segment.model_selection); named
             merge@THRESHOLD/RESOLUTION, over a grid of both
  merge-raw  the same on the pixels' own colours
  pipeline   what segment itself chooses (segment.pipeline.fit_image_model, n_components "auto"):
             merge@1.5/1.5, then for a colour image merge@1.5/1.5 again on the colours under the
             light field fitted with the classes first counted

``--shading S`` gives every synthetic image a light field of +-S (default: random, at most
0.05) to see how the count stands uneven light.

Photos: the first ``--photos`` BSDS500 train images (sorted names): the histogram of
K chosen. ``--timing`` also runs segment_image with "auto" and with a fixed K.

Examples
--------
    python scripts/evaluate_k_auto.py --seeds 1 --json tune.json
    python scripts/evaluate_k_auto.py --seeds 2,3 --criteria bic-full,merge --json report.json
    python scripts/evaluate_k_auto.py --seeds 2 --criteria merge,pipeline --shading 0.15 --photos 0
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

import segment
from segment import io, model_selection, pipeline, sampling
from segment.config import AUTO, SegmentConfig
from segment.features import FeatureSpec
from segment.gmm import ConvergenceWarning, Mixture
from segment.synthetic import class_image, random_settings

SIZES = ((150, 200), (300, 400), (600, 800), (900, 1200))
NOISE = {"low": 2.0, "mid": 5.0, "high": 9.0}
TRUE_K = range(2, 9)
AUTO_RANGE = (2, 10)
THRESHOLDS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
RESOLUTIONS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
ALL_CRITERIA = ("bic-full", "bic", "icl", "icl-smooth", "dpgmm", "merge", "merge-raw", "pipeline")
SHADING: float | None = None  # --shading: the light field of every synthetic image (None: random)
BSDS = Path(__file__).resolve().parents[2] / "shared" / "bsds500" / "images" / "train"


def selection_inputs(image: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, FeatureSpec]:
    """What the selection may look at: the fit sample's window-mean colours (as the pipeline gives them),
    its pixels' own colours, and its colour + position features (both in a random subset of AUTO_SAMPLE rows)."""
    cfg = SegmentConfig()
    spec = FeatureSpec.for_image(image, cfg.color_space, cfg.position_weight, alpha=False)
    flat = sampling.fit_sample(spec.shape, None, cfg.fit_sample, np.random.default_rng(seed))
    local = model_selection.local_colours(spec.colours(image), None, flat)
    local = local[sampling.random_rows(len(local), model_selection.AUTO_SAMPLE, np.random.default_rng(seed))]
    sample = spec.pixel_features(image, flat)
    sample = sample[sampling.random_rows(len(sample), model_selection.AUTO_SAMPLE, np.random.default_rng(seed))]
    return local, sample[:, : spec.n_colour], sample, spec


def fit(k: int, rows: np.ndarray, seed: int) -> Mixture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Mixture(k, covariance_type="full", reg_covar=1e-2, random_state=seed).fit(rows)


def entropy(proba: np.ndarray) -> float:
    proba = np.asarray(proba, dtype=np.float64)
    return float(-(proba * np.log(np.clip(proba, 1e-300, None))).sum())


def grid_colours(image: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """(h, w, C) colour features of an evenly strided grid of about 50,000 pixels."""
    step = max(1, int(np.sqrt(spec.shape[0] * spec.shape[1] / model_selection.AUTO_SAMPLE)))
    small = image[::step, ::step]
    small_spec = FeatureSpec.for_image(small, "lab", 0.0, alpha=False)
    return small_spec.image_features(np.ascontiguousarray(small)).reshape(small.shape[0], small.shape[1], -1)


def choices(image: np.ndarray, criteria: tuple[str, ...], seed: int) -> tuple[dict[str, int], dict[str, float], dict]:
    """K chosen by every criterion (merge: one entry per threshold), seconds per criterion, the merge steps."""
    colours, raw, full, spec = selection_inputs(image, seed)
    ks = range(AUTO_RANGE[0], AUTO_RANGE[1] + 1)
    out, seconds, merges = {}, {}, {}
    if "bic-full" in criteria:
        start = time.perf_counter()
        scores = {k: fit(k, full, seed).bic(full) for k in ks}
        out["bic-full"] = min(scores, key=scores.get)
        seconds["bic-full"] = time.perf_counter() - start
    if {"bic", "icl", "icl-smooth"} & set(criteria):
        start = time.perf_counter()
        models = {k: fit(k, colours, seed) for k in ks}
        bic = {k: m.bic(colours) for k, m in models.items()}
        seconds["bic"] = time.perf_counter() - start
        out["bic"] = min(bic, key=bic.get)
        icl = {k: bic[k] + 2 * entropy(m.predict_proba(colours)) for k, m in models.items()}
        out["icl"] = min(icl, key=icl.get)
        grid = grid_colours(image, spec)
        smooth = {}
        for k, m in models.items():
            proba = m.predict_proba(grid.reshape(-1, grid.shape[-1])).reshape(*grid.shape[:2], k)
            proba = ndimage.uniform_filter(proba, (5, 5, 1))
            smooth[k] = bic[k] * proba[..., 0].size / len(colours) + 2 * entropy(proba)
        out["icl-smooth"] = min(smooth, key=smooth.get)
    if "dpgmm" in criteria:
        from sklearn.mixture import BayesianGaussianMixture

        start = time.perf_counter()
        rows = colours[sampling.random_rows(len(colours), 5_000, np.random.default_rng(seed))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dp = BayesianGaussianMixture(
                n_components=12, weight_concentration_prior_type="dirichlet_process", reg_covar=1e-2,
                max_iter=300, random_state=seed,
            ).fit(rows)
        out["dpgmm"] = int((dp.weights_ > 0.01).sum())
        seconds["dpgmm"] = time.perf_counter() - start
    if "pipeline" in criteria:
        start = time.perf_counter()
        cfg = SegmentConfig(n_components=AUTO, seed=seed)
        out["pipeline"] = int(pipeline.fit_image_model(image, spec, None, cfg).n_components)
        seconds["pipeline"] = time.perf_counter() - start
    for name, rows in (("merge", colours), ("merge-raw", raw)):
        if name not in criteria:
            continue
        start = time.perf_counter()
        model = fit(AUTO_RANGE[1] + model_selection.EXTRA_COMPONENTS, rows, seed)
        seconds[name] = time.perf_counter() - start
        merges[name] = {"weights": model.weights_.tolist(), "means": model.means_.tolist(),
                        "covariances": model.covariances_.tolist()}
        for resolution in RESOLUTIONS:
            covariances = model.covariances_ + resolution**2 * np.eye(rows.shape[1])
            steps = model_selection.merge_components(model.weights_, model.means_, covariances)
            for threshold in THRESHOLDS:
                out[f"{name}@{threshold:g}/{resolution:g}"] = model_selection.count_classes(steps, threshold, AUTO_RANGE)
    return out, seconds, merges


def synthetic_cases(seeds: list[int]):
    for seed in seeds:
        for k in TRUE_K:
            for size_index, shape in enumerate(SIZES):
                for noise_index, (noise_name, noise) in enumerate(NOISE.items()):
                    rng = np.random.default_rng([seed, k, size_index, noise_index])
                    settings = random_settings(rng, noise=noise)
                    if SHADING is not None:
                        settings = dataclasses.replace(settings, shading=SHADING)
                    image, _ = class_image(k, shape, rng, settings)
                    yield {"seed": seed, "k": k, "size": f"{shape[1]}x{shape[0]}", "noise": noise_name,
                           "colour": settings.colour, "layout": settings.layout}, image


def accuracy_table(rows: list[dict], key: str, criterion: str) -> dict[str, float]:
    groups = collections.defaultdict(list)
    for row in rows:
        groups[str(row[key])].append(row["chosen"][criterion] == row["k"])
    return {name: float(np.mean(hits)) for name, hits in groups.items()}


def timing(images: list[tuple[str, np.ndarray, int]]) -> list[dict]:
    """segment_image seconds with n_components="auto" and with the K it chose (fixed), default settings."""
    out = []
    for name, image, _ in images:
        auto = segment.segment_image(image, n_components="auto")
        k = int(auto.model.n_components)
        fixed = segment.segment_image(image, n_components=k)
        auto = segment.segment_image(image, n_components="auto")  # warm
        out.append({"image": name, "k": k, "auto_s": auto.timings["total"], "fixed_s": fixed.timings["total"]})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1", help="comma-separated image-set seeds (1: tuning, 2,3: report)")
    parser.add_argument("--criteria", default=",".join(ALL_CRITERIA))
    parser.add_argument("--sizes", default="all", help="'all' or comma-separated indices into SIZES (0..3)")
    parser.add_argument("--photos", type=int, default=60, help="BSDS500 train photos (0: none)")
    parser.add_argument("--shading", type=float, default=None, help="light field of every synthetic image, e.g. 0.15 for +-15 %%")
    parser.add_argument("--bsds", type=Path, default=BSDS)
    parser.add_argument("--timing", action="store_true", help="also time segment_image auto against fixed K")
    parser.add_argument("--json", type=Path, help="write every choice and the tables here")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    criteria = tuple(c for c in args.criteria.split(",") if c)
    global SIZES, SHADING
    SHADING = args.shading
    if args.sizes != "all":
        SIZES = tuple(SIZES[int(i)] for i in args.sizes.split(","))
    rows, seconds = [], collections.defaultdict(list)
    for case, image in synthetic_cases(seeds):
        chosen, spent, merges = choices(image, criteria, seed=0)
        rows.append({**case, "chosen": chosen, "merge_steps": merges})
        for name, value in spent.items():
            seconds[name].append(value)
        print(case["seed"], case["k"], case["size"], case["noise"], chosen, file=sys.stderr, flush=True)
    names = list(rows[0]["chosen"]) if rows else []
    report: dict = {"seeds": seeds, "n_images": len(rows), "accuracy": {}, "by": {}, "photos": {}}
    print(f"\nsynthetic images: {len(rows)} (seeds {seeds})")
    print(f"{'criterion':<16} {'accuracy':>8}  median s")
    for name in names:
        acc = float(np.mean([r["chosen"][name] == r["k"] for r in rows]))
        report["accuracy"][name] = acc
        spent = seconds.get(name.split("@")[0])
        print(f"{name:<16} {acc:8.3f}  {np.median(spent) if spent else float('nan'):.2f}")
    for name in names:
        report["by"][name] = {key: accuracy_table(rows, key, name) for key in ("k", "size", "noise", "colour", "layout")}
    best = f"merge@{model_selection.MERGE_DISTANCE:g}/{model_selection.COLOUR_RESOLUTION:g}" if "merge" in criteria else (names[0] if names else None)
    if best:
        print(f"\n{best} accuracy by:")
        for key, table in report["by"][best].items():
            print(f"  {key:<7} " + "  ".join(f"{g}: {v:.2f}" for g, v in table.items()))
    photos = sorted(args.bsds.glob("*.jpg"))[: args.photos]
    photo_images, photo_steps = [], {}
    for path in photos:
        image, _ = io.read_image(path)
        chosen, _, merges = choices(image, criteria, seed=0)
        photo_images.append((path.name, image, chosen))
        photo_steps[path.name] = merges
        print(path.name, chosen, file=sys.stderr, flush=True)
    if photos:
        print(f"\nK chosen on {len(photos)} BSDS500 train photos (range {AUTO_RANGE}):")
        for name in names:
            counts = collections.Counter(c[name] for _, _, c in photo_images)
            histogram = {k: counts.get(k, 0) for k in range(AUTO_RANGE[0], AUTO_RANGE[1] + 1)}
            report["photos"][name] = histogram
            print(f"{name:<16} " + " ".join(f"{k}:{v}" for k, v in histogram.items()))
    if args.timing:
        picked = photo_images[:5] + [(f"synthetic {r['size']}", img, None) for r, img in _one_per_size(seeds[0])]
        report["timing"] = timing([(n, img, 0) for n, img, _ in picked])
        print("\nsegment_image seconds (default settings), auto vs fixed K:")
        for row in report["timing"]:
            print(f"  {row['image']:<22} K={row['k']:<2} auto {row['auto_s']:.2f}  fixed {row['fixed_s']:.2f}  "
                  f"ratio {row['auto_s'] / row['fixed_s']:.2f}")
    if args.json:
        report["images"] = rows
        report["photo_merge_steps"] = photo_steps
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def _one_per_size(seed: int):
    for size_index, shape in enumerate(SIZES):
        rng = np.random.default_rng([seed, 4, size_index, 1])
        image, _ = class_image(4, shape, rng, random_settings(rng, noise=NOISE["mid"]))
        yield {"size": f"{shape[1]}x{shape[0]}"}, image


if __name__ == "__main__":
    raise SystemExit(main())
