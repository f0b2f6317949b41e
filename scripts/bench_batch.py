"""Measure `segment batch` on a mixed folder tree: failures, resume, kill and rerun, throughput, huge scans.

Builds, in a temporary folder, a tree of 200 files from the BSDS500 photos:
JPEG and PNG in colour and grey, 16-bit TIFF (grey and colour), a multi-page
TIFF and two corrupt files. Then, each step with the CLI in a fresh process:

1. ``segment batch`` over the tree (2 workers): exit code, counts, seconds;
2. the same command again: every image skipped, seconds and ratio to step 1;
3. a fresh run killed (SIGKILL to the whole process group) halfway, checked
   for partial files, then rerun to completion;
4. throughput on the 200 BSDS train photos alone, in images per second;
5. one synthetic 200-megapixel scan under the default memory budget: seconds
   and peak resident memory of the process tree.

Prints a markdown table and writes the figures as JSON::

    python scripts/bench_batch.py --bsds ../shared/bsds500 --json batch.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile

SEGMENT = [sys.executable, "-m", "segment"]


def build_corpus(bsds: Path, root: Path) -> dict[str, int]:
    """Write the 200-file mixed tree under ``root``; return how many files of each kind."""
    photos = sorted((bsds / "images" / "train").glob("*.jpg")) + sorted((bsds / "images" / "val").glob("*.jpg"))
    photos = iter(photos)
    kinds: dict[str, int] = {}

    def put(relative: str, kind: str, write) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        kinds[kind] = kinds.get(kind, 0) + 1

    def next_photo() -> tuple[str, np.ndarray]:
        path = next(photos)
        return path.stem, cv2.imread(str(path), cv2.IMREAD_COLOR)

    for i in range(110):
        source = next(photos)
        put(f"photos/jpeg/{i // 50}/{source.name}", "jpeg colour", lambda p, s=source: shutil.copyfile(s, p))
    for _ in range(10):
        name, bgr = next_photo()
        put(f"photos/png/{name}.png", "png colour", lambda p, b=bgr: cv2.imwrite(str(p), b))
    for _ in range(30):
        name, bgr = next_photo()
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        put(f"scans/grey/{name}.png", "png grey", lambda p, g=grey: cv2.imwrite(str(p), g))
    for _ in range(25):
        name, bgr = next_photo()
        grey16 = _sixteen_bit(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
        put(f"scans/tiff16/{name}.tif", "tiff 16-bit grey", lambda p, g=grey16: tifffile.imwrite(p, g))
    for _ in range(22):
        name, bgr = next_photo()
        rgb16 = _sixteen_bit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        put(f"scans/tiff16/{name}_rgb.tif", "tiff 16-bit colour", lambda p, g=rgb16: tifffile.imwrite(p, g, photometric="rgb"))
    pages = [cv2.cvtColor(next_photo()[1], cv2.COLOR_BGR2GRAY)[:320, :320] for _ in range(3)]
    put("scans/stack.tif", "tiff multi-page (3 pages)", lambda p: tifffile.imwrite(p, np.stack(pages)))
    truncated = next(photos).read_bytes()[:5000]
    put("photos/broken/truncated.jpg", "corrupt", lambda p: p.write_bytes(truncated))
    put("scans/grey/noise.png", "corrupt", lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)))
    return kinds


def _sixteen_bit(image: np.ndarray) -> np.ndarray:
    """An 8-bit image spread over the 16-bit range, with sub-8-bit detail so the precision matters."""
    noise = np.random.default_rng(1).integers(0, 257, size=image.shape)
    return (image.astype(np.uint32) * 257 + noise).clip(0, 65535).astype(np.uint16)


def run(args: list[str], **kwargs) -> tuple[int, float]:
    """Run the CLI in a fresh process; return its exit code and wall seconds."""
    start = time.perf_counter()
    code = subprocess.run(SEGMENT + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs).returncode
    return code, time.perf_counter() - start


def counts(outdir: Path) -> dict[str, int]:
    rows = json.loads((outdir / "summary.json").read_text())["images"]
    found: dict[str, int] = {}
    for row in rows:
        found[row["status"]] = found.get(row["status"], 0) + 1
    return found


def partial_files(outdir: Path) -> list[Path]:
    """Temporary files, and images with some outputs but no summary (their completion marker)."""
    leftovers = [p for p in outdir.rglob("*") if p.is_file() and ".tmp" in p.name]
    for labels in outdir.rglob("*_labels.png"):
        if cv2.imread(str(labels), cv2.IMREAD_UNCHANGED) is None:
            leftovers.append(labels)
    return leftovers


def kill_halfway(tree: Path, outdir: Path, total: int) -> dict[str, object]:
    """Start a batch, SIGKILL its whole process group once half the images are done, rerun."""
    process = subprocess.Popen(
        SEGMENT + ["batch", str(tree), "-o", str(outdir), "--recursive", "--workers", "2", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while process.poll() is None:
        done = sum(1 for p in outdir.rglob("*.json") if p.name != "summary.json")
        if done >= total // 2:
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait()
    done_at_kill = sum(1 for p in outdir.rglob("*.json") if p.name != "summary.json")
    # A killed worker leaves its temporary files; a rerun sweeps them before it starts.
    temporary_after_kill = len([p for p in outdir.rglob("*") if ".tmp" in p.name])
    code, seconds = run(["batch", str(tree), "-o", str(outdir), "--recursive", "--workers", "2", "-q"])
    return {
        "done_when_killed": done_at_kill,
        "temporary_files_after_kill": temporary_after_kill,
        "rerun_exit_code": code,
        "rerun_seconds": round(seconds, 2),
        "rerun_counts": counts(outdir),
        "partial_files_after_rerun": [str(p) for p in partial_files(outdir)],
    }


def huge_scan(workdir: Path, megapixels: float) -> dict[str, object]:
    """Segment one synthetic scan of ``megapixels`` in a fresh process; report seconds and peak RSS."""
    source = cv2.imread(str(Path(__file__).resolve().parents[1] / "sample_images" / "coffee.jpg"))
    height = int(round((megapixels * 1e6 * source.shape[0] / source.shape[1]) ** 0.5))
    width = int(round(megapixels * 1e6 / height))
    scan = cv2.resize(source, (width, height), interpolation=cv2.INTER_LINEAR)
    folder = workdir / "huge"
    folder.mkdir()
    tifffile.imwrite(folder / "scan.tif", cv2.cvtColor(scan, cv2.COLOR_BGR2RGB), photometric="rgb")
    del scan, source
    command = SEGMENT + ["batch", str(folder), "-o", str(workdir / "huge_out"), "--workers", "1", "-q"]
    script = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        f"code = subprocess.run({command!r}).returncode; s = time.perf_counter() - t; "
        "print(code, s, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    summary = json.loads((workdir / "huge_out" / "summary.json").read_text())["images"][0]
    return {
        "pixels": width * height,
        "shape": [height, width],
        "exit_code": int(out[0]),
        "seconds": round(float(out[1]), 1),
        "peak_rss_mib": round(int(out[2]) / 1024),
        "tiled": summary.get("tiled"),
        "status": summary["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bsds", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "bsds500")
    parser.add_argument("--json", type=Path, help="Write the figures here as JSON.")
    parser.add_argument("--huge-mp", type=float, default=200.0, help="Megapixels of the huge scan (0 skips it).")
    args = parser.parse_args()

    results: dict[str, object] = {"cpu_cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="segment-batch-") as tmp:
        work = Path(tmp)
        tree = work / "tree"
        kinds = build_corpus(args.bsds, tree)
        results["corpus"] = kinds
        total_items = sum(kinds.values()) + 2  # the multi-page TIFF counts 3 pages

        batch = ["batch", str(tree), "-o", str(work / "out"), "--recursive", "--workers", "2", "-q"]
        code, first = run(batch)
        results["first_run"] = {"exit_code": code, "seconds": round(first, 2), "counts": counts(work / "out")}
        code, second = run(batch)
        results["second_run"] = {
            "exit_code": code,
            "seconds": round(second, 2),
            "counts": counts(work / "out"),
            "ratio_to_first": round(second / first, 3),
        }
        results["kill_and_rerun"] = kill_halfway(tree, work / "killed", total_items)

        photos = work / "bsds_train"
        shutil.copytree(args.bsds / "images" / "train", photos)
        code, seconds = run(["batch", str(photos), "-o", str(work / "bsds_out"), "--workers", "2", "-q"])
        n = counts(work / "bsds_out").get("done", 0)
        results["throughput"] = {
            "images": n,
            "exit_code": code,
            "seconds": round(seconds, 2),
            "images_per_second": round(n / seconds, 2),
        }
        if args.huge_mp > 0:
            results["huge_scan"] = huge_scan(work, args.huge_mp)

    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def report(results: dict) -> str:
    first, second, killed, speed = (results[k] for k in ("first_run", "second_run", "kill_and_rerun", "throughput"))
    lines = [
        "| measurement | result |",
        "|---|---|",
        f"| mixed tree, first run (2 workers) | exit {first['exit_code']}, {first['counts']}, {first['seconds']} s |",
        f"| same command again | exit {second['exit_code']}, {second['counts']}, {second['seconds']} s "
        f"({100 * second['ratio_to_first']:.1f} % of the first run) |",
        f"| killed halfway (SIGKILL), rerun | {killed['done_when_killed']} done at the kill; rerun exit "
        f"{killed['rerun_exit_code']}, {killed['rerun_counts']}, {killed['rerun_seconds']} s; "
        f"partial files after rerun: {len(killed['partial_files_after_rerun'])} |",
        f"| 200 BSDS train photos (481×321), 2 workers | {speed['images']} images in {speed['seconds']} s = "
        f"{speed['images_per_second']} images/s |",
    ]
    if "huge_scan" in results:
        huge = results["huge_scan"]
        lines.append(
            f"| {huge['pixels'] / 1e6:.0f}-megapixel RGB scan, default budget | {huge['status']}, "
            f"tiled={huge['tiled']}, {huge['seconds']} s, peak RSS {huge['peak_rss_mib']} MiB |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
