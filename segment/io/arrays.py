"""Pixel arrays in the layout the rest of the package expects."""

from __future__ import annotations

import numpy as np

# EXIF/TIFF orientation value → how to bring the stored pixels upright, as viewers do.
# Values 5-8 swap width and height.
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright according to an EXIF/TIFF orientation value.

    Parameters
    ----------
    image : (H, W[, C]) ndarray
    orientation : int
        1 (upright) to 8, as in the EXIF Orientation tag (0x0112); other
        values are treated as 1.

    Returns
    -------
    (H', W'[, C]) ndarray
        A view where possible; H' and W' are swapped for orientations 5–8.

    Examples
    --------
    >>> import numpy as np
    >>> apply_orientation(np.array([[1, 2], [3, 4]]), 6)   # stored rotated 90° anticlockwise
    array([[3, 1],
           [4, 2]])
    """
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:
        return image.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(image, -1)
    if orientation == 7:
        return image.swapaxes(0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(image, 1)
    return image


def as_image(image: np.ndarray) -> np.ndarray:
    """Bring an image array to (H, W) or (H, W, C) uint8/uint16/float32, without changing it.

    Any number of channels C ≥ 2 is kept (RGB, RGBA, multispectral bands);
    (H, W, 1) becomes (H, W). bool becomes uint8 0/255; other integer types
    and float64 become float32.

    Parameters
    ----------
    image : (H, W[, C]) array_like

    Returns
    -------
    (H, W[, C]) ndarray
        C-contiguous; a new array when the input was converted or not contiguous.

    Raises
    ------
    ValueError
        Wrong number of dimensions, no pixels, a non-numeric dtype, or
        NaN/infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> as_image(np.zeros((4, 5, 7), np.int16)).dtype
    dtype('float32')
    """
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise ValueError(f"image dtype must be numeric or bool; got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3):
        raise ValueError(f"image must have shape (H, W) or (H, W, C); got {image.shape}")
    if image.size == 0:
        raise ValueError(f"image has no pixels (shape {image.shape})")
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * np.uint8(255)
    elif image.dtype.kind == "f":
        image = image.astype(np.float32, copy=False)
        if not np.isfinite(image).all():
            raise ValueError("image contains NaN or infinite values")
    elif image.dtype not in (np.uint8, np.uint16):
        image = image.astype(np.float32)
    return np.ascontiguousarray(image)


def grey_alpha_to_rgba(image: np.ndarray) -> np.ndarray:
    """(H, W, 2) grey + alpha → (H, W, 4) RGBA, so alpha is always the 4th of 4 channels."""
    return np.dstack([image[:, :, 0]] * 3 + [image[:, :, 1]])
