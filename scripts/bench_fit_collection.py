"""Memory and time of ``segment fit --all-pixels`` against the size of the collection.

Writes collections of ``--images`` PNGs of ``--megapixels`` each (a sample
photo, shifted and with noise, so that no two are alike) and fits one model
on every pixel of each collection in a fresh process: K = 8, Lab + x, y,
``--passes`` EM passes (tol = 0, so every size runs the same number). Prints,
per collection, the pixels, seconds, pixel passes per second and the peak
resident memory of the process, which should not grow with the collection
(one image and one block of features are in memory at a time).

    python scripts/bench_fit_collection.py --images 2 8 32 --megapixels 1
    python scripts/bench_fit_collection.py --executor dask --workers 2   # the client's memory only
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_collection(folder: Path, n_images: int, megapixels: float, source: np.ndarray) -> None:
    side = np.sqrt(megapixels * 1e6 / 12)
    base = cv2.resize(source, (int(round(4 * side)), int(round(3 * side))), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for number in range(n_images):
        shifted = np.roll(base, (int(rng.integers(base.shape[0])), int(rng.integers(base.shape[1]))), axis=(0, 1))
        noisy = np.clip(shifted + rng.normal(0, 6, shifted.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"scan{number:03d}.png"), noisy)


def run_fit(folder: Path, args: argparse.Namespace) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) and the last output line of one ``segment fit --all-pixels`` process."""
    command = [
        sys.executable, "-m", "segment", "fit", str(folder), "-o", str(folder / "model.npz"), "--all-pixels",
        "-k", "8", "--max-iter", str(args.passes), "--tol", "0", "--executor", args.executor,
    ]
    if args.executor == "dask":
        command += ["--workers", str(args.workers)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    out = child.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"segment fit failed: {child.stderr.read()}")
    return seconds, usage.ru_maxrss / 1024, out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--megapixels", type=float, default=1.0)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--executor", choices=["local", "dask"], default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--photo", type=Path, default=ROOT / "sample_images" / "coffee.jpg")
    args = parser.parse_args()
    source = cv2.imread(str(args.photo))
    print(f"segment fit --all-pixels, K = 8, {args.passes} EM passes, {args.megapixels} MP per image, executor {args.executor}")
    print("| images | pixels | seconds | Mpixel passes/s | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n_images in args.images:
            folder = Path(tmp) / f"c{n_images}"
            write_collection(folder, n_images, args.megapixels, source)
            seconds, rss, line = run_fit(folder, args)
            pixels = int(line.split(" fitted on ")[1].split(" pixels")[0])
            print(f"| {n_images} | {pixels:,} | {seconds:.1f} | {pixels * args.passes / seconds / 1e6:.2f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
