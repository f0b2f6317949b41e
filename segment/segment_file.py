"""One image file (or one page of a multi-page TIFF) in, its outputs on disk: ``segment image``.

:func:`segment_file` loads the image, segments it in memory or, when it would
not fit the memory budget, in row bands (:mod:`segment.tiles`), and writes
the outputs with the JSON summary last. :func:`file_pages` names the images
of a file (one per page). A volume (a NIfTI file, or a TIFF stack with
``config.volume``) goes to :func:`segment.volume.segment_volume_file`. A batch
(:mod:`segment.batch`) runs the same function once per image.

This module imports only the standard library at the top (NumPy and Numba
load on first use), so that batch worker processes can size their thread
pools first.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segment.config import SegmentConfig

if TYPE_CHECKING:
    from segment.gmm import Mixture


def page_stem(base: str, page: int | None) -> str:
    """The output stem of an image: ``base``, or ``base_p001``... for page 0... of a multi-page TIFF.

    Examples
    --------
    >>> page_stem("scan", None), page_stem("scan", 1)
    ('scan', 'scan_p002')
    """
    return base if page is None else f"{base}_p{page + 1:03d}"


def is_volume_file(path: str | os.PathLike, volume: bool = False) -> bool:
    """Whether ``path`` is segmented as a 3D volume: a NIfTI file, or with ``volume`` a TIFF.

    Examples
    --------
    >>> is_volume_file("t1.nii.gz"), is_volume_file("stack.tif"), is_volume_file("stack.tif", volume=True)
    (True, False, True)
    """
    name = str(path).lower()
    return name.endswith((".nii", ".nii.gz")) or (volume and name.endswith((".tif", ".tiff")))


def file_pages(path: str | os.PathLike, volume: bool = False) -> list[tuple[int | None, str]]:
    """(page, output stem) of each image in a file: one per page of a multi-page TIFF.

    A single image (or an unreadable file, a pipe or a device, whose error
    comes when it is segmented) gives ``[(None, stem)]``; pages give stems
    ``name_p001``, ... A volume (:func:`is_volume_file`) is one item, its
    stem the name without .nii.gz.
    """
    from segment import io

    path = Path(path)
    if is_volume_file(path, volume):
        from segment.io.volume import volume_stem

        return [(None, volume_stem(path))]
    if not path.is_file():  # a pipe or device can be read once only: by the worker that segments it
        return [(None, path.stem)]
    try:
        count = io.count_pages(path)
    except io.ImageReadError:
        count = 1
    if count == 1:
        return [(None, path.stem)]
    return [(page, page_stem(path.stem, page)) for page in range(count)]


@dataclass
class FileResult:
    """What :func:`segment_file` wrote.

    Attributes
    ----------
    summary : dict
        The image's JSON summary (as written when "json" is an output).
    paths : dict
        Output kind -> path.
    n_components, n_labels, pixels : int
        Mixture components, distinct labels, pixels of the labelled image.
    tiled : bool
        Whether the image was labelled in row bands (see :mod:`segment.tiles`).
    seconds : float
        Wall time, loading included.
    """

    summary: dict[str, Any]
    paths: dict[str, Path]
    n_components: int
    n_labels: int
    pixels: int
    tiled: bool
    seconds: float


def segment_file(
    source: str | os.PathLike,
    outdir: str | os.PathLike,
    config: SegmentConfig | None = None,
    *,
    model: Mixture | None = None,
    page: int | None = None,
    stem: str | None = None,
    budget: int | None = None,
    kinds: tuple[str, ...] | None = None,
    thumbnails: tuple[Path, Path] | None = None,
    summary_extra: dict[str, Any] | None = None,
    mask: str | os.PathLike | None = None,
) -> FileResult:
    """Segment one image file (or one page of a TIFF) and write its outputs.

    Images whose in-memory processing would exceed the memory budget are
    labelled band by band (:func:`segment.tiles.segment_tiled`); the others
    go through :func:`segment.segment_image`. The JSON summary is written
    last, so its presence means every other output is complete.

    Parameters
    ----------
    source : path-like
        Image file.
    outdir : path-like
        Output folder (created if missing).
    config : SegmentConfig, optional
    model : Mixture, optional
        Label with this model instead of fitting one.
    page : int, optional
        Page of a multi-page TIFF (0 = first).
    stem : str, optional
        Output file stem; defaults to the file's stem.
    budget : int, optional
        Memory budget in bytes; defaults to :func:`segment.tiles.memory_budget`.
    kinds : tuple of str, optional
        Outputs; defaults to ``config.save``.
    thumbnails : (Path, Path), optional
        Where to write the contact-sheet thumbnails (original, segmentation).
    summary_extra : dict, optional
        Keys added to the JSON summary.
    mask : path-like, optional
        An image of the same size whose zero pixels take no part (label 0).

    Returns
    -------
    FileResult

    Raises
    ------
    ImageReadError, OutputError, ValueError
        As :func:`segment.segment_image` and :func:`segment.save_segmentation`.
    """
    if is_volume_file(source, config is not None and config.volume):
        from segment.volume import segment_volume_file

        if model is not None:
            raise ValueError("a shared model (--model) is not available for volumes")
        return segment_volume_file(
            source, outdir, config, stem=stem, kinds=kinds, thumbnails=thumbnails, summary_extra=summary_extra, mask=mask
        )
    from segment import io, tiles
    from segment.outputs import label_format_for, output_paths, save_segmentation
    from segment.pipeline import segment_image
    from segment.thumbnails import write_thumbnails

    start = time.perf_counter()
    cfg = config if config is not None else SegmentConfig()
    source = Path(source)
    outdir = Path(outdir)
    stem = stem or source.stem
    kinds = cfg.save if kinds is None else tuple(kinds)
    budget = tiles.memory_budget(cfg) if budget is None else budget
    pixels, info = io.read_image(source, page or 0, level=cfg.level, dpi=cfg.dpi, max_pixels=cfg.max_pixels)
    if mask is not None:
        mask = io.read_mask(mask, pixels.shape)
    loaded = time.perf_counter() - start
    pictures = tuple(kind for kind in kinds if kind != "json")
    if tiles.needs_tiling(pixels.shape, pixels.dtype, cfg, budget):
        if mask is not None:
            raise ValueError("--mask is not available for an image above the memory budget (raise --max-memory)")
        tiled = tiles.segment_tiled(
            pixels, cfg, outdir, stem, model=model, budget=budget, source=source, kinds=pictures, info=info
        )
        summary, n_labels, n_components = tiled.summary, tiled.n_labels, tiled.n_components
        shape = tiled.shape
        if thumbnails is not None:
            write_thumbnails(pixels, tiled.label_thumbnail, *thumbnails)
        is_tiled = True
    else:
        result = segment_image(pixels, cfg, model=model, mask=mask, info=info)
        result.source = str(source)
        result.timings["load"] = loaded
        result.timings["total"] = result.timings.get("total", 0.0) + loaded
        save_segmentation(result, outdir, stem, kinds=pictures)
        summary = result.summary()
        n_labels, shape = result.n_labels, result.labels.shape
        n_components = int(result.model.n_components) if result.model is not None else 0
        if thumbnails is not None:
            write_thumbnails(result.image, result.labels, *thumbnails)
        is_tiled = False
        del result
    del pixels
    label_format = label_format_for(cfg.label_format, info.georeference is not None)
    paths = output_paths(outdir, stem, kinds, cfg.confidence_format, label_format)
    summary["outputs"] = {kind: path.name for kind, path in paths.items()}
    if page is not None:
        summary["input"]["page"] = page + 1
    summary.update(summary_extra or {})
    if "json" in paths:
        io.write_json(paths["json"], summary, protect=(source,))
    return FileResult(
        summary=summary,
        paths=paths,
        n_components=n_components,
        n_labels=n_labels,
        pixels=int(shape[0] * shape[1]),
        tiled=is_tiled,
        seconds=time.perf_counter() - start,
    )


def planned_outputs(
    source: str | os.PathLike, outdir: str | os.PathLike, stem: str, kinds: tuple[str, ...], config: SegmentConfig
) -> dict[str, Path]:
    """Output kind -> path that :func:`segment_file` writes for ``source`` (an image or a volume)."""
    from segment.io import is_georeferenced
    from segment.outputs import label_format_for, output_paths

    if is_volume_file(source, config.volume):
        from segment.volume import volume_output_paths

        return volume_output_paths(Path(outdir), stem, kinds, source)
    label_format = label_format_for(config.label_format, is_georeferenced(source))
    return output_paths(Path(outdir), stem, kinds, config.confidence_format, label_format)
