"""Peak memory and seconds of segment_volume on synthetic 128³ and 256³ volumes, each in a fresh process.

Each volume holds three intensity classes (a background, a shell and a core:
about 72 %, 20 % and 8 % of the voxels), a bias field of about ±25 % (a
polynomial in x, y and z) and Gaussian noise, stored as uint8 or int16. The
child process segments a small volume first (loading the cached kernels),
then the benchmark volume with the defaults of a volume (classes mode,
tied covariance, bias field, 6-neighbour Potts prior β 0.25) and K = 3; the
seconds of that call and the peak resident memory of the whole process
(VmHWM, imports and the input included) are reported, with the voxel
accuracy against the known classes.

Usage::

    python scripts/bench_volume.py                 # 128³ and 256³, uint8 and int16
    python scripts/bench_volume.py --sizes 128 --dtypes uint8
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench import PEAK_RSS_PRELUDE, peak_rss_mib  # noqa: E402

CHILD = """
import time, numpy as np, segment
segment.segment_volume(np.load({path!r})[:8, :32, :32], n_components=3)  # loads the cached kernels
volume = np.load({path!r})
start = time.perf_counter()
result = segment.segment_volume(volume, n_components=3)
seconds = time.perf_counter() - start
del volume
truth = np.load({truth!r})
accuracy = float((result.labels == truth).mean())
stages = " ".join(f"{{k}}={{v:.2f}}" for k, v in result.timings.items())
print("seconds", seconds, "accuracy", accuracy, "stages", stages)
"""


def synthetic_volume(side: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(volume, truth): three classes in concentric spheres under a smooth field, with noise."""
    rng = np.random.default_rng(seed)
    z, y, x = (((np.arange(side, dtype=np.float32) + 0.5) * 2 / side - 1).reshape(shape) for shape in
               ((side, 1, 1), (1, side, 1), (1, 1, side)))
    radius = np.sqrt(x * x + y * y + z * z)
    truth = (1 + (radius < 0.75) + (radius < 0.5)).astype(np.uint8)
    del radius
    field = (1 + 0.25 * x + 0.2 * z - 0.15 * y * y).astype(np.float32)
    levels = np.array([0, 60, 120, 180], dtype=np.float32) if dtype == "uint8" else np.array([0, 600, 1200, 1800], dtype=np.float32)
    volume = levels[truth] * field
    volume += rng.normal(0, levels[1] * 0.08, volume.shape).astype(np.float32)
    np.clip(volume, 0, 255 if dtype == "uint8" else 32767, out=volume)
    return volume.astype(dtype), truth


def run(side: int, dtype: str, folder: Path, timeout: float) -> dict:
    volume, truth = synthetic_volume(side, dtype)
    path, truth_path = folder / "volume.npy", folder / "truth.npy"
    np.save(path, volume)
    np.save(truth_path, truth)
    del volume, truth
    code = PEAK_RSS_PRELUDE + CHILD.format(path=str(path), truth=str(truth_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"error: {side}³ {dtype} child failed ({done.returncode}): {done.stderr[-2000:]}")
    words = done.stdout.split()
    return {
        "side": side,
        "dtype": dtype,
        "seconds": float(words[words.index("seconds") + 1]),
        "accuracy": float(words[words.index("accuracy") + 1]),
        "stages": done.stdout.split("stages", 1)[1].strip(),
        "peak_rss_mib": peak_rss_mib(done.stderr),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="volume sides (voxels)")
    parser.add_argument("--dtypes", nargs="+", default=["uint8", "int16"], choices=["uint8", "int16"])
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per child process")
    args = parser.parse_args(argv)
    import segment  # noqa: F401  (fills the Numba cache below before the children start)

    segment.segment_volume(synthetic_volume(24, "uint8")[0], n_components=3)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for side in args.sizes:
            for dtype in args.dtypes:
                row = run(side, dtype, Path(tmp), args.timeout)
                rows.append(row)
                print(f"{side}³ {dtype}: {row['seconds']:.1f} s, {row['peak_rss_mib']:.0f} MiB ({row['stages']})", file=sys.stderr)
    print("| volume | dtype | seconds | peak RSS (MiB) | voxel accuracy |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['side']}³ | {row['dtype']} | {row['seconds']:.1f} | {row['peak_rss_mib']:.0f} | {row['accuracy']:.4f} |")


if __name__ == "__main__":
    main()
