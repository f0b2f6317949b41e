"""One mixture for a whole collection of images (``segment fit``), so that a label id is one class everywhere.

:func:`fit_shared_model` samples the same number of pixels from every image
(every page of a multi-page TIFF), builds the features that
:func:`segment.segment_image` would build with the same settings, and fits
one :class:`segment.gmm.Mixture` on them. ``segment batch --model``
then labels every image with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segment.batch.discover import find_images
from segment.batch.errors import BatchError
from segment.batch.task import one_line
from segment.config import SegmentConfig
from segment.progress import NullProgress, Progress
from segment.segment_file import file_pages

if TYPE_CHECKING:
    import numpy as np


@dataclass
class FitResult:
    """The outcome of :func:`fit_shared_model`.

    Attributes
    ----------
    model : Mixture or None
        The fitted model (None when no image could be read).
    images : int
        Images (pages) sampled.
    pixels : int
        Pixels in the sample.
    failed : list of (str, str)
        (input, one-line cause) of each image that could not be used.
    """

    model: Any
    images: int
    pixels: int
    failed: list[tuple[str, str]] = field(default_factory=list)


def fit_shared_model(
    inputs: Iterable[str | os.PathLike],
    config: SegmentConfig | None = None,
    *,
    patterns: Sequence[str] | None = None,
    recursive: bool = False,
    progress: Progress | None = None,
) -> FitResult:
    """Fit one mixture on pixels sampled from many images, for consistent labels across them.

    Every image (every page of a multi-page TIFF) contributes the same
    number of pixels, ``config.fit_sample / n_images`` (a jittered grid, so
    each part of an image is represented by its area); ``fit_sample=0`` takes
    every pixel. Features are those of :func:`segment.segment_image` with the
    same settings, so the model can label any of the images, or others like
    them. Use ``position_weight=0`` for classes defined by colour alone.

    Parameters
    ----------
    inputs : iterable of path-like
        Image files and folders (searched with ``patterns`` and ``recursive``).
    config : SegmentConfig, optional
        Model and feature settings.
    patterns, recursive
        See :func:`segment.batch.find_images`.
    progress : Progress, optional
        Told the number of images and each one read.

    Returns
    -------
    FitResult
        ``model.metadata_`` records the feature settings and the sample.

    Raises
    ------
    BatchError
        An input that does not exist, or no image at all.
    ValueError
        Settings that do not fit the sample (more components than pixels).
    """
    import numpy as np

    from segment import io, preprocess, sampling
    from segment.features import FeatureSpec
    from segment.pipeline import fit_model, numba_threads

    cfg = config if config is not None else SegmentConfig()
    progress = progress if progress is not None else NullProgress()
    sources: list[tuple[Path, str, int | None]] = []
    for entry in inputs:
        path = Path(entry)
        if path.is_dir():
            for found in find_images(path, patterns=patterns, recursive=recursive):
                sources.extend(_pages(found, found.relative_to(path).as_posix()))
        elif path.exists():
            sources.extend(_pages(path, str(path)))
        else:
            raise BatchError(f"{path}: no such file or folder")
    if not sources:
        raise BatchError("no image to fit on")
    quota = math.ceil(cfg.fit_sample / len(sources)) if cfg.fit_sample else 0
    samples: list[np.ndarray] = []
    failed: list[tuple[str, str]] = []
    width: int | None = None
    progress.start(len(sources), "sampling")
    try:
        for number, (path, name, page) in enumerate(sources):
            label = name if page is None else f"{name} [page {page + 1}]"
            try:
                pixels = io.load_page(path, page or 0, max_pixels=cfg.max_pixels)
                pixels = preprocess.denoise(preprocess.downscale(pixels, cfg.max_side), cfg.denoise, cfg.denoise_size)
                alpha = pixels[:, :, 3] if pixels.ndim == 3 and pixels.shape[2] == 4 else None
                spec = FeatureSpec.for_image(pixels, cfg.color_space, cfg.position_weight)
                flat = sampling.fit_sample(pixels.shape[:2], alpha, quota, np.random.default_rng(cfg.seed + number))
                sample = spec.pixel_features(pixels, flat)
                if width is not None and sample.shape[1] != width:
                    raise ValueError(
                        f"gives {sample.shape[1]} features but the images before it give {width} "
                        "(greyscale and colour images together: use --color-space gray)"
                    )
                width = sample.shape[1]
                samples.append(sample)
            except (io.SegmentError, ValueError, OSError, MemoryError) as exc:
                failed.append((label, one_line(exc, path)))
            progress.advance()
    finally:
        progress.stop()
    if not samples:
        return FitResult(model=None, images=0, pixels=0, failed=failed)
    sample = np.concatenate(samples)
    with numba_threads(cfg.n_jobs):
        model = fit_model(sample, spec.n_colour, cfg)
    model.metadata_ = dict(model.metadata_, fitted_on={"images": len(samples), "pixels": int(len(sample))}, settings=cfg.to_dict())
    return FitResult(model=model, images=len(samples), pixels=int(len(sample)), failed=failed)


def _pages(path: Path, name: str) -> list[tuple[Path, str, int | None]]:
    return [(path, name, page) for page, _ in file_pages(path)]
