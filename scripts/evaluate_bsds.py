"""Score segment on a BSDS500 split, side by side with the design documents' recipe.

Rows printed (mean PRI, mean VoI, pooled Segmentation Covering, mean number of
segments, seconds per image; definitions in the data set's README):

- ``segment``: the pipeline with the default settings, changed by ``--set``;
- ``segment, smoothing 0``: the same without the spatial prior (``--no-plain`` skips it);
- ``sklearn GMM``: the design recipe, scikit-learn's GaussianMixture with 4
  components on raw RGB pixels, classes scored as segments (``--no-recipe`` skips it);
- ``skimage felzenszwalb`` with ``--felzenszwalb``: scikit-image's graph-based
  segmentation (scale 500, sigma 0.8, min_size 50), for scale.

Examples::

    python scripts/evaluate_bsds.py --split val
    python scripts/evaluate_bsds.py --split train --limit 40 --set smoothing=1.5 --set n_components=8

With ``--boundary`` every row also gets the BSDS500 boundary benchmark
(precision, recall, F of its boundaries; slower), and with ``--hierarchy``
segment's merge hierarchy is scored at ``--scales`` scales: region ODS/OIS and,
with ``--boundary``, boundary ODS/OIS/AP.

Tune on train, report on val: the test split is kept for judging from outside.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from segment import SegmentConfig, io
from segment.boundary_metrics import benchmark_thresholds
from segment.evaluate import Evaluation, bsds_split, evaluate_files, pipeline_segmenter

DEFAULT_ROOT = Path("/work/shared/bsds500")


def sklearn_recipe(image: np.ndarray) -> np.ndarray:
    """Labels 1..4 from scikit-learn's GaussianMixture (4 components, seed 0) on raw RGB values."""
    from sklearn.mixture import GaussianMixture

    pixels = image[:, :, :3].reshape(-1, 3).astype(np.float64)
    labels = GaussianMixture(n_components=4, random_state=0).fit_predict(pixels)
    return labels.reshape(image.shape[:2]).astype(np.int32) + 1


def felzenszwalb_regions(image: np.ndarray) -> np.ndarray:
    """Regions 1..R from scikit-image's felzenszwalb (scale 500, sigma 0.8, min_size 50) on the RGB image."""
    from skimage.segmentation import felzenszwalb

    return felzenszwalb(image[:, :, :3], scale=500, sigma=0.8, min_size=50).astype(np.int32) + 1


def print_hierarchy(name: str, evaluation: Evaluation) -> None:
    """ODS / OIS lines of the hierarchy, when it was scored."""
    regions, boundary = evaluation.scale_summary, evaluation.hierarchy_boundary_summary
    if regions is not None:
        print(f"{name + ' hierarchy':28s} ODS: PRI {regions.pri_ods:.3f} (scale {regions.pri_ods_scale:.2f}) "
              f"VoI {regions.voi_ods:.3f} ({regions.voi_ods_scale:.2f}) Cover {regions.covering_ods:.3f} "
              f"({regions.covering_ods_scale:.2f}); OIS: PRI {regions.pri_ois:.3f} VoI {regions.voi_ois:.3f} "
              f"Cover {regions.covering_ois:.3f}")
    if boundary is not None:
        print(f"{name + ' hierarchy':28s} boundary F ODS {boundary.ods_f:.3f} (scale {boundary.ods_threshold:.2f}) "
              f"OIS {boundary.ois_f:.3f} AP {boundary.ap:.3f}")


def parse_setting(text: str) -> tuple[str, object]:
    """``name=value`` with the value read as JSON when it parses (numbers, true, null), else as text."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected name=value; got {text!r}")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value


def run(name: str, images: list[Path], truth_dir: Path, segmenter, **options) -> tuple[str, Evaluation]:
    """Warm up on the first image (compilation, caches), then score every image."""
    segmenter(io.load_image(images[0]))
    evaluation = evaluate_files(images, truth_dir, segmenter, kind="images", **options)
    for path, message in evaluation.failures:
        print(f"error: {message}", file=sys.stderr)
    return name, evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="BSDS500 folder (images/, groundTruth/)")
    parser.add_argument("--split", default="val", choices=("train", "val"))
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images (sorted by name)")
    parser.add_argument("--set", dest="settings", type=parse_setting, action="append", default=[],
                        metavar="NAME=VALUE", help="change a SegmentConfig field, e.g. smoothing=1.5 (repeatable)")
    parser.add_argument("--no-plain", action="store_true", help="skip the row without smoothing")
    parser.add_argument("--no-recipe", action="store_true", help="skip the scikit-learn recipe")
    parser.add_argument("--felzenszwalb", action="store_true", help="add scikit-image's felzenszwalb as a row")
    parser.add_argument("--only-baselines", action="store_true", help="skip segment's rows")
    parser.add_argument("--boundary", action="store_true", help="add the boundary benchmark (F, precision, recall)")
    parser.add_argument("--hierarchy", action="store_true", help="score segment's merge hierarchy (ODS / OIS)")
    parser.add_argument("--scales", type=int, default=9, help="number of scales k/(n+1) for the hierarchy")
    parser.add_argument("--json", type=Path, help="write per-image results of every row to this file")
    args = parser.parse_args(argv)

    images, truth_dir = bsds_split(args.root, args.split)
    images = images[: args.limit] if args.limit else images
    config = SegmentConfig().replace(**dict(args.settings))
    rows = [] if args.only_baselines else [("segment", pipeline_segmenter(config, with_hierarchy=args.hierarchy))]
    if not args.no_plain and not args.only_baselines and config.smoothing > 0:
        rows.append(("segment, smoothing 0", pipeline_segmenter(config.replace(smoothing=0.0))))
    if not args.no_recipe:
        rows.append(("sklearn GMM, 4 comps, RGB", sklearn_recipe))
    if args.felzenszwalb:
        rows.append(("skimage felzenszwalb", felzenszwalb_regions))

    changed = {k: v for k, v in config.to_dict().items() if v != SegmentConfig().to_dict()[k]}
    print(f"BSDS500 {args.split}: {len(images)} images; settings: defaults" + (f" with {changed}" if changed else ""))
    print(f"{'method':28s} {'PRI':>6s} {'VoI':>6s} {'Cover':>6s} {'segs':>7s} {'s/img':>7s}"
          + (f" {'bdry F':>6s} {'P':>6s} {'R':>6s}" if args.boundary else ""))
    options = {"boundary": args.boundary, "scales": benchmark_thresholds(args.scales)}
    results = {}
    start = time.perf_counter()
    for name, segmenter in rows:
        name, evaluation = run(name, images, truth_dir, segmenter, **options)
        summary = evaluation.summary
        results[name] = evaluation.to_dict()
        if summary is None:
            print(f"{name:28s} no image scored")
            continue
        boundary = evaluation.boundary_summary
        print(f"{name:28s} {summary.pri:6.3f} {summary.voi:6.3f} {summary.covering:6.3f} "
              f"{summary.n_segments:7.1f} {evaluation.seconds_per_image:7.3f}"
              + (f" {boundary.ods_f:6.3f} {boundary.ods_precision:6.3f} {boundary.ods_recall:6.3f}" if boundary else ""),
              flush=True)
        print_hierarchy(name, evaluation)
    print(f"({time.perf_counter() - start:.0f} s in all)")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "settings": config.to_dict(), "rows": results}, indent=1))
    return 1 if any(r["failures"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
