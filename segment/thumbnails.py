"""Thumbnails of an image and its segmentation: two small pictures of the same size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segment import io, render

THUMBNAIL_SIDE = 160


def thumbnail_pair(image: np.ndarray, labels: np.ndarray, side: int = THUMBNAIL_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Small RGB pictures of an image and of its label map, the same size.

    Parameters
    ----------
    image : (H, W[, C]) ndarray
        The image as segmented (any dtype :func:`segment.render.display_rgb` takes).
    labels : (h, w) int ndarray
        Its label map, full size or already reduced (e.g. by the tiled path).
    side : int
        Longest side of the thumbnails in pixels.

    Returns
    -------
    original, segmentation : (t, u, 3) uint8 ndarrays
    """
    import cv2

    height, width = image.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    stride = max(1, int(1 / scale) // 4)  # area-average at most ~4x4 pixels per thumbnail pixel
    picture = render.display_rgb(image[::stride, ::stride])
    original = cv2.resize(picture, size, interpolation=cv2.INTER_AREA)
    rows = np.minimum(((np.arange(size[1]) + 0.5) * labels.shape[0] / size[1]).astype(np.int64), labels.shape[0] - 1)
    cols = np.minimum(((np.arange(size[0]) + 0.5) * labels.shape[1] / size[0]).astype(np.int64), labels.shape[1] - 1)
    segmentation = render.colorize(labels[rows][:, cols])
    return np.ascontiguousarray(original), segmentation


def write_thumbnails(
    image: np.ndarray, labels: np.ndarray, original_path: Path, segmentation_path: Path, side: int = THUMBNAIL_SIDE
) -> None:
    """Write :func:`thumbnail_pair` as a JPEG (original) and a PNG (segmentation), atomically."""
    import cv2

    original, segmentation = thumbnail_pair(image, labels, side)
    original_path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(original, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise io.OutputError(f"{original_path}: JPEG encoding failed")
    io.write_atomic(original_path, lambda tmp: tmp.write_bytes(encoded.tobytes()))
    io.write_png(segmentation_path, segmentation)
