"""Writing a segmentation's files: label map, pictures, confidence, JSON summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from segment import hierarchy, io, render


def label_format_for(label_format: str, georeferenced: bool) -> str:
    """The label map's format: ``label_format``, with ``"auto"`` a GeoTIFF for a georeferenced input, else PNG.

    Examples
    --------
    >>> label_format_for("auto", True), label_format_for("auto", False), label_format_for("zarr", True)
    ('tif', 'png', 'zarr')
    """
    if label_format != "auto":
        return label_format
    return "tif" if georeferenced else "png"


def output_paths(
    outdir: Path, stem: str, kinds: tuple[str, ...], confidence_format: str = "npy", label_format: str = "png"
) -> dict[str, Path]:
    """Where each output kind of image ``stem`` is written in ``outdir``."""
    names = {
        "labels": f"{stem}_labels.{label_format}",
        "color": f"{stem}_color.png",
        "overlay": f"{stem}_overlay.png",
        "confidence": f"{stem}_confidence.{confidence_format}",
        "regions": f"{stem}_regions.csv",
        "polygons": f"{stem}_polygons.geojson",
        "probabilities": f"{stem}_probabilities.{confidence_format}",
        "bias": f"{stem}_bias.tif",
        "json": f"{stem}.json",
        "hierarchy": f"{stem}_ucm2.png",
        "merge_tree": f"{stem}_merge_tree.json",
    }
    if "hierarchy" in kinds:
        kinds = (*kinds, "merge_tree")
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
        Any of :data:`segment.config.OUTPUT_KINDS`;
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

    Examples
    --------
    >>> import tempfile, numpy as np, segment
    >>> image = np.zeros((10, 12, 3), np.uint8); image[:, 6:] = 220
    >>> result = segment.segment_image(image, n_components=2, position_weight=0)
    >>> paths = save_segmentation(result, tempfile.mkdtemp(), stem="demo", kinds=("labels", "color"))
    >>> sorted(paths)
    ['color', 'labels']
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
    info = getattr(segmentation, "info", None)
    label_format = label_format_for(config.label_format, info is not None and info.georeference is not None)
    paths = output_paths(outdir, stem, kinds, config.confidence_format, label_format)
    if source is not None and any(path.resolve() == source.resolve() for path in paths.values()):
        raise io.OutputError(f"{source}: an output would overwrite the input file; choose another output directory")
    labels = segmentation.labels
    if "labels" in paths:
        io.write_label_map(paths["labels"], labels, info, image=segmentation.image, protect=protect)
    if "color" in paths:
        io.write_image(paths["color"], segmentation.to_rgb(), info, protect=protect)
    if "overlay" in paths:
        io.write_image(paths["overlay"], segmentation.overlay(), info, protect=protect)
    if "confidence" in paths:
        io.write_array(paths["confidence"], segmentation.confidence, protect=protect, info=info)
    if "regions" in paths:
        io.write_regions(
            paths["regions"], labels, image=segmentation.image, confidence=segmentation.confidence,
            components=segmentation.classes, info=info, protect=protect,
        )
    if "polygons" in paths:
        n_classes = segmentation.model.n_components if segmentation.model is not None else int(labels.max())
        io.write_polygons(
            paths["polygons"], labels, components=segmentation.classes, info=info,
            class_colors=render.palette(n_classes + 1), protect=protect,
        )
    if "probabilities" in paths:
        if segmentation.probabilities is None:
            raise io.OutputError(f"{paths['probabilities']}: no probabilities were computed (no pixel took part)")
        io.write_probabilities(paths["probabilities"], segmentation.probabilities, info, protect=protect)
    if "bias" in paths:
        if segmentation.bias_field is None:
            raise io.OutputError(f"{paths['bias']}: no bias field was estimated (run with --bias)")
        field = segmentation.bias_field.image()
        io.write_array(paths["bias"], field[:, :, 0] if field.shape[2] == 1 else field, protect=protect, info=info)
    if "hierarchy" in paths:
        tree = getattr(segmentation, "hierarchy", None)
        if tree is None:
            raise io.OutputError(f"{paths['hierarchy']}: no merge hierarchy was computed (region merging is off)")
        io.write_image(paths["hierarchy"], hierarchy.ucm2_to_png_values(tree.ucm2()), protect=protect)
        io.write_json(paths["merge_tree"], hierarchy.merge_tree_dict(tree), protect=protect)
    if "json" in paths:
        summary = segmentation.summary()
        summary["outputs"] = {kind: path.name for kind, path in paths.items()}
        io.write_json(paths["json"], summary, protect=protect)
    return paths
