"""Boundary F-measure of each human annotation against the other annotators of its image (BSDS500).

Every annotation is scored in turn as if it were a machine result, against the
remaining annotations of the same image, with the benchmark's matching
(:mod:`segment.boundary_metrics`); counts are pooled over all (image,
annotation) pairs. Arbeláez et al. (TPAMI 2011) report F = 0.80 for humans on
the test split; a faithful implementation of the benchmark should land near it.

Example::

    python scripts/human_boundary_consistency.py --split val --limit 50
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from segment import metrics
from segment.evaluate import bsds_split

DEFAULT_ROOT = Path("/work/shared/bsds500")


def human_counts(truths: list[np.ndarray]) -> list[metrics.BoundaryCounts]:
    """Counts of each annotation's boundaries against those of the other annotations."""
    boundaries = [metrics.human_boundaries(t) for t in truths]
    return [
        metrics.boundary_counts([boundaries[m]], boundaries[:m] + boundaries[m + 1 :], thin=False)
        for m in range(len(boundaries))
        if len(boundaries) > 1
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="BSDS500 folder (images/, groundTruth/)")
    parser.add_argument("--split", default="val", choices=("train", "val"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    args = parser.parse_args(argv)

    images, truth_dir = bsds_split(args.root, args.split)
    images = images[: args.limit] if args.limit else images
    start = time.perf_counter()
    counts = []
    for path in images:
        counts.extend(human_counts(metrics.load_ground_truth(truth_dir / f"{path.stem}.mat")))
    summary = metrics.summarize_boundaries(counts, [0.5])
    print(f"BSDS500 {args.split}, {len(images)} images, {len(counts)} annotations against the others: "
          f"F {summary.ods_f:.3f}  precision {summary.ods_precision:.3f}  recall {summary.ods_recall:.3f}  "
          f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
