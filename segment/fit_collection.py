"""One mixture for a whole collection of images (``segment fit``), so that a label id is one class everywhere.

:func:`fit_shared_model` samples the same number of pixels from every image
(every page of a multi-page TIFF), builds the features that
:func:`segment.segment_image` would build with the same settings, and fits
one :class:`segment.gmm.Mixture` on them. With ``all_pixels`` it
then runs exact EM over every pixel of every image from there
(:func:`fit_all_pixels`): one image at a time on this machine, or next to
the images on Dask workers, so that memory does not grow with the
collection. ``segment batch --model`` then labels every image with it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segment.batch.discover import find_images
from segment.batch.errors import BatchError
from segment.batch.task import one_line
from segment.config import SegmentConfig
from segment.progress import NullProgress, Progress
from segment.segment_file import file_pages

if TYPE_CHECKING:
    from segment.features import FeatureSpec

# Pixels whose features are built at once in an all-pixel pass (about 20 MB of float32 at D = 5).
BLOCK_PIXELS = 1 << 20


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
        Pixels fitted on: the sample, or with ``all_pixels`` every pixel.
    failed : list of (str, str)
        (input, one-line cause) of each image that could not be used.
    passes : int
        EM passes over every pixel (0 without ``all_pixels``).
    """

    model: Any
    images: int
    pixels: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    passes: int = 0


def fit_shared_model(
    inputs: Iterable[str | os.PathLike],
    config: SegmentConfig | None = None,
    *,
    patterns: Sequence[str] | None = None,
    recursive: bool = False,
    progress: Progress | None = None,
    all_pixels: bool = False,
    client: Any = None,
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
        Told the number of images and each one read (in every pass).
    all_pixels : bool
        Then run exact EM over every pixel of every image, started from the
        sample's fit (:func:`fit_all_pixels`).
    client : distributed.Client, optional
        With ``all_pixels``: run the E-step on this Dask cluster's workers.

    Returns
    -------
    FitResult
        ``model.metadata_`` records the feature settings and what was fitted on.

    Raises
    ------
    BatchError
        An input that does not exist, or no image at all.
    ValueError
        Settings that do not fit the sample (more components than pixels).
    """
    from segment import io, sampling
    from segment import threads
    from segment.pipeline import fit_model

    cfg = config if config is not None else SegmentConfig()
    progress = progress if progress is not None else NullProgress()
    sources = _sources(inputs, patterns, recursive)
    quota = math.ceil(cfg.fit_sample / len(sources)) if cfg.fit_sample else 0
    samples: list[np.ndarray] = []
    used: list[tuple[Path, int]] = []
    failed: list[tuple[str, str]] = []
    n_pixels = 0
    width: int | None = None
    progress.start(len(sources), "sampling")
    try:
        for number, (path, name, page) in enumerate(sources):
            label = name if page is None else f"{name} [page {page + 1}]"
            try:
                pixels, alpha, spec = read_for_fit(path, page or 0, cfg)
                flat = sampling.fit_sample(pixels.shape[:2], alpha, quota, np.random.default_rng(cfg.seed + number))
                sample = spec.pixel_features(pixels, flat)
                if width is not None and sample.shape[1] != width:
                    raise ValueError(
                        f"gives {sample.shape[1]} features but the images before it give {width} "
                        "(greyscale and colour images together: use --color-space gray)"
                    )
                width = sample.shape[1]
                samples.append(sample)
                used.append((path, page or 0))
                n_pixels += pixels.shape[0] * pixels.shape[1] if alpha is None else int(np.count_nonzero(alpha))
            except (io.SegmentError, ValueError, OSError, MemoryError) as exc:
                failed.append((label, one_line(exc, path)))
            progress.advance()
    finally:
        progress.stop()
    if not samples:
        return FitResult(model=None, images=0, pixels=0, failed=failed)
    sample = np.concatenate(samples)
    with threads.limited(cfg.n_jobs):
        model = fit_model(sample, spec.n_colour, cfg)
    fitted_on: dict[str, Any] = {"images": len(samples), "pixels": int(len(sample))}
    if all_pixels:
        with threads.limited(cfg.n_jobs):
            model = fit_all_pixels(model, used, cfg, client=client, progress=progress)
        fitted_on = {"images": len(samples), "pixels": n_pixels, "all_pixels": True, "passes": model.n_iter_}
    model.metadata_ = dict(model.metadata_, fitted_on=fitted_on, settings=cfg.to_dict())
    return FitResult(
        model=model, images=len(samples), pixels=fitted_on["pixels"], failed=failed, passes=fitted_on.get("passes", 0)
    )


def fit_all_pixels(
    start: Any,
    images: Sequence[tuple[Path, int]],
    config: SegmentConfig,
    *,
    client: Any = None,
    progress: Progress | None = None,
) -> Any:
    """Exact EM over every pixel of ``images``, started from the mixture ``start``.

    Each EM iteration is one pass over the images. Locally
    (:func:`segment.gmm.streaming.fit_chunks`) the images are read again in
    every pass, one at a time, and their features built ``BLOCK_PIXELS`` at
    a time, so memory holds one decoded image and one block whatever the
    collection's size. On Dask (:func:`segment.gmm.streaming.fit_dask`) each
    worker reads its images once and keeps their features; only the
    parameters and the K x D x D sufficient statistics travel. Both equal
    EM in memory on the concatenated features of all pixels from the same
    start (up to rounding).

    Parameters
    ----------
    start : Mixture
        Fitted on features of these images (e.g. by :func:`fit_shared_model`).
    images : sequence of (path, page)
    config : SegmentConfig
        The feature settings (as for ``start``) and EM's ``tol``, ``max_iter``, ``reg_covar``.
    client : distributed.Client, optional
        Run the E-step on its workers.
    progress : Progress, optional
        Told each image of each local pass.

    Returns
    -------
    Mixture
        Components ordered as the pipeline orders them, ``metadata_`` of ``start``.

    Examples
    --------
    >>> import numpy as np, tempfile, segment
    >>> from pathlib import Path
    >>> from segment.io import write_png
    >>> folder = Path(tempfile.mkdtemp())
    >>> image = np.zeros((8, 8), np.uint8); image[:, 4:] = 200; image[::2, ::3] += 20
    >>> _ = write_png(folder / "a.png", image)
    >>> cfg = segment.SegmentConfig(n_components=2, position_weight=0, fit_sample=16)
    >>> start = fit_shared_model([folder], cfg).model
    >>> model = fit_all_pixels(start, [(folder / "a.png", 0)], cfg)
    >>> np.round(model.means_.ravel()).tolist()
    [2.0, 79.0]
    """
    from segment.gmm import ConvergenceWarning, Mixture
    from segment.gmm.streaming import fit_dask, fit_chunks

    progress = progress if progress is not None else NullProgress()
    model = Mixture(
        start.n_components,
        covariance_type=config.covariance_type,
        tol=config.tol,
        reg_covar=config.reg_covar,
        max_iter=config.max_iter,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: the model is still usable
        if client is None:
            fit_chunks(model, lambda: _all_blocks(images, config, progress))
        else:
            import dask

            fit_dask(model, [dask.delayed(image_features)(path, page, config) for path, page in images], client)
    model.permute_components(np.lexsort(model.means_.T[::-1]))
    model.metadata_ = dict(getattr(start, "metadata_", {}))
    return model


def read_for_fit(path: Path, page: int, config: SegmentConfig) -> tuple[np.ndarray, np.ndarray | None, FeatureSpec]:
    """One image (page) as :func:`segment.segment_image` preprocesses it, its alpha (or None) and feature spec.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from pathlib import Path
    >>> from segment.io import write_png
    >>> path = Path(tempfile.mkdtemp()) / "a.png"
    >>> _ = write_png(path, np.zeros((4, 6, 3), np.uint8))
    >>> pixels, alpha, spec = read_for_fit(path, 0, SegmentConfig())
    >>> pixels.shape, alpha, spec.names
    ((4, 6, 3), None, ['L', 'a', 'b', 'x', 'y'])
    """
    from segment import io, preprocess
    from segment.features import FeatureSpec

    pixels = io.load_page(path, page, max_pixels=config.max_pixels)
    pixels = preprocess.denoise(preprocess.downscale(pixels, config.max_side), config.denoise, config.denoise_size)
    alpha = pixels[:, :, 3] if pixels.ndim == 3 and pixels.shape[2] == 4 else None
    return pixels, alpha, FeatureSpec.for_image(pixels, config.color_space, config.position_weight)


def image_blocks(path: Path, page: int, config: SegmentConfig) -> Iterator[np.ndarray]:
    """Features of the opaque pixels of one image, in raster order, ``BLOCK_PIXELS`` (rounded to rows) at a time.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from pathlib import Path
    >>> from segment.io import write_png
    >>> path = Path(tempfile.mkdtemp()) / "a.png"
    >>> _ = write_png(path, np.zeros((4, 6), np.uint8))
    >>> [block.shape for block in image_blocks(path, 0, SegmentConfig(position_weight=0))]
    [(24, 1)]
    """
    pixels, alpha, spec = read_for_fit(path, page, config)
    height, width = pixels.shape[:2]
    rows = max(1, BLOCK_PIXELS // width)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        block = spec.band_features(pixels, top, bottom)
        if alpha is not None:
            block = block[alpha[top:bottom].reshape(-1) > 0]
        if len(block):
            yield block


def image_features(path: Path, page: int, config: SegmentConfig) -> np.ndarray:
    """Features of every opaque pixel of one image, (N, D) float32 (what a Dask worker keeps).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from pathlib import Path
    >>> from segment.io import write_png
    >>> path = Path(tempfile.mkdtemp()) / "a.png"
    >>> _ = write_png(path, np.zeros((4, 6), np.uint8))
    >>> image_features(path, 0, SegmentConfig()).shape
    (24, 3)
    """
    blocks = list(image_blocks(path, page, config))
    return np.concatenate(blocks) if blocks else np.empty((0, 0), np.float32)


def _all_blocks(images: Sequence[tuple[Path, int]], config: SegmentConfig, progress: Progress) -> Iterator[np.ndarray]:
    progress.start(len(images), "EM pass")
    try:
        for path, page in images:
            yield from image_blocks(path, page, config)
            progress.advance()
    finally:
        progress.stop()


def _sources(inputs: Iterable[str | os.PathLike], patterns: Sequence[str] | None, recursive: bool) -> list[tuple[Path, str, int | None]]:
    """(path, name, page) of every image page among ``inputs`` (files and folders)."""
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
    return sources


def _pages(path: Path, name: str) -> list[tuple[Path, str, int | None]]:
    return [(path, name, page) for page, _ in file_pages(path)]
