"""Label maps as OME-Zarr (OME-NGFF 0.4) label images, written with the zarr library.

Layout (OME-NGFF 0.4, Zarr format 2, which napari, ome-zarr-py, Fiji/MoBIE and
QuPath read)::

    out.zarr/                   image group: the segmented image, (c, y, x)
        0/, 1/, ...             resolution levels, each half the size of the one before
        labels/
            segmentation/       label image group: the label map, (y, x)
                0/, 1/, ...

The metadata (``multiscales``, ``image-label``) is the spec's JSON; the arrays
are written by zarr. Pyramid levels are taken by nearest-neighbour
decimation, which keeps label ids intact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segment.io.errors import OutputError
from segment.io.info import ImageInfo

NGFF_VERSION = "0.4"
LABEL_NAME = "segmentation"
_MIN_LEVEL_SIDE = 256
_MAX_LEVELS = 5
_CHUNK = 512


def write_ome_zarr_labels(
    path: str | Path,
    labels: np.ndarray,
    *,
    image: np.ndarray | None = None,
    info: ImageInfo | None = None,
    colors: np.ndarray | None = None,
) -> Path:
    """Write an OME-Zarr image with ``labels`` as its label image ``labels/segmentation``.

    Not atomic by itself; :func:`segment.io.write_label_map` wraps it.

    Parameters
    ----------
    path : path-like
        The ``.zarr`` directory to create (must not exist).
    labels : (H, W) unsigned integer ndarray
    image : (H, W[, C]) ndarray, optional
        The segmented image, stored as the image the labels belong to;
        without it the label map itself is stored as that image.
    info : ImageInfo, optional
        Its pixel size becomes the scale of the ``y`` and ``x`` axes, with
        their unit.
    colors : (N, 3) uint8 ndarray, optional
        Display colour of each label id (row = label), written as the
        label image's ``colors``.

    Raises
    ------
    OutputError
        zarr is not installed (``pip install 'segment[zarr]'``).
    """
    try:
        import zarr
    except ImportError:
        raise OutputError(f"{path}: OME-Zarr output needs the zarr package: pip install 'segment[zarr]'") from None
    path = Path(path)
    pixels = labels if image is None else image
    if pixels.shape[:2] != labels.shape:
        raise ValueError(f"image shape {pixels.shape[:2]} differs from label map shape {labels.shape}")
    scale, unit = _pixel_scale(info, labels.shape)
    channels_first = pixels[np.newaxis] if pixels.ndim == 2 else np.moveaxis(pixels, 2, 0)
    root = zarr.open_group(str(path), mode="w-", zarr_format=2)
    n_levels = _write_levels(root, channels_first, channel_axis=True)
    root.attrs["multiscales"] = [_multiscale("image", scale, unit, n_levels, channel_axis=True)]
    label_root = root.create_group("labels")
    label_root.attrs["labels"] = [LABEL_NAME]
    group = label_root.create_group(LABEL_NAME)
    n_levels = _write_levels(group, labels, channel_axis=False)
    group.attrs["multiscales"] = [_multiscale(LABEL_NAME, scale, unit, n_levels, channel_axis=False)]
    image_label = {"version": NGFF_VERSION, "source": {"image": "../../"}}
    if colors is not None:
        image_label["colors"] = [
            {"label-value": int(value), "rgba": [int(c) for c in colors[value][:3]] + [255]}
            for value in np.unique(labels)
            if value < len(colors)
        ]
    group.attrs["image-label"] = image_label
    return path


def _write_levels(group, array: np.ndarray, *, channel_axis: bool) -> int:
    level, n_levels = array, 0
    while True:
        chunks = ((1,) if channel_axis else ()) + tuple(min(_CHUNK, side) for side in level.shape[-2:])
        group.create_array(str(n_levels), data=np.ascontiguousarray(level), chunks=chunks)
        n_levels += 1
        if n_levels == _MAX_LEVELS or min(level.shape[-2:]) < 2 * _MIN_LEVEL_SIDE:
            return n_levels
        level = level[..., ::2, ::2]


def _pixel_scale(info: ImageInfo | None, shape: tuple[int, int]) -> tuple[tuple[float, float], str | None]:
    """(y, x) size of a pixel of the label map and its NGFF unit (None when unknown)."""
    if info is None:
        return (1.0, 1.0), None
    info = info.resized(shape)
    if info.pixel_size is None or info.pixel_metres is None:
        return (1.0, 1.0), None
    return (info.pixel_size[1], info.pixel_size[0]), info.pixel_unit


def _multiscale(name: str, scale: tuple[float, float], unit: str | None, n_levels: int, *, channel_axis: bool) -> dict:
    space = [{"name": axis, "type": "space"} for axis in "yx"]
    if unit is not None:
        for axis in space:
            axis["unit"] = unit
    axes = ([{"name": "c", "type": "channel"}] if channel_axis else []) + space
    datasets = []
    for level in range(n_levels):
        factor = 2.0**level
        level_scale = ([1.0] if channel_axis else []) + [scale[0] * factor, scale[1] * factor]
        datasets.append({"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": level_scale}]})
    return {"version": NGFF_VERSION, "name": name, "axes": axes, "datasets": datasets}
