"""Per-pixel features: colour in a chosen space plus weighted (x, y) position."""

from __future__ import annotations

import numpy as np

# Every colour space is scaled so that its main axis spans 0..100 (Lab's L
# natively), and positions so that the longer image side spans
# 100 * position_weight; a weight therefore means the same at any image size.
FEATURE_SCALE = 100.0


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Colour channels of ``image`` as float32 in [0, 1] (alpha dropped).

    uint8 and uint16 are divided by their maximum; float images already in
    [0, 1] are kept, other float ranges are stretched from min..max.
    """
    colour = image[:, :, :3] if image.ndim == 3 else image
    if colour.dtype == np.uint8:
        return colour.astype(np.float32) / np.float32(255)
    if colour.dtype == np.uint16:
        return colour.astype(np.float32) / np.float32(65535)
    colour = colour.astype(np.float32)
    low, high = float(colour.min()), float(colour.max())
    if low >= 0.0 and high <= 1.0:
        return colour
    return (colour - low) / np.float32(high - low if high > low else 1.0)


def color_features(image: np.ndarray, color_space: str) -> np.ndarray:
    """Colour features, (H, W, C) float32; greyscale images always give C = 1.

    Parameters
    ----------
    image : (H, W) or (H, W, 3|4) ndarray
        RGB(A) image, uint8, uint16 or float32.
    color_space : {"lab", "rgb", "hsv", "gray"}
        ``lab``: CIE L*a*b*; ``rgb``: channels x 100; ``hsv``: value and
        the hue/saturation disc as (V, S cos H, S sin H) x 100, so hue has no
        seam at red; ``gray``: luminance x 100.
    """
    import cv2

    unit = to_unit_float(image)
    if unit.ndim == 2:
        return (unit * FEATURE_SCALE)[:, :, None]
    if color_space == "lab":
        return cv2.cvtColor(unit, cv2.COLOR_RGB2Lab)
    if color_space == "rgb":
        return unit * np.float32(FEATURE_SCALE)
    if color_space == "gray":
        return (cv2.cvtColor(unit, cv2.COLOR_RGB2GRAY) * np.float32(FEATURE_SCALE))[:, :, None]
    if color_space == "hsv":
        hsv = cv2.cvtColor(unit, cv2.COLOR_RGB2HSV)
        hue = np.deg2rad(hsv[:, :, 0])
        saturation = hsv[:, :, 1]
        disc = [hsv[:, :, 2], saturation * np.cos(hue), saturation * np.sin(hue)]
        return (np.stack(disc, axis=2) * np.float32(FEATURE_SCALE)).astype(np.float32)
    raise ValueError(f"color_space must be one of lab, rgb, hsv, gray; got {color_space!r}")


def pixel_features(image: np.ndarray, color_space: str = "lab", position_weight: float = 0.5) -> np.ndarray:
    """Feature matrix of every pixel in raster order.

    Parameters
    ----------
    image : (H, W) or (H, W, 3|4) ndarray
        RGB(A) image, uint8, uint16 or float32.
    color_space : str
        See :func:`color_features`.
    position_weight : float
        Weight of (x, y); 0 leaves position out. Positions are pixel centres
        divided by the longer side, times ``100 * position_weight``.

    Returns
    -------
    features : (H * W, D) float32 C-contiguous ndarray
        D = C colour features, plus 2 when ``position_weight > 0``.
    """
    colour = color_features(image, color_space)
    height, width, n_colour = colour.shape
    n_position = 2 if position_weight > 0 else 0
    features = np.empty((height, width, n_colour + n_position), dtype=np.float32)
    features[:, :, :n_colour] = colour
    del colour
    if n_position:
        scale = np.float32(FEATURE_SCALE * position_weight / max(height, width))
        features[:, :, n_colour] = (np.arange(width, dtype=np.float32) + 0.5) * scale
        features[:, :, n_colour + 1] = ((np.arange(height, dtype=np.float32) + 0.5) * scale)[:, None]
    return features.reshape(height * width, -1)


def unit_range(image: np.ndarray) -> tuple[float, float] | None:
    """The (low, high) stretch that :func:`segment.features.to_unit_float` applies to a float image.

    None when no stretch is needed (integer images, floats already in [0, 1]).
    Computed once on the whole image so that every band and sample is scaled alike.
    """
    if image.dtype.kind != "f":
        return None
    colour = image[:, :, :3] if image.ndim == 3 else image
    low, high = float(colour.min()), float(colour.max())
    if low >= 0.0 and high <= 1.0:
        return None
    return low, high


def stretch_to_unit(block: np.ndarray, stretch: tuple[float, float] | None) -> np.ndarray:
    """``block`` scaled like the whole image would be by ``to_unit_float`` (alpha dropped)."""
    if stretch is None:
        return block
    low, high = stretch
    colour = block[:, :, :3] if block.ndim == 3 else block
    colour = colour.astype(np.float32)
    return (colour - low) / np.float32(high - low if high > low else 1.0)


def sample_features(
    image: np.ndarray,
    flat_indices: np.ndarray,
    color_space: str,
    position_weight: float,
    stretch: tuple[float, float] | None = None,
) -> np.ndarray:
    """Features of some pixels only, equal to those rows of :func:`segment.features.pixel_features`.

    Parameters
    ----------
    image : (H, W[, C]) ndarray
        The (preprocessed) image.
    flat_indices : (N,) int ndarray
        Raster indices of the pixels.
    color_space : str
    position_weight : float
    stretch : (low, high), optional
        Whole-image float stretch from :func:`unit_range`.

    Returns
    -------
    (N, D) float32 ndarray
    """
    height, width = image.shape[:2]
    flat = image.reshape(height * width, -1)[flat_indices]
    picked = flat[None, :, :] if flat.shape[1] > 1 else flat.reshape(1, -1)
    picked = stretch_to_unit(picked, stretch)
    colour = color_features(picked, color_space)[0]
    if position_weight <= 0:
        return np.ascontiguousarray(colour, dtype=np.float32)
    scale = np.float32(FEATURE_SCALE * position_weight / max(height, width))
    rows, cols = np.divmod(np.asarray(flat_indices, dtype=np.int64), width)
    out = np.empty((len(flat_indices), colour.shape[1] + 2), dtype=np.float32)
    out[:, : colour.shape[1]] = colour
    out[:, -2] = (cols.astype(np.float32) + np.float32(0.5)) * scale
    out[:, -1] = (rows.astype(np.float32) + np.float32(0.5)) * scale
    return out


def feature_names(n_colour: int, color_space: str, position_weight: float) -> list[str]:
    """Names of the feature columns, for summaries."""
    names = {"lab": ["L", "a", "b"], "rgb": ["R", "G", "B"], "hsv": ["V", "S_cosH", "S_sinH"], "gray": ["I"]}
    colour = ["I"] if n_colour == 1 else names[color_space]
    return colour + (["x", "y"] if position_weight > 0 else [])
