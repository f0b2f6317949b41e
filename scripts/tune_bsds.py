"""Score a grid of settings on a BSDS500 split (train, for tuning the defaults).

Every combination of the ``--grid`` values is run over the same images and
printed as one row (mean PRI, mean VoI, pooled Covering, mean number of
segments, seconds per image), best VoI first. Example::

    python scripts/tune_bsds.py --split train --limit 50 \\
        --grid smoothing=0,1,2 --grid n_components=4,6,8 --set relabel=true

Tune on train; report the chosen setting on val with scripts/evaluate_bsds.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

from segment import SegmentConfig, io
from segment.evaluate import bsds_split, evaluate_files, pipeline_segmenter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_bsds import DEFAULT_ROOT, parse_setting  # noqa: E402


def parse_grid(text: str) -> tuple[str, list[object]]:
    """``name=v1,v2,...`` with each value read as JSON when it parses."""
    name, values = parse_setting(text)
    if not isinstance(values, str):
        return name, [values]
    return name, [parse_setting(f"{name}={value}")[1] for value in values.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="BSDS500 folder (images/, groundTruth/)")
    parser.add_argument("--split", default="train", choices=("train", "val"))
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images (sorted by name)")
    parser.add_argument("--set", dest="settings", type=parse_setting, action="append", default=[],
                        metavar="NAME=VALUE", help="a fixed SegmentConfig change (repeatable)")
    parser.add_argument("--grid", type=parse_grid, action="append", default=[],
                        metavar="NAME=V1,V2", help="values to try for a SegmentConfig field (repeatable)")
    parser.add_argument("--json", type=Path, help="write every row to this file")
    args = parser.parse_args(argv)

    images, truth_dir = bsds_split(args.root, args.split)
    images = images[: args.limit] if args.limit else images
    base = SegmentConfig().replace(**dict(args.settings))
    names = [name for name, _ in args.grid]
    rows = []
    print(f"BSDS500 {args.split}: {len(images)} images; fixed: {dict(args.settings)}", flush=True)
    for values in itertools.product(*(values for _, values in args.grid)):
        config = base.replace(**dict(zip(names, values)))
        segmenter = pipeline_segmenter(config)
        segmenter(io.load_image(images[0]))
        evaluation = evaluate_files(images, truth_dir, segmenter, kind="images")
        summary = evaluation.summary
        row = dict(zip(names, values), pri=summary.pri, voi=summary.voi, covering=summary.covering,
                   segments=summary.n_segments, seconds=evaluation.seconds_per_image)
        rows.append(row)
        setting = " ".join(f"{name}={value}" for name, value in zip(names, values))
        print(f"{setting:50s} PRI {row['pri']:.4f}  VoI {row['voi']:.4f}  Cov {row['covering']:.4f}  "
              f"{row['segments']:6.1f} segs  {row['seconds']:.3f} s", flush=True)
    print("\nbest VoI first:")
    for row in sorted(rows, key=lambda r: r["voi"]):
        setting = " ".join(f"{name}={row[name]}" for name in names)
        print(f"{setting:50s} PRI {row['pri']:.4f}  VoI {row['voi']:.4f}  Cov {row['covering']:.4f}  {row['segments']:6.1f}")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "fixed": dict(args.settings), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
