"""Fit the weights of the learned merge cost on BSDS500 train (``merging.MERGE_WEIGHTS``).

The pipeline runs with its default settings up to region merging, and the
regions are then merged greedily all the way down to one per image while
every merge is recorded: the pair's terms (``merging.MERGE_TERMS``) and how
far the human segmentations agree with joining them, the fraction of pixel
pairs (one pixel in each region) that share a human segment, averaged over
the image's annotators. That fraction is what a merge does to the
probabilistic Rand index: joining two regions helps it exactly when the
fraction is above one half. A logistic regression of the fraction on the
terms, each merge weighted by the product of the two areas (the pixel pairs
it decides), gives the weights.

The merge order depends on the weights, so this runs in rounds: first
merging by mean-colour distance alone, then with the weights fitted on that,
and those weights are fitted on the merges of both rounds. A third round
merges in the order of these weights, and the printed weights are fitted on
its merges whose cost under them lies in ``--window`` (0.33 to 3 by default):
the pairs near the threshold, which decide where the merging stops. The
many easy merges far below the threshold (specks, smooth shading) and the
far-off ones above it would otherwise set the slope of the fit; on the 200
train images the window's fit raised PRI by 0.003 and lowered VoI by 0.02
bits at ``merge_cost`` 1 (docs/quality.md). ``--window 0,inf`` fits on all merges of the round.
Example::

    python scripts/fit_merge_cost.py --split train

The threshold (``merge_cost``) is then tuned with ``scripts/tune_bsds.py``
on the same split. Needs scikit-learn.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from segment import io, merging, pipeline
from segment.evaluate import bsds_split, find_ground_truth, image_name
from segment.metrics import load_ground_truth

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_bsds import DEFAULT_ROOT  # noqa: E402

COLOUR_DISTANCE_ONLY = {**{name: 0.0 for name in merging.MERGE_TERMS}, "colour_distance": -1.0, "intercept": 0.0}


def regions_before_merging(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The label map and colour image that the default pipeline hands to region merging."""
    captured = {}
    merge = merging.merge_similar_regions

    def capture(labels, features, max_cost, **kwargs):
        captured.update(labels=np.array(labels), features=np.array(features, dtype=np.float32))
        return merge(labels, features, max_cost, **kwargs)

    merging.merge_similar_regions = capture
    try:
        pipeline.segment_image(image)
    finally:
        merging.merge_similar_regions = merge
    return captured["labels"], captured["features"]


def recorded_merges(labels: np.ndarray, colours: np.ndarray, truths: list[np.ndarray], weights: dict[str, float]):
    """Terms (M, T), human agreement (M,) and weight (M,) of every merge down to one region under ``weights``."""
    _, merges = merging.merge_similar_regions(labels, colours, np.inf, weights=weights, record=True)
    regions = merges.regions.ravel()
    n_regions = int(regions.max()) + 1
    size = np.bincount(regions, minlength=n_regions).astype(np.float64)
    counts = []  # per annotator: pixels of each region in each human segment
    for truth in truths:
        truth = truth.ravel().astype(np.int64)
        n_segments = int(truth.max()) + 1
        counts.append(np.bincount(regions * n_segments + truth, minlength=n_regions * n_segments).reshape(n_regions, -1))
    agreement, weight = [], []
    for source, target in zip(merges.sources.tolist(), merges.targets.tolist()):
        pairs = size[source] * size[target]
        agreement.append(np.mean([table[source] @ table[target] for table in counts]) / pairs)
        weight.append(pairs / labels.size**2)
        size[target] += size[source]
        for table in counts:
            table[target] += table[source]
    return merges.terms, np.array(agreement), np.array(weight)


def _merges_of_image(task):
    labels, colours, truth_path, weights = task
    return recorded_merges(labels, colours, load_ground_truth(truth_path), weights)


def fit_weights(terms: np.ndarray, agreement: np.ndarray, weight: np.ndarray) -> dict[str, float]:
    """Weighted logistic regression of the agreement fraction on the terms (each merge as a 1 and a 0 sample)."""
    from sklearn.linear_model import LogisticRegression

    X = np.concatenate([terms, terms])
    y = np.r_[np.ones(len(terms)), np.zeros(len(terms))]
    sample_weight = np.r_[weight * agreement, weight * (1 - agreement)]
    model = LogisticRegression(C=100.0, max_iter=5000).fit(X, y, sample_weight=sample_weight / sample_weight.mean())
    return {**dict(zip(merging.MERGE_TERMS, model.coef_[0].round(3).tolist())), "intercept": round(float(model.intercept_[0]), 3)}


def in_window(terms: np.ndarray, weights: dict[str, float], low: float, high: float) -> np.ndarray:
    """Which merges cost more than ``low`` and less than ``high`` under ``weights``, (M,) bool."""
    coefficients = np.array([weights[name] for name in merging.MERGE_TERMS])
    log_odds = terms @ coefficients + weights["intercept"]
    return (-log_odds > np.log(low) if low > 0 else np.ones(len(terms), dtype=bool)) & (-log_odds < np.log(high))


def parse_window(text: str) -> tuple[float, float]:
    """``LO,HI`` as two floats (``inf`` allowed), LO < HI."""
    low, _, high = text.partition(",")
    try:
        window = float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI; got {text!r}") from None
    if not 0 <= window[0] < window[1]:
        raise argparse.ArgumentTypeError(f"expected 0 <= LO < HI; got {text!r}")
    return window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="BSDS500 folder (images/, groundTruth/)")
    parser.add_argument("--split", default="train", choices=("train", "val"))
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images (sorted by name)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the recording rounds")
    parser.add_argument("--window", type=parse_window, default=(0.33, 3.0), metavar="LO,HI",
                        help="fit the last round on the merges whose cost lies in (LO, HI)")
    args = parser.parse_args(argv)

    images, truth_dir = bsds_split(args.root, args.split)
    images = images[: args.limit] if args.limit else images
    before = [regions_before_merging(io.load_image(path)) for path in images]
    truth_paths = [find_ground_truth(truth_dir, image_name(path)) for path in images]
    rounds, weights = [], COLOUR_DISTANCE_ONLY
    with ProcessPoolExecutor(args.workers) as pool:
        for _ in range(2):
            tasks = [(labels, colours, truth, weights) for (labels, colours), truth in zip(before, truth_paths)]
            rounds += list(pool.map(_merges_of_image, tasks))
            weights = fit_weights(*(np.concatenate(column) for column in zip(*rounds)))
        tasks = [(labels, colours, truth, weights) for (labels, colours), truth in zip(before, truth_paths)]
        terms, agreement, weight = (np.concatenate(column) for column in zip(*pool.map(_merges_of_image, tasks)))
    near = in_window(terms, weights, *args.window)
    n_merges = sum(len(agreement) for _, agreement, _ in rounds) + len(agreement)
    print(f"{len(images)} images, {n_merges} recorded merges in three rounds; "
          f"the last fit on the {int(near.sum())} with cost in {args.window}")
    weights = fit_weights(terms[near], agreement[near], weight[near])
    print("MERGE_WEIGHTS = {")
    for name, value in weights.items():
        print(f'    "{name}": {value},')
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
