"""Tiled (band by band) against in-memory segmentation of one large scan: agreement, seconds, peak memory.

Enlarges sample_images/coffee.jpg to the given size, then segments it with
default settings twice, each in a fresh process: with
:func:`segment.segment_image` in memory, and with
:func:`segment.tiles.segment_tiled` under a memory budget that forces bands.
Prints the adjusted Rand index between the two label maps, the seconds and
the peak resident memory (RSS) of each process, and writes them as JSON::

    python scripts/bench_tiled.py --megapixels 50 --max-memory 1G --json tiled.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def make_scan(megapixels: float, path: Path) -> tuple[int, int]:
    """Write coffee.jpg enlarged (bicubic) to about ``megapixels`` as a .npy image; return its shape."""
    photo = cv2.cvtColor(cv2.imread(str(ROOT / "sample_images" / "coffee.jpg")), cv2.COLOR_BGR2RGB)
    scale = (megapixels * 1e6 / (photo.shape[0] * photo.shape[1])) ** 0.5
    size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    np.save(path, cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC))
    return size[1], size[0]


def run_child(mode: str, image: Path, out: Path, budget: int) -> None:
    """Segment ``image`` one way and print seconds and peak RSS as JSON (in a fresh process)."""
    import segment
    from segment import tiles

    pixels = np.load(image)
    start = time.perf_counter()
    if mode == "memory":
        result = segment.segment_image(pixels)
        np.save(out / "memory_labels.npy", result.labels)
        extra = {"n_labels": result.n_labels, "timings": result.timings}
    else:
        tiled = tiles.segment_tiled(pixels, segment.SegmentConfig(save=("labels",)), out, "tiled", budget=budget)
        extra = {"n_labels": tiled.n_labels, "timings": tiled.timings, "tiling": tiled.summary["tiling"]}
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak, **extra}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=50.0)
    parser.add_argument("--max-memory", default="1G", help="Budget of the tiled run (as --max-memory).")
    parser.add_argument("--json", type=Path, help="Write the figures here.")
    parser.add_argument("--child", choices=["memory", "tiled"], help=argparse.SUPPRESS)
    parser.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from segment.config import SegmentConfig

    budget = int(SegmentConfig(max_memory=args.max_memory).max_memory)
    if args.child:
        run_child(args.child, args.image, args.out, budget)
        return
    from sklearn.metrics import adjusted_rand_score

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        shape = make_scan(args.megapixels, out / "scan.npy")
        figures = {"shape": list(shape), "megapixels": shape[0] * shape[1] / 1e6, "budget_bytes": budget}
        for mode in ("memory", "tiled"):
            command = [sys.executable, __file__, "--child", mode, "--image", str(out / "scan.npy"), "--out", str(out)]
            command += ["--max-memory", args.max_memory]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            figures[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        memory = np.load(out / "memory_labels.npy")
        tiled = cv2.imread(str(out / "tiled_labels.png"), cv2.IMREAD_UNCHANGED).astype(np.int32)
        figures["adjusted_rand_index"] = float(adjusted_rand_score(memory.ravel(), tiled.ravel()))
        figures["identical_fraction"] = float(np.mean(memory == tiled))
    print(f"{figures['megapixels']:.1f} MP {shape[1]}x{shape[0]}, tiled budget {budget / 2**30:.2f} GiB")
    print("| path | seconds | peak RSS (GiB) | labels |\n|---|---|---|---|")
    for mode in ("memory", "tiled"):
        row = figures[mode]
        print(f"| {mode} | {row['seconds']:.1f} | {row['peak_rss_bytes'] / 2**30:.2f} | {row['n_labels']} |")
    print(f"adjusted Rand index {figures['adjusted_rand_index']:.5f}, identical pixels {figures['identical_fraction']:.6f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
