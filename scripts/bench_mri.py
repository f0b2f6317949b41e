"""Brain tissue classes on the MNI152 template: segment against DIPY and ANTs Atropos, side by side.

The phantom comes from nilearn's wheel (no download): the MNI152 2009 T1
template, its grey- and white-matter probability maps and its brain mask.
The truth is the argmax of (CSF, GM, WM) inside the mask, CSF taken as
``clip(1 - GM - WM, 0, 1)``. Each input volume is the whole-head template
times a smooth random bias field (``1 + a f``, ``f`` a cubic-spline
upsampling of 4 x 4 x 4 Gaussian values scaled to max |f| = 1 inside the
brain, so the field spans 1 - a .. 1 + a there) with Rician noise of
sigma = level x the mean white-matter intensity; it is written as NIfTI
and read back. Every method gets the same volume and the same brain mask:

- segment: ``segment.segment_volume(volume, mask=mask, n_components=3)``
  (classes mode: bias field in EM, 3D Potts prior), one row per ``--segment``
  setting list (default: the defaults);
- dipy: ``TissueClassifierHMRF().classify(skull-stripped volume, 3, beta=0.1,
  max_iter=10)`` (it takes no mask; zero voxels are its background class);
- atropos: ``ants.atropos(a, x=mask, i="kmeans[3]", m="[0.2,1x1x1]", c="[5,0]")``;
- atropos+n4: the same after ``ants.n4_bias_field_correction(a, mask=mask)``,
  as ANTs users run it.

Each method's classes are mapped to CSF < GM < WM by their mean input
intensity inside the mask; grey and white Dice are measured inside the mask.
Seconds are wall-clock per volume, the segmentation call only (reading the
NIfTI is shared), after one untimed warm-up call per method (Numba's
compilation); every tool at its default thread count.

Usage::

    pip install -e ".[bench]"
    python scripts/bench_mri.py                      # 2 mm, bias 20/40 %, noise 3/6/9 %
    python scripts/bench_mri.py --methods segment --segment "" --segment covariance_type=full --seed 1
    python scripts/bench_mri.py --resolution 1 --json mri.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_documents import parse_settings  # noqa: E402

# The benchmark extra (pyproject's "bench"): distribution -> module.
BENCH_EXTRA = {"nilearn": "nilearn", "dipy": "dipy", "antspyx": "ants"}
METHODS = ("segment", "dipy", "atropos", "atropos+n4")
TISSUES = ("csf", "grey", "white")
FIELD_NODES = 4
DIPY_BETA, DIPY_ITERATIONS = 0.1, 10
ATROPOS_MRF, ATROPOS_CONVERGENCE = "[0.2,1x1x1]", "[5,0]"


def require_bench_extra() -> None:
    """Exit with one line when a package of the benchmark extra is missing."""
    missing = [name for name, module in BENCH_EXTRA.items() if importlib.util.find_spec(module) is None]
    if missing:
        sys.exit(f"error: bench_mri.py needs the bench extra ({', '.join(missing)} missing): pip install -e '.[bench]'")


# ----------------------------------------------------------------- phantom
@dataclass
class Brain:
    """The clean template with its tissue truth."""

    t1: np.ndarray  # (X, Y, Z) float32, the whole head
    mask: np.ndarray  # (X, Y, Z) bool, the brain
    truth: np.ndarray  # (X, Y, Z) uint8: 0 outside, 1 CSF, 2 GM, 3 WM
    affine: np.ndarray
    spacing: tuple[float, float, float]


def tissue_truth(grey: np.ndarray, white: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Argmax of (CSF, GM, WM) probabilities inside ``mask`` (1, 2, 3; 0 outside), CSF = 1 - GM - WM.

    Examples
    --------
    >>> tissue_truth(np.array([0.6, 0.1, 0.2]), np.array([0.3, 0.8, 0.1]), np.array([True, True, False])).tolist()
    [2, 3, 0]
    """
    csf = np.clip(1.0 - grey - white, 0.0, 1.0)
    truth = (np.argmax(np.stack([csf, grey, white]), axis=0) + 1).astype(np.uint8)
    truth[~mask] = 0
    return truth


def load_brain(resolution: int) -> Brain:
    """nilearn's MNI152 2009 template at ``resolution`` mm, with its tissue truth."""
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=resolution)
    grey = datasets.load_mni152_gm_template(resolution=resolution).get_fdata()
    white = datasets.load_mni152_wm_template(resolution=resolution).get_fdata()
    mask = datasets.load_mni152_brain_mask(resolution=resolution).get_fdata() > 0.5
    spacing = tuple(float(s) for s in t1.header.get_zooms()[:3])
    return Brain(t1.get_fdata().astype(np.float32), mask, tissue_truth(grey, white, mask), t1.affine, spacing)


def smooth_field(shape: tuple[int, ...], amplitude: float, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``1 + amplitude * f``: f a smooth random field with max |f| = 1 inside ``mask``, float32."""
    coarse = rng.standard_normal((FIELD_NODES,) * 3)
    smooth = ndimage.zoom(coarse, [size / FIELD_NODES for size in shape], order=3, mode="nearest")
    smooth -= smooth[mask].mean()
    return (1.0 + amplitude * smooth / np.abs(smooth[mask]).max()).astype(np.float32)


def corrupted(brain: Brain, amplitude: float, noise: float, seed: int) -> np.ndarray:
    """The template under a bias field of ``amplitude`` with Rician noise of ``noise`` x the white-matter mean."""
    rng = np.random.default_rng(seed)
    biased = brain.t1 * smooth_field(brain.t1.shape, amplitude, brain.mask, rng)
    sigma = noise * float(brain.t1[brain.truth == 3].mean())
    real = biased + rng.normal(0.0, sigma, biased.shape)
    imaginary = rng.normal(0.0, sigma, biased.shape)
    return np.sqrt(real * real + imaginary * imaginary).astype(np.float32)


# ----------------------------------------------------------------- methods
def by_segment(volume, mask, spacing, settings):
    import segment

    # nibabel's (x, y, z) axes taken as (Z, H, W): with isotropic voxels their names do not matter.
    return segment.segment_volume(volume, mask=mask, spacing=spacing, n_components=3, **settings).labels


def by_dipy(volume, mask, spacing):
    from dipy.segment.tissue import TissueClassifierHMRF

    stripped = np.where(mask, volume, 0).astype(np.float64)
    _, labels, _ = TissueClassifierHMRF(verbose=False).classify(stripped, 3, DIPY_BETA, max_iter=DIPY_ITERATIONS)
    return labels


def _atropos(volume, mask, spacing, n4: bool):
    import ants

    image = ants.from_numpy(volume.astype(np.float32), spacing=spacing)
    brain = ants.from_numpy(mask.astype(np.float32), spacing=spacing)
    if n4:
        image = ants.n4_bias_field_correction(image, mask=brain)
    result = ants.atropos(a=image, x=brain, i="kmeans[3]", m=ATROPOS_MRF, c=ATROPOS_CONVERGENCE, v=0)
    return result["segmentation"].numpy()


def by_atropos(volume, mask, spacing):
    return _atropos(volume, mask, spacing, n4=False)


def by_atropos_n4(volume, mask, spacing):
    return _atropos(volume, mask, spacing, n4=True)


ANCHORS = {"dipy": by_dipy, "atropos": by_atropos, "atropos+n4": by_atropos_n4}


def runners(methods: list[str], segment_settings: list[str]) -> dict:
    """Row name -> function(volume, mask, spacing) -> labels, in the order of ``methods``."""
    out = {}
    for name in methods:
        if name != "segment":
            out[name] = ANCHORS[name]
            continue
        for text in segment_settings:
            settings = parse_settings([pair for pair in text.split(",") if pair])
            row = "segment" if not settings else f"segment {text}"
            out[row] = lambda volume, mask, spacing, settings=settings: by_segment(volume, mask, spacing, settings)
    return out


# ----------------------------------------------------------------- scoring
def tissues_by_intensity(labels: np.ndarray, volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Labels inside ``mask`` renumbered 1, 2, 3 by their mean intensity (CSF < GM < WM); others 0.

    Examples
    --------
    >>> labels = np.array([5, 5, 2, 7, 0]); volume = np.array([9.0, 8.0, 1.0, 4.0, 3.0])
    >>> tissues_by_intensity(labels, volume, labels > 0).tolist()
    [3, 3, 1, 2, 0]
    """
    inside = labels[mask].astype(np.int64)
    present = np.unique(inside)
    sums = np.bincount(inside, weights=volume[mask], minlength=present.max() + 1)
    counts = np.bincount(inside, minlength=present.max() + 1)
    order = present[np.argsort(sums[present] / counts[present], kind="stable")]
    rank = np.zeros(present.max() + 1, dtype=np.uint8)
    rank[order] = np.minimum(np.arange(1, len(order) + 1), len(TISSUES))
    out = np.zeros(labels.shape, dtype=np.uint8)
    out[mask] = rank[inside]
    return out


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """2 |A & B| / (|A| + |B|) of two boolean maps (1 when both are empty).

    Examples
    --------
    >>> dice(np.array([1, 1, 0, 0], bool), np.array([1, 0, 0, 0], bool))
    0.6666666666666666
    """
    total = np.count_nonzero(predicted) + np.count_nonzero(truth)
    return 1.0 if total == 0 else 2.0 * np.count_nonzero(predicted & truth) / total


def score(labels: np.ndarray, volume: np.ndarray, brain: Brain) -> dict[str, float]:
    tissues = tissues_by_intensity(labels, volume, brain.mask)
    return {name: dice(tissues == k, brain.truth == k) for k, name in enumerate(TISSUES, start=1) if name != "csf"}


# ----------------------------------------------------------------- the run
def run(args: argparse.Namespace) -> dict:
    import nibabel

    brain = load_brain(args.resolution)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_mri_"))
    folder.mkdir(parents=True, exist_ok=True)
    methods = runners(args.methods.split(","), args.segment or [""])
    for run_method in methods.values():  # warm-up (Numba compiles on first use), untimed
        run_method(brain.t1[::4, ::4, ::4], brain.mask[::4, ::4, ::4], brain.spacing)
    rows = []
    conditions = [(a, n) for a in args.bias for n in args.noise]
    for index, (amplitude, noise) in enumerate(conditions):
        path = folder / f"mni152_{args.resolution}mm_bias{round(100 * amplitude)}_noise{round(100 * noise)}.nii.gz"
        nibabel.save(nibabel.Nifti1Image(corrupted(brain, amplitude, noise, 1000 * args.seed + index), brain.affine), path)
        volume = np.asarray(nibabel.load(path).dataobj, dtype=np.float32)
        for name, run_method in methods.items():
            start = time.perf_counter()
            labels = run_method(volume, brain.mask, brain.spacing)
            seconds = time.perf_counter() - start
            row = {"bias": amplitude, "noise": noise, "method": name, "seconds": seconds, **score(labels, volume, brain)}
            rows.append(row)
            print(f"bias {amplitude:.0%} noise {noise:.0%} {name}: grey {row['grey']:.3f} white {row['white']:.3f} "
                  f"{seconds:.1f} s", file=sys.stderr, flush=True)
    return {
        "resolution_mm": args.resolution,
        "shape": list(brain.t1.shape),
        "brain_voxels": int(brain.mask.sum()),
        "segment_settings": args.segment or [""],
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "inputs": str(folder),
        "rows": rows,
        "medians": medians(rows, list(methods)),
    }


def medians(rows: list[dict], methods: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for name in methods:
        mine = [row for row in rows if row["method"] == name]
        out[name] = {key: float(np.median([row[key] for row in mine])) for key in ("grey", "white", "seconds")}
    if "dipy" in out:
        for name in methods:
            out[name]["speed_vs_dipy"] = out["dipy"]["seconds"] / out[name]["seconds"]
    return out


def markdown(result: dict) -> str:
    lines = [
        "| bias | noise | " + " | ".join(f"{m} grey / white" for m in result["medians"]) + " |",
        "|---|---|" + "---:|" * len(result["medians"]),
    ]
    for amplitude, noise in dict.fromkeys((row["bias"], row["noise"]) for row in result["rows"]):
        cells = [
            f"{row['grey']:.3f} / {row['white']:.3f}"
            for row in result["rows"] if (row["bias"], row["noise"]) == (amplitude, noise)
        ]
        lines.append(f"| ±{amplitude:.0%} | {noise:.0%} | " + " | ".join(cells) + " |")
    lines += ["", "| method | grey Dice | white Dice | s / volume | speed × DIPY |", "|---|---:|---:|---:|---:|"]
    for name, m in result["medians"].items():
        speed = f"{m['speed_vs_dipy']:.1f}" if "speed_vs_dipy" in m else "–"
        lines.append(f"| {name} | {m['grey']:.3f} | {m['white']:.3f} | {m['seconds']:.1f} | {speed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=2, choices=(1, 2), help="template voxel size in mm")
    parser.add_argument("--bias", type=lambda s: [float(v) for v in s.split(",")], default=[0.2, 0.4])
    parser.add_argument("--noise", type=lambda s: [float(v) for v in s.split(",")], default=[0.03, 0.06, 0.09])
    parser.add_argument("--seed", type=int, default=2, help="seed of the fields and noise (settings were tuned on 1)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument(
        "--segment", action="append", metavar="SETTINGS",
        help='segment settings of one row, comma-separated (e.g. "covariance_type=full,smoothing=0"); repeat for more rows',
    )
    parser.add_argument("--keep", help="folder for the NIfTI inputs (default: a temporary folder)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    require_bench_extra()
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        sys.exit(f"error: unknown method(s) {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    result = run(args)
    print(markdown(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
