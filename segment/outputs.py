"""Writing a segmentation's files: label map, pictures, confidence, JSON summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from segment import io


def output_paths(outdir: Path, stem: str, kinds: tuple[str, ...], confidence_format: str = "npy") -> dict[str, Path]:
    """Where each output kind of image ``stem`` is written in ``outdir``."""
    names = {
        "labels": f"{stem}_labels.png",
        "color": f"{stem}_color.png",
        "overlay": f"{stem}_overlay.png",
        "confidence": f"{stem}_confidence.{confidence_format}",
        "json": f"{stem}.json",
    }
    return {kind: outdir / names[kind] for kind in kinds}


def save_segmentation(
    segmentation: Any,
    outdir: str | os.PathLike,
    stem: str | None = None,
    kinds: tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Write the chosen outputs of ``segmentation`` into ``outdir``, each atomically.

    Parameters
    ----------
    segmentation : segment.Segmentation
        (Anything with its ``labels``, ``confidence``, ``config``, ``source``,
        ``to_rgb()``, ``overlay()`` and ``summary()``.)
    outdir : path-like
        Created if missing.
    stem : str, optional
        File name stem; defaults to the input file's stem, or "image".
    kinds : tuple of str, optional
        Any of "labels", "color", "overlay", "confidence", "json";
        defaults to ``segmentation.config.save``.

    Returns
    -------
    paths : dict
        Output kind -> path written.

    Raises
    ------
    OutputError
        If the directory cannot be created or written, or an output would
        overwrite the input image.
    """
    config = segmentation.config
    kinds = config.save if kinds is None else kinds
    source = Path(segmentation.source) if segmentation.source else None
    stem = stem or (source.stem if source else "image")
    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io.OutputError(f"{outdir}: cannot create output directory ({exc.strerror or exc})") from None
    protect = (source,) if source else ()
    paths = output_paths(outdir, stem, kinds, config.confidence_format)
    if source is not None and any(path.resolve() == source.resolve() for path in paths.values()):
        raise io.OutputError(f"{source}: an output would overwrite the input file; choose another output directory")
    labels = segmentation.labels
    if "labels" in paths:
        if labels.max() > np.iinfo(np.uint16).max:
            raise io.OutputError(f"{paths['labels']}: {labels.max()} labels do not fit a 16-bit PNG; turn off relabel or raise min_size")
        dtype = np.uint8 if labels.max() <= 255 else np.uint16
        io.write_png(paths["labels"], labels.astype(dtype), protect=protect)
    if "color" in paths:
        io.write_png(paths["color"], segmentation.to_rgb(), protect=protect)
    if "overlay" in paths:
        io.write_png(paths["overlay"], segmentation.overlay(), protect=protect)
    if "confidence" in paths:
        io.write_array(paths["confidence"], segmentation.confidence, protect=protect)
    if "json" in paths:
        summary = segmentation.summary()
        summary["outputs"] = {kind: path.name for kind, path in paths.items()}
        io.write_json(paths["json"], summary, protect=protect)
    return paths
