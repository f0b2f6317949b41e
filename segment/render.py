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


def display_rgb(image: np.ndarray) -> np.ndarray:
    """Any loaded image as (H, W, 3) uint8 RGB for pictures (alpha dropped)."""
    from segment.features import to_unit_float

    if image.dtype == np.uint8:
        picture = image[:, :, :3] if image.ndim == 3 else image
    else:
        picture = np.round(to_unit_float(image) * 255).astype(np.uint8)
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    return np.ascontiguousarray(picture)


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of pixels whose right or lower neighbour has another label."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edge


def overlay(image: np.ndarray, labels: np.ndarray, color: tuple[int, int, int] = (255, 255, 0)) -> np.ndarray:
    """The image with region boundaries drawn in ``color``, (H, W, 3) uint8."""
    picture = display_rgb(image).copy()
    picture[boundaries(labels)] = color
    return picture
