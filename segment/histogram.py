"""The histogram of an image's distinct feature vectors, for exact EM over every pixel at a fraction of the cost.

When the features are the band values alone (``position_weight=0``) and the
image has few distinct values (a greyscale or 16-bit scan, a paletted or
few-colour picture), EM on the distinct feature vectors weighted by their
pixel counts is EM on every pixel: the sufficient statistics are the same
sums. With position features on, two pixels of one colour are two different
feature vectors, so there is no such histogram (a histogram of colour and a
coarse position cell would only approximate); :func:`feature_histogram` then
returns None and the pipeline fits its pixel sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segment.features import FeatureSpec

# Above this many distinct feature vectors the fit sample is cheaper.
MAX_DISTINCT = 65_536
# Pixels of the evenly spaced subsample whose distinct values are counted before all pixels are.
PRECHECK_PIXELS = 200_000


@dataclass(frozen=True)
class Histogram:
    """Distinct feature vectors of an image's pixels and how many pixels have each.

    Attributes
    ----------
    features : (n, D) float32 ndarray
        The distinct feature vectors.
    counts : (n,) int64 ndarray
        Pixels with each (all positive); they sum to the pixels counted.

    Examples
    --------
    >>> h = Histogram(np.array([[0.0], [100.0]], np.float32), np.array([3, 1]))
    >>> h.n_pixels, len(h)
    (4, 2)
    """

    features: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def n_pixels(self) -> int:
        """Pixels counted."""
        return int(self.counts.sum())


def feature_histogram(
    image: np.ndarray,
    spec: FeatureSpec,
    valid: np.ndarray | None = None,
    *,
    limit: int = MAX_DISTINCT,
) -> Histogram | None:
    """The histogram of the features ``spec`` gives the (valid) pixels of ``image``, or None.

    None when position is a feature (``spec.position_weight > 0``) or the
    pixels have more than ``limit`` distinct values. A one-band 8- or 16-bit
    image is counted in one pass (``np.bincount``); otherwise an evenly spaced
    subsample of the pixels decides first whether counting every pixel can
    pay, so a photo costs a few milliseconds, not a sort of all its pixels.

    Parameters
    ----------
    image : (H, W[, C]) ndarray
        The image whose feature bands ``spec`` describes.
    spec : FeatureSpec
    valid : (H * W,) or (H, W) ndarray, optional
        Pixels that take part (non-zero); None for all.
    limit : int
        Most distinct values worth a histogram.

    Returns
    -------
    Histogram or None
        Its rows are ordered by raw value and are the rows of
        ``spec.image_features(image)`` without repetition.

    Examples
    --------
    >>> image = np.array([[0, 0, 65535], [0, 65535, 65535]], np.uint16)
    >>> h = feature_histogram(image, FeatureSpec.for_image(image, "lab", 0.0))
    >>> h.features.ravel().tolist(), h.counts.tolist()
    ([0.0, 100.0], [3, 3])
    >>> feature_histogram(image, FeatureSpec.for_image(image, "lab", 0.5)) is None
    True
    """
    if spec.position_weight > 0:
        return None
    flat = _band_values(image, spec.n_bands)
    if valid is not None:
        flat = flat[np.asarray(valid).reshape(-1) != 0]
    if flat.shape[1] == 1 and flat.dtype in (np.uint8, np.uint16):
        counts = np.bincount(flat[:, 0], minlength=1)
        values = np.flatnonzero(counts).astype(flat.dtype)[:, None]
        counts = counts[values[:, 0]]
    else:
        step = max(1, len(flat) // PRECHECK_PIXELS)
        if step > 1 and _n_distinct(flat[::step]) > limit:
            return None
        values, counts = _distinct_rows(flat)
    if len(values) > limit or len(values) == 0:
        return None
    block = values[None, :, 0] if spec.n_bands == 1 else values[None, :, :]
    features = spec.colours(block)[0]
    return Histogram(np.ascontiguousarray(features, dtype=np.float32), counts.astype(np.int64))


def _band_values(image: np.ndarray, n_bands: int) -> np.ndarray:
    """The feature bands of every pixel, (H * W, n_bands), raw dtype."""
    if image.ndim == 2:
        return image.reshape(-1, 1)
    return image[:, :, :n_bands].reshape(-1, n_bands)


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of an (N, C) array and their counts, in the order of their packed bytes.

    Rows of at most 8 bytes are packed into one uint64 first: sorting
    integers is many times faster than sorting byte strings.
    """
    rows = np.ascontiguousarray(rows)
    width = rows.dtype.itemsize
    if width * rows.shape[1] <= 8:
        columns = rows.view(np.dtype(f"u{width}"))
        keys = np.zeros(len(rows), dtype=np.uint64)
        for column in range(rows.shape[1]):
            keys |= columns[:, column].astype(np.uint64) << np.uint64(8 * width * column)
    else:
        keys = rows.view(np.dtype((np.void, width * rows.shape[1]))).ravel()
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return rows[first], counts


def _n_distinct(rows: np.ndarray) -> int:
    return len(_distinct_rows(rows)[1])
