"""First use and start-up of the `segment` command: empty Numba cache, then warm, against a reference checkout.

Runs ``segment image`` on a 0.5-megapixel photo (astronaut.jpg enlarged) in
fresh processes:

- first use: an empty ``NUMBA_CACHE_DIR``, so every kernel the run needs is
  compiled (wall and CPU seconds);
- warm: the same command again with that cache filled (median of ``--repeats``).

Each version's Python files are compiled to bytecode first, as ``pip install``
does, so that neither run pays for compiling them.

With ``--reference DIR`` (a checkout of another version of this repository,
e.g. ``git worktree add /tmp/before <commit>``) the same runs are made with
that version's package first on ``PYTHONPATH``, alternating with this one, so
both see the same machine load. Prints a table and writes JSON::

    python scripts/bench_startup.py --reference /tmp/before --json startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys; from segment.cli import run; sys.argv = ['segment', *sys.argv[1:]]; run()"


def make_photo(path: Path, megapixels: float = 0.5) -> None:
    """Write astronaut.jpg resized to about ``megapixels`` as a PNG."""
    photo = cv2.imread(str(ROOT / "sample_images" / "astronaut.jpg"))
    scale = (megapixels * 1e6 / (photo.shape[0] * photo.shape[1])) ** 0.5
    size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    cv2.imwrite(str(path), cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC))


def compile_bytecode(tree: Path) -> None:
    """Compile the package's Python files to bytecode, as ``pip install`` does."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "segment")], check=True)


def timed_run(tree: Path, image: Path, out: Path, cache: Path) -> dict[str, float]:
    """Run ``segment image`` from ``tree`` in a fresh process; wall and CPU seconds (user + system)."""
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode (compile_bytecode)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # Run in the tree: "python -c" puts the working directory first on sys.path.
    subprocess.run([sys.executable, "-c", CLI, "image", str(image), "-o", str(out), "-q"], env=env, cwd=tree, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="checkout of another version to compare with")
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per version (median reported)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    trees = {"this version": ROOT}
    if args.reference:
        trees["reference"] = args.reference.resolve()
    results: dict[str, dict] = {name: {"warm": []} for name in trees}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        image = folder / "photo.png"
        make_photo(image)
        for name, tree in trees.items():
            compile_bytecode(tree)
            cache = folder / ("cache-" + name.replace(" ", "-"))
            results[name]["cache"] = cache
            results[name]["first_use"] = timed_run(tree, image, folder / "out", cache)
        for _ in range(args.repeats):
            for name, tree in trees.items():
                results[name]["warm"].append(timed_run(tree, image, folder / "out", results[name]["cache"]))
    report = {}
    for name, result in results.items():
        warm = result["warm"]
        report[name] = {
            "first_use_wall_s": result["first_use"]["wall_s"],
            "first_use_cpu_s": result["first_use"]["cpu_s"],
            "warm_wall_s_median": statistics.median(r["wall_s"] for r in warm),
            "warm_cpu_s_median": statistics.median(r["cpu_s"] for r in warm),
        }
    print(f"segment image, {image.name} 0.5 MP, {os.cpu_count()} CPUs")
    print("| version | first use wall s | first use CPU s | warm wall s (median) | warm CPU s (median) |")
    print("|---|---:|---:|---:|---:|")
    for name, row in report.items():
        print(f"| {name} | {row['first_use_wall_s']:.1f} | {row['first_use_cpu_s']:.1f} | "
              f"{row['warm_wall_s_median']:.2f} | {row['warm_cpu_s_median']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
