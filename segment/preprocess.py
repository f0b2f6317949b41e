"""Optional clean-up before features: downscaling and a denoising pre-filter."""

from __future__ import annotations

import numpy as np


def downscale(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink ``image`` (area averaging) so that its longer side is at most ``max_side``.

    Returns the input unchanged when it is already small enough or ``max_side`` is None.
    """
    height, width = image.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    return resize_area(image, (max(1, round(height * scale)), max(1, round(width * scale))))


def denoise(image: np.ndarray, method: str, size: int) -> np.ndarray:
    """Apply a pre-filter to ``image`` and return a new array of the same dtype.

    Parameters
    ----------
    image : (H, W[, C]) ndarray
        uint8, uint16 or float32.
    method : {"none", "gaussian", "median", "bilateral"}
        The filter; alpha is left as it is.
    size : int
        Odd kernel diameter in pixels.
    """
    import cv2

    if method == "none" or min(image.shape[:2]) < 2:
        return image
    if image.ndim == 3 and image.shape[2] == 4:  # filter colour, keep alpha
        return np.dstack([denoise(image[:, :, :3], method, size), image[:, :, 3]])
    if method == "gaussian":
        return cv2.GaussianBlur(image, (size, size), 0)
    if method == "median":
        if image.dtype == np.uint8 or size <= 5:
            return cv2.medianBlur(image, size)
        from scipy.ndimage import median_filter

        return median_filter(image, size=(size, size) + ((1,) if image.ndim == 3 else ()))
    if method == "bilateral":
        work = image if image.dtype == np.uint8 else image.astype(np.float32)
        span = 255.0 if image.dtype == np.uint8 else float(np.ptp(work)) or 1.0
        return cv2.bilateralFilter(work, size, 0.1 * span, size).astype(image.dtype, copy=False)
    raise ValueError(f"denoise must be one of none, gaussian, median, bilateral; got {method!r}")


def resize_area(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``shape`` = (height, width) by area averaging (for shrinking)."""
    import cv2

    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def resize_linear(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``shape`` = (height, width) by bilinear interpolation (for enlarging)."""
    import cv2

    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
