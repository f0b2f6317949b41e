"""Pictures of a segmentation: colourised labels and boundary overlays."""

from __future__ import annotations

import numpy as np


def palette(n_labels: int) -> np.ndarray:
    """Distinct RGB colours for labels 0..n_labels-1, (n_labels, 3) uint8.

    Label 0 (background) is black; the others step around the hue circle by
    the golden angle, so neighbouring label ids get clearly different colours.
    """
    import cv2

    colours = np.zeros((max(n_labels, 1), 3), dtype=np.uint8)
    if n_labels <= 1:
        return colours
    hues = (np.arange(1, n_labels) * 0.618033988749895) % 1.0
    values = np.where(np.arange(1, n_labels) % 2 == 0, 0.8, 1.0)
    saturations = np.where(np.arange(1, n_labels) % 3 == 0, 0.55, 0.85)
    hsv = np.stack([hues * 360, saturations, values], axis=1).astype(np.float32)[None]
    colours[1:] = np.round(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0] * 255).astype(np.uint8)
    return colours


def colorize(labels: np.ndarray) -> np.ndarray:
    """(H, W) labels as an (H, W, 3) uint8 RGB picture, one colour per label."""
    return palette(int(labels.max()) + 1)[labels]


def display_bands(image: np.ndarray, bands: tuple[int, ...] | None = None) -> np.ndarray:
    """The bands of ``image`` a picture shows: ``bands`` (1-based), else RGB, grey, or the first three of a multiband image."""
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if bands is not None:
        if max(bands) > channels:
            raise ValueError(f"display_bands asks for band {max(bands)} but the image has {channels} band(s)")
        return image[:, :, [band - 1 for band in bands]]
    if channels in (1, 2):
        return image[:, :, 0]
    return image[:, :, :3]


def display_rgb(image: np.ndarray, bands: tuple[int, ...] | None = None) -> np.ndarray:
    """Any loaded image as (H, W, 3) uint8 RGB for pictures (see :func:`display_bands`)."""
    from segment.features import to_unit_float

    picture = display_bands(image, bands)
    if picture.dtype != np.uint8:
        picture = np.round(to_unit_float(np.ascontiguousarray(picture)) * 255).astype(np.uint8)
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    return np.ascontiguousarray(picture)


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of pixels whose right or lower neighbour has another label."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edge


def overlay(
    image: np.ndarray, labels: np.ndarray, color: tuple[int, int, int] = (255, 255, 0), bands: tuple[int, ...] | None = None
) -> np.ndarray:
    """The image (its ``bands``, see :func:`display_bands`) with region boundaries drawn in ``color``, (H, W, 3) uint8."""
    picture = display_rgb(image, bands).copy()
    picture[boundaries(labels)] = color
    return picture
