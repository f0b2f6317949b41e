"""Every pixel sample in one place: stratified grids over an image and random subsets of rows.

Deterministic for a seed (a NumPy Generator passed in); none of these
reads pixel values, only shapes and masks.
"""

from __future__ import annotations

import numpy as np


def grid_pixels(
    shape: tuple[int, int], size: int, rng: np.random.Generator | None = None, mask: np.ndarray | None = None
) -> np.ndarray:
    """Raster indices of about ``size`` pixels, one per cell of a regular grid.

    Every part of the image is represented in proportion to its area, small
    regions included. The grid's cells are squares of side
    ``sqrt(n / size)`` for the ``n`` pixels in ``mask``.

    Parameters
    ----------
    shape : (H, W)
    size : int
        Wanted number of pixels; every (masked) pixel when there are no more.
    rng : numpy.random.Generator, optional
        Jitter: a random pixel of each cell. None takes each cell's centre.
    mask : (H, W) or (H * W,) ndarray, optional
        Pixels that may be picked (non-zero); None for all.

    Returns
    -------
    (N,) int64 ndarray
        Distinct raster indices, in the grid's row-major cell order.

    Examples
    --------
    >>> grid_pixels((4, 6), 6).tolist()
    [7, 9, 11, 19, 21, 23]
    """
    height, width = shape
    if mask is not None and np.all(mask):
        mask = None
    n = height * width if mask is None else int(np.count_nonzero(mask))
    if n <= size:
        return np.arange(n, dtype=np.int64) if mask is None else np.flatnonzero(mask)
    step = max(1.0, np.sqrt(n / size))
    ys = np.arange(0, height, step)
    xs = np.arange(0, width, step)
    if rng is None:
        rows = np.broadcast_to(np.minimum((ys + step / 2).astype(np.int64), height - 1)[:, None], (len(ys), len(xs)))
        cols = np.broadcast_to(np.minimum((xs + step / 2).astype(np.int64), width - 1)[None, :], (len(ys), len(xs)))
    else:
        rows = np.minimum((ys[:, None] + rng.random((len(ys), len(xs))) * step).astype(np.int64), height - 1)
        cols = np.minimum((xs[None, :] + rng.random((len(ys), len(xs))) * step).astype(np.int64), width - 1)
    flat = rows.ravel() * width + cols.ravel()  # one pixel per cell: all distinct
    if mask is None:
        return flat
    picked = mask[rows.ravel(), cols.ravel()] if np.ndim(mask) == 2 else mask[flat]
    return flat[picked != 0]


def fit_sample(shape: tuple[int, int], mask: np.ndarray | None, size: int, rng: np.random.Generator) -> np.ndarray:
    """Raster indices of the pixels a mixture is fitted on: a jittered grid of ``size``, or all for 0.

    Parameters
    ----------
    shape : (H, W)
    mask : ndarray or None
        Pixels that may be picked (e.g. the alpha channel); None for all.
    size : int
        About this many pixels (:func:`grid_pixels`); 0 takes every pixel.
    rng : numpy.random.Generator

    Returns
    -------
    (N,) int64 ndarray
    """
    return grid_pixels(shape, size if size else shape[0] * shape[1], rng, mask)


def within_mask(flat: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Positions of raster indices ``flat`` among the pixels of ``mask`` (the rows of masked features)."""
    if mask is None:
        return flat
    return (np.cumsum(np.asarray(mask).reshape(-1) != 0) - 1)[flat]


def random_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray | slice:
    """A random subset of ``size`` of ``n`` rows, sorted; every row (a slice, nothing drawn) when ``n <= size``.

    Examples
    --------
    >>> x = np.arange(10)
    >>> x[random_rows(10, 20, np.random.default_rng(0))].tolist() == x.tolist()
    True
    >>> len(x[random_rows(10, 4, np.random.default_rng(0))])
    4
    """
    if n <= size:
        return slice(None)
    return np.sort(rng.choice(n, size, replace=False))
