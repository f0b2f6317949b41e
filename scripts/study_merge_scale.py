"""Can the merge threshold be chosen per image? Rules scored on a BSDS500 split (train).

For every image the regions before merging (default pipeline) are merged
greedily down to one region under ``merging.MERGE_WEIGHTS``, and the sequence
is cut at a grid of merge costs; each cut then gets the pipeline's
small-region step (``min_fraction`` 1 %) and is scored. Rows printed (mean
PRI, mean VoI, pooled Covering, mean segments):

- ``fixed c``: one threshold for all images (what ``merge_cost`` does);
- ``best per image``: the threshold with the best PRI for each image (OIS, an
  upper bound no rule reaches);
- ``leaves rule``: ``log c = a + b (log R - mean log R)`` with R the image's
  number of regions before merging, a and b fitted on one half of the images
  and scored on the other (2-fold, both ways), against the best fixed
  threshold fitted the same way;
- ``largest gap in [lo, hi]``: cut inside the widest gap between consecutive
  merge costs (in log) within a window around the default, the stability
  criterion.

Example::

    python scripts/study_merge_scale.py --split train

Needs only what the pipeline needs; about 2 s per image on one core.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from segment import io, merging, metrics, postprocess
from segment.evaluate import bsds_split, find_ground_truth, image_name
from segment.hierarchy import Hierarchy, cost_to_scale

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_bsds import DEFAULT_ROOT  # noqa: E402
from fit_merge_cost import regions_before_merging  # noqa: E402

COSTS = np.exp(np.linspace(np.log(0.05), np.log(20), 27))  # a step of 0.23 in log cost


def score_cuts(task) -> tuple[np.ndarray, np.ndarray, int]:
    """Scores (J, 5: PRI, VoI, covering sum, covering total, segments) of the cuts at COSTS, merge costs, leaves."""
    image_path, truth_path = task
    labels, colours = regions_before_merging(io.load_image(image_path))
    truths = metrics.load_ground_truth(truth_path)
    _, record = merging.merge_similar_regions(labels, colours, np.inf, record=True)
    tree = Hierarchy.from_merges(record.regions, record.sources, record.targets, record.costs)
    min_size = int(np.ceil(0.01 * labels.size))
    rows = []
    for cost in COSTS:
        cut = postprocess.merge_small_regions(tree.cut(cost_to_scale(cost)), min_size, 0, features=colours)
        s = metrics.evaluate(cut, truths)
        rows.append((s.pri, s.voi, s.covering_sum, s.covering_total, s.n_segments))
    return np.array(rows), np.maximum.accumulate(record.costs), int(record.regions.max()) + 1


def figures(scores: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """Mean PRI, mean VoI, pooled covering, mean segments of the cuts ``choice`` (one grid index per image)."""
    rows = scores[np.arange(len(scores)), choice]
    return np.array([rows[:, 0].mean(), rows[:, 1].mean(), rows[:, 2].sum() / rows[:, 3].sum(), rows[:, 4].mean()])


def grid_index(log_cost: np.ndarray) -> np.ndarray:
    """The nearest grid cost to each log cost."""
    step = np.log(COSTS[1] / COSTS[0])
    return np.clip(np.round((log_cost - np.log(COSTS[0])) / step).astype(int), 0, len(COSTS) - 1)


def leaves_rule_cv(scores: np.ndarray, log_leaves: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Held-out figures of the leaves rule and of the best fixed threshold, 2-fold both ways, averaged over 10 splits."""
    centred = log_leaves - log_leaves.mean()
    offsets, slopes = np.linspace(-0.5, 0.7, 13), np.linspace(-0.6, 0.8, 15)
    rng = np.random.default_rng(seed)
    rule, fixed = [], []
    for _ in range(10):
        first = np.zeros(len(scores), dtype=bool)
        first[rng.permutation(len(scores))[: len(scores) // 2]] = True
        for fit in (first, ~first):
            def pri(a, b, part):
                return figures(scores[part], grid_index(a + b * centred[part]))[0]
            a, b = max(((a, b) for a in offsets for b in slopes), key=lambda ab: pri(*ab, fit))
            a0 = max(offsets, key=lambda a: pri(a, 0.0, fit))
            rule.append(figures(scores[~fit], grid_index(a + b * centred[~fit])))
            fixed.append(figures(scores[~fit], grid_index(np.full((~fit).sum(), a0))))
    return np.mean(rule, axis=0), np.mean(fixed, axis=0)


def largest_gap_choice(merge_costs: list[np.ndarray], low: float, high: float) -> np.ndarray:
    """Per image, the grid cost inside the widest gap of log merge costs clipped to [low, high] (default 1)."""
    choice = []
    for costs in merge_costs:
        levels = np.log(np.maximum(costs, 1e-12))
        lower, upper = np.r_[-np.inf, levels], np.r_[levels, np.inf]
        width = np.minimum(upper, np.log(high)) - np.maximum(lower, np.log(low))
        k = int(np.argmax(width))
        middle = (max(lower[k], np.log(low)) + min(upper[k], np.log(high))) / 2
        choice.append(grid_index(np.array([middle if width[k] > 0 else 0.0]))[0])
    return np.array(choice)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="BSDS500 folder (images/, groundTruth/)")
    parser.add_argument("--split", default="train", choices=("train", "val"))
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images (sorted by name)")
    parser.add_argument("--workers", type=int, default=2, help="processes")
    args = parser.parse_args(argv)

    images, truth_dir = bsds_split(args.root, args.split)
    images = images[: args.limit] if args.limit else images
    tasks = [(path, find_ground_truth(truth_dir, image_name(path))) for path in images]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(score_cuts, tasks, chunksize=4))
    scores = np.array([r[0] for r in results])
    merge_costs = [r[1] for r in results]
    log_leaves = np.log([r[2] for r in results])

    def show(name: str, values: np.ndarray) -> None:
        print(f"{name:36s} PRI {values[0]:.4f}  VoI {values[1]:.4f}  Cov {values[2]:.4f}  {values[3]:5.1f} segs")

    print(f"BSDS500 {args.split}: {len(images)} images; merge weights: merging.MERGE_WEIGHTS")
    for j, cost in enumerate(COSTS):
        if 0.3 <= cost <= 3.0:
            show(f"fixed {cost:.2f}", figures(scores, np.full(len(scores), j)))
    show("best per image (OIS by PRI)", figures(scores, scores[:, :, 0].argmax(axis=1)))
    rule, fixed = leaves_rule_cv(scores, log_leaves)
    show("leaves rule, held out", rule)
    show("best fixed threshold, held out", fixed)
    for low, high in ((0.5, 1.65), (0.74, 1.65), (1.0, 2.0), (0.74, 2.72)):
        show(f"largest gap in [{low}, {high}]", figures(scores, largest_gap_choice(merge_costs, low, high)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
