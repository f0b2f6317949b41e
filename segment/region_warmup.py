"""``python -m segment.region_warmup``: compile the region-stage kernels into Numba's cache (see :mod:`segment.precompile`)."""

from __future__ import annotations

import argparse

import numpy as np

from segment.config import MODES, SegmentConfig
from segment.pipeline import label_regions


def compile_region_kernels(mode: str) -> None:
    """Run the region stage of ``mode`` with default settings on a small made-up label map.

    The arrays have the types the pipeline passes, so every kernel the
    stage calls is compiled for the signatures it will be called with.
    """
    rng = np.random.default_rng(0)
    blocks = rng.integers(1, 5, size=(8, 8)).astype(np.int32)
    labels = np.ascontiguousarray(np.kron(blocks, np.ones((8, 8), np.int32)))
    colours = rng.normal(50.0, 20.0, size=(*labels.shape, 3)).astype(np.float32)
    label_regions(labels, colours, SegmentConfig(mode=mode), as_regions=mode == "regions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="regions", choices=MODES)
    compile_region_kernels(parser.parse_args().mode)


if __name__ == "__main__":
    main()
