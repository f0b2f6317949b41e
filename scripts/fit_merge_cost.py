"""Fit the region terms of the merge cost on BSDS500 train (``postprocess.MERGE_REGION_EXPONENTS``).

The pipeline runs with its default settings up to region merging. For every
pair of adjacent regions at that point the script records the log of the
colour distance of their means, the mean edge strength along their border,
the smaller and the larger region's share of the image, and their contact
(border length over the square root of the smaller area). The target is 1
when, for at least half of the image's human segmentations, both regions lie mostly in
the same human segment. A logistic regression of the target on the log terms,
each pair weighted by the smaller area (the pixels a wrong merge gets wrong),
gives exponents of a cost whose log is linear in the terms; they are printed
scaled so that the colour distance and edge exponents sum to 1, as the cost
uses them. Example::

    python scripts/fit_merge_cost.py --split train

The merge threshold (``merge_distance``) is then tuned with
``scripts/tune_bsds.py`` on the same split. Needs scikit-learn.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from segment import io, pipeline, postprocess
from segment.evaluate import bsds_split, find_ground_truth, image_name
from segment.metrics import load_ground_truth

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_bsds import DEFAULT_ROOT  # noqa: E402

TERMS = ("distance", "edge", "small", "large", "contact")


def regions_before_merging(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The label map and colour image that the default pipeline hands to region merging."""
    captured = {}
    merge = postprocess.merge_similar_regions

    def capture(labels, features, max_distance, **kwargs):
        captured.update(labels=np.array(labels), features=np.array(features, dtype=np.float64))
        return merge(labels, features, max_distance, **kwargs)

    postprocess.merge_similar_regions = capture
    try:
        pipeline.segment_image(image)
    finally:
        postprocess.merge_similar_regions = merge
    return captured["labels"], captured["features"]


def pair_terms(labels: np.ndarray, colours: np.ndarray, truths: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log terms (P, 5), target (P,) and weight (P,) of every adjacent pair of regions."""
    graph = postprocess._RegionGraph(labels, postprocess.edge_strength(colours))
    regions = graph.regions.ravel()
    size = graph.size.astype(np.float64)
    pixels = colours.reshape(len(regions), -1)
    means = np.stack([np.bincount(regions, pixels[:, c], graph.n_regions) for c in range(pixels.shape[1])], 1) / size[:, None]
    majority = []
    for truth in truths:
        truth = truth.ravel().astype(np.int64)
        n_segments = int(truth.max()) + 1
        table = np.bincount(regions * n_segments + truth, minlength=graph.n_regions * n_segments)
        majority.append(table.reshape(graph.n_regions, n_segments).argmax(axis=1))
    majority = np.array(majority)
    terms, target, weight = [], [], []
    for u, neighbours in graph.adjacency.items():
        for v, border in neighbours.items():
            if u > v:
                continue
            small, large = sorted((size[u], size[v]))
            terms.append([
                np.linalg.norm(means[u] - means[v]), graph.border_strength(u, v),
                small / labels.size, large / labels.size, border / np.sqrt(small),
            ])
            target.append(np.mean(majority[:, u] == majority[:, v]) >= 0.5)
            weight.append(small)
    terms = np.array(terms)
    terms[:, :2] += 1e-3  # identical colours or no edge: the cost is ~0, keep the log finite
    return np.log(terms), np.array(target), np.array(weight)


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="BSDS500 folder (images/, groundTruth/)")
    parser.add_argument("--split", default="train", choices=("train", "val"))
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images (sorted by name)")
    args = parser.parse_args(argv)

    images, truth_dir = bsds_split(args.root, args.split)
    images = images[: args.limit] if args.limit else images
    parts = []
    for path in images:
        labels, colours = regions_before_merging(io.load_image(path))
        parts.append(pair_terms(labels, colours, load_ground_truth(find_ground_truth(truth_dir, image_name(path)))))
    X, y, w = (np.concatenate(column) for column in zip(*parts))
    model = LogisticRegression(C=10.0, max_iter=1000).fit(X, y, sample_weight=w)
    exponents = model.coef_[0] / (model.coef_[0][0] + model.coef_[0][1])
    print(f"{len(images)} images, {len(y)} adjacent pairs, {np.average(y, weights=w):.1%} of the weight on same-segment pairs")
    print("exponents (distance + edge = 1): " + ", ".join(f"{n} {e:.3f}" for n, e in zip(TERMS, exponents)))
    print(f"merge_edge_weight = {exponents[1]:.2f}, MERGE_REGION_EXPONENTS = ({exponents[2]:.2f}, {exponents[3]:.2f}, {exponents[4]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
