"""Compare segment.metrics with the BSDS500 MATLAB benchmark's own outputs (bench/test_1 .. test_5).

The data set's bench/ folder holds five train images with three kinds of
results (ucm2 hierarchies, soft contour PNGs, cells of segmentations) and the
files the MATLAB benchmark wrote for them. This script recomputes every figure
of those files and prints ours, theirs and the largest absolute difference.

Example::

    python scripts/check_bsds_bench.py --bench /work/shared/bsds500/bench
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from segment import metrics
from segment.hierarchy import cut_ucm2

NAMES = ("2018", "3063", "5096", "6046", "8068")
# folder: (input, boundary benchmark, region benchmark)
TESTS = {
    "test_1": ("ucm2", True, True),
    "test_2": ("png", True, False),
    "test_3": ("segs", True, False),
    "test_4": ("segs", True, True),
    "test_5": ("segs", False, True),
}


def machine_results(bench: Path, kind: str, name: str):
    """(boundary maps, region label maps) of one image's result at the benchmark's 5 thresholds."""
    thresholds = metrics.benchmark_thresholds(5)
    if kind == "ucm2":
        ucm2 = scipy.io.loadmat(str(bench / "ucm2" / f"{name}.mat"))["ucm2"]
        strength = metrics.ucm_strength(ucm2)
        return [strength >= t for t in thresholds], [cut_ucm2(ucm2, t) for t in thresholds]
    if kind == "png":
        strength = cv2.imread(str(bench / "png" / f"{name}.png"), cv2.IMREAD_UNCHANGED) / 255.0
        return [strength >= t for t in thresholds], None
    segs = [np.asarray(s, dtype=np.int64) for s in scipy.io.loadmat(str(bench / "segs" / f"{name}.mat"))["segs"].ravel()]
    return [metrics.label_boundaries(s) for s in segs], segs


def compare(label: str, ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64).ravel(), np.asarray(theirs, dtype=np.float64).ravel()
    diff = float(np.abs(ours - theirs).max())
    print(f"  {label:16s} max |diff| {diff:.5f}   ours {np.round(ours, 4).tolist()}")
    print(f"  {'':16s}                   MATLAB {np.round(theirs, 4).tolist()}")
    return diff


def check(bench: Path, folder: str) -> float:
    kind, boundary, regions = TESTS[folder]
    thresholds = metrics.benchmark_thresholds(5) if kind != "segs" else np.arange(1.0, 6.0)
    counts, scores = [], []
    for name in NAMES:
        truths = metrics.load_ground_truth(bench / "groundTruth" / f"{name}.mat")
        maps, segs = machine_results(bench, kind, name)
        if boundary:
            counts.append(metrics.boundary_counts(maps, [metrics.human_boundaries(t) for t in truths]))
        if regions:
            scores.append([metrics.evaluate(s, truths) for s in segs])
    read = lambda file: np.loadtxt(bench / folder / file, ndmin=2)  # noqa: E731
    print(f"{folder} ({kind}):")
    worst = 0.0
    if boundary:
        s = metrics.summarize_boundaries(counts, thresholds)
        ours = [s.ods_threshold, s.ods_recall, s.ods_precision, s.ods_f, s.ois_recall, s.ois_precision, s.ois_f, s.ap]
        worst = max(worst, compare("eval_bdry", ours, read("eval_bdry.txt")[0]))
        pooled = np.sum([[c.matched_human, c.human, c.matched_machine, c.machine] for c in counts], axis=0)
        recall, precision = pooled[0] / pooled[1], pooled[2] / np.maximum(pooled[3], 1)
        per_threshold = np.column_stack([recall, precision, metrics.f_measure(recall, precision)])
        worst = max(worst, compare("eval_bdry_thr", per_threshold, read("eval_bdry_thr.txt")[:, 1:]))
        per_image = []
        for c in counts:
            f = metrics.f_measure(c.recall, c.precision)
            k = len(f) - 1 - int(np.argmax(f[::-1]))
            per_image.append([c.recall[k], c.precision[k], f[k]])
        compare("eval_bdry_img", per_image, read("eval_bdry_img.txt")[:, 2:])
    if regions:
        r = metrics.summarize_scales(scores, thresholds)
        worst = max(worst, compare("eval_RI_VOI", [r.pri_ods_scale, r.pri_ods, r.pri_ois, r.voi_ods_scale, r.voi_ods,
                                                   r.voi_ois], read("eval_RI_VOI.txt")[0]))
        worst = max(worst, compare("eval_cover", [r.covering_ods_scale, r.covering_ods, r.covering_ois],
                                   read("eval_cover.txt")[0, :3]))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=Path("/work/shared/bsds500/bench"))
    parser.add_argument("tests", nargs="*", metavar="TEST", help=f"any of {', '.join(TESTS)} (default: all)")
    args = parser.parse_args(argv)
    if unknown := sorted(set(args.tests) - set(TESTS)):
        parser.error(f"unknown test {unknown[0]!r}; choose from {', '.join(TESTS)}")
    worst = max(check(args.bench, folder) for folder in (args.tests or list(TESTS)))
    print(f"largest difference of a data-set figure: {worst:.5f}")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
