"""Per-pixel features: colour (or any bands) plus weighted (x, y) position.

One :class:`FeatureSpec`, built once from an image and the settings, turns
the whole image, a set of pixels or a band of rows into the same float32
feature rows, so that a sample, a band and the whole image all live in one
feature space.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Every colour space is scaled so that its main axis spans 0..100 (Lab's L
# natively), and positions so that the longer image side spans
# 100 * position_weight; a weight therefore means the same at any image size.
FEATURE_SCALE = 100.0
COLOR_SPACES = ("lab", "rgb", "hsv", "gray")
_COLOUR_NAMES = {"lab": ["L", "a", "b"], "rgb": ["R", "G", "B"], "hsv": ["V", "S_cosH", "S_sinH"], "gray": ["I"]}


def feature_bands(shape: tuple[int, ...], alpha: bool | None = None) -> int:
    """Number of image bands that become features: all channels but alpha.

    Parameters
    ----------
    shape : tuple
        (H, W) or (H, W, C) of the image.
    alpha : bool, optional
        Whether the last channel is alpha; by default it is for 2 (grey +
        alpha) and 4 (RGBA) channels.
    """
    channels = shape[2] if len(shape) == 3 else 1
    if alpha is None:
        alpha = channels in (2, 4)
    return channels - 1 if alpha else channels


def unit_range(image: np.ndarray, alpha: bool | None = None) -> tuple[float, float] | None:
    """The (low, high) stretch that maps a float image's feature bands to [0, 1].

    None when no stretch is needed (integer images, floats already in
    [0, 1]). Computed once on the whole image so that every band and sample
    is scaled alike.
    """
    if image.dtype.kind != "f":
        return None
    bands = _bands(image, feature_bands(image.shape, alpha))
    low, high = float(bands.min()), float(bands.max())
    if low >= 0.0 and high <= 1.0:
        return None
    return low, high


def _bands(block: np.ndarray, n_bands: int) -> np.ndarray:
    """The feature bands of ``block``: (h, w) for one band, else (h, w, n_bands); alpha dropped."""
    if block.ndim == 2:
        return block
    if n_bands == 1:
        return block[:, :, 0]
    return block if block.shape[2] == n_bands else block[:, :, :n_bands]


def _unit(bands: np.ndarray, stretch: tuple[float, float] | None) -> np.ndarray:
    """``bands`` as float32 in [0, 1]: integers divided by their maximum, floats stretched by ``stretch``."""
    if stretch is not None:
        low, high = stretch
        return (bands.astype(np.float32) - low) / np.float32(high - low if high > low else 1.0)
    if bands.dtype == np.uint8:
        return bands.astype(np.float32) / np.float32(255)
    if bands.dtype == np.uint16:
        return bands.astype(np.float32) / np.float32(65535)
    return bands.astype(np.float32)


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """Feature bands of ``image`` as float32 in [0, 1] (alpha dropped).

    uint8 and uint16 are divided by their maximum; float images already in
    [0, 1] are kept, other float ranges are stretched from min..max.
    """
    n_bands = feature_bands(image.shape)
    return _unit(_bands(image, n_bands), unit_range(image))


@dataclass(frozen=True)
class FeatureSpec:
    """How an image's pixels become feature rows, fixed once for the whole image.

    Attributes
    ----------
    color_space : {"lab", "rgb", "hsv", "gray"}
        Colour features of a 3-band (RGB) image; other band counts ignore
        it (one band is intensity, C bands are C features).
    n_bands : int
        Image bands that are features (alpha excluded).
    position_weight : float
        Weight of (x, y); 0 leaves position out.
    shape : (int, int)
        (H, W) of the image; the longer side spans ``100 * position_weight``.
    stretch : (float, float) or None
        Value scaling of a float image (:func:`unit_range`); integer images
        are divided by their dtype's maximum.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((4, 6, 3), np.uint8)
    >>> spec = FeatureSpec.for_image(image, "lab", 0.5)
    >>> spec.names, spec.image_features(image).shape
    (['L', 'a', 'b', 'x', 'y'], (24, 5))
    """

    color_space: str
    n_bands: int
    position_weight: float
    shape: tuple[int, int]
    stretch: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.color_space not in COLOR_SPACES:
            raise ValueError(f"color_space must be one of {', '.join(COLOR_SPACES)}; got {self.color_space!r}")
        if self.n_bands < 1:
            raise ValueError(f"an image needs at least one band besides alpha; got {self.n_bands}")

    @classmethod
    def for_image(
        cls, image: np.ndarray, color_space: str = "lab", position_weight: float = 0.5, *, alpha: bool | None = None
    ) -> "FeatureSpec":
        """The spec of ``image`` (H, W[, C]): its bands, size and value scaling.

        ``alpha`` says whether the last channel is alpha (default: for 2 and 4 channels).
        """
        n_bands = feature_bands(image.shape, alpha)
        return cls(color_space, n_bands, float(position_weight), tuple(image.shape[:2]), unit_range(image, alpha))

    def for_working_copy(self, shape: tuple[int, int]) -> "FeatureSpec":
        """The spec of a copy of ``shape`` made from :meth:`unit` values (float32 in [0, 1], no alpha)."""
        return replace(self, shape=tuple(shape), stretch=None)

    # ------------------------------------------------------------ layout
    @property
    def n_colour(self) -> int:
        """Number of colour (band) feature columns; they come first."""
        if self.n_bands == 3:
            return 1 if self.color_space == "gray" else 3
        return self.n_bands

    @property
    def n_features(self) -> int:
        """Number of feature columns D: colour, then x and y when position is on."""
        return self.n_colour + (2 if self.position_weight > 0 else 0)

    @property
    def names(self) -> list[str]:
        """Names of the feature columns, for summaries."""
        if self.n_bands == 1:
            colour = ["I"]
        elif self.n_bands == 3:
            colour = _COLOUR_NAMES[self.color_space]
        else:
            colour = [f"band{i + 1}" for i in range(self.n_bands)]
        return colour + (["x", "y"] if self.position_weight > 0 else [])

    @property
    def position_scale(self) -> np.float32:
        """Feature units per pixel of position."""
        return np.float32(FEATURE_SCALE * self.position_weight / max(self.shape))

    # ----------------------------------------------------------- values
    def unit(self, block: np.ndarray) -> np.ndarray:
        """Feature bands of a block of the image as float32 in [0, 1], (h, w[, n_bands])."""
        return _unit(_bands(block, self.n_bands), self.stretch)

    def colours(self, block: np.ndarray) -> np.ndarray:
        """Colour features of a block of the image, (h, w, n_colour) float32."""
        unit = self.unit(block)
        if unit.ndim == 2:
            return (unit * FEATURE_SCALE)[:, :, None]
        if self.n_bands != 3:
            return unit * np.float32(FEATURE_SCALE)
        return _convert_rgb(unit, self.color_space)

    def pixel_colours(self, image: np.ndarray, flat_indices: np.ndarray) -> np.ndarray:
        """Colour features of some pixels, (N, n_colour) float32: those rows of :meth:`image_features`."""
        self._check(image)
        picked = image.reshape(image.shape[0] * image.shape[1], -1)[flat_indices]
        block = picked[None, :, :] if image.ndim == 3 else picked.reshape(1, -1)
        return self.colours(block)[0]

    # --------------------------------------------------------- features
    def image_features(self, image: np.ndarray) -> np.ndarray:
        """Features of every pixel in raster order, (H * W, D) float32 C-contiguous."""
        return self.band_features(image, 0, image.shape[0])

    def band_features(self, image: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Features of rows ``start:stop`` in whole-image coordinates, ((stop - start) * W, D) float32."""
        self._check(image)
        colour = self.colours(image[start:stop])
        rows, width, n_colour = colour.shape
        out = np.empty((rows, width, self.n_features), dtype=np.float32)
        out[:, :, :n_colour] = colour
        del colour
        if self.position_weight > 0:
            out[:, :, n_colour] = self._position(np.arange(width))
            out[:, :, n_colour + 1] = self._position(np.arange(start, stop))[:, None]
        return out.reshape(rows * width, -1)

    def pixel_features(self, image: np.ndarray, flat_indices: np.ndarray) -> np.ndarray:
        """Features of some pixels, (N, D) float32: those rows of :meth:`image_features`."""
        colour = self.pixel_colours(image, flat_indices)
        if self.position_weight <= 0:
            return np.ascontiguousarray(colour, dtype=np.float32)
        rows, cols = np.divmod(np.asarray(flat_indices, dtype=np.int64), self.shape[1])
        out = np.empty((len(colour), self.n_features), dtype=np.float32)
        out[:, : colour.shape[1]] = colour
        out[:, -2] = self._position(cols)
        out[:, -1] = self._position(rows)
        return out

    def _position(self, index: np.ndarray) -> np.ndarray:
        return (index.astype(np.float32) + np.float32(0.5)) * self.position_scale

    def _check(self, image: np.ndarray) -> None:
        if tuple(image.shape[:2]) != self.shape:
            raise ValueError(f"image of shape {image.shape[:2]} does not match the feature spec's {self.shape}")


def _convert_rgb(unit: np.ndarray, color_space: str) -> np.ndarray:
    """Colour features of an RGB float32 block in [0, 1], (h, w, C)."""
    import cv2

    if color_space == "lab":
        return cv2.cvtColor(unit, cv2.COLOR_RGB2Lab)
    if color_space == "rgb":
        return unit * np.float32(FEATURE_SCALE)
    if color_space == "gray":  # OpenCV's luminance weights, in NumPy for the reason given in _hsv
        luminance = unit[:, :, 0] * np.float32(0.299) + unit[:, :, 1] * np.float32(0.587) + unit[:, :, 2] * np.float32(0.114)
        return (luminance * np.float32(FEATURE_SCALE))[:, :, None]
    value, saturation, hue = _hsv(unit)
    disc = [value, saturation * np.cos(hue), saturation * np.sin(hue)]
    return np.stack(disc, axis=2) * np.float32(FEATURE_SCALE)


def _hsv(unit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value, saturation and hue (radians) of an RGB float32 block, OpenCV's definitions.

    Element-wise NumPy arithmetic, so a pixel gets the same numbers however
    the block is laid out (OpenCV's vectorised and scalar paths differ in
    the last bits).
    """
    red, green, blue = unit[:, :, 0], unit[:, :, 1], unit[:, :, 2]
    value = np.maximum(np.maximum(red, green), blue)
    spread = value - np.minimum(np.minimum(red, green), blue)
    saturation = np.divide(spread, value, out=np.zeros_like(value), where=value > 0)
    sixth = np.where(value == red, green - blue, np.where(value == green, blue - red, red - green))
    sixth = np.divide(sixth, spread, out=np.zeros_like(value), where=spread > 0)
    offset = np.where(value == red, 0, np.where(value == green, 2, 4)).astype(np.float32)
    hue = (sixth + offset) * np.float32(np.pi / 3)
    return value, saturation, hue


def color_features(image: np.ndarray, color_space: str) -> np.ndarray:
    """Colour features of a whole image, (H, W, C) float32; greyscale images always give C = 1.

    Parameters
    ----------
    image : (H, W) or (H, W, 3|4) ndarray
        RGB(A) image, uint8, uint16 or float32.
    color_space : {"lab", "rgb", "hsv", "gray"}
        ``lab``: CIE L*a*b*; ``rgb``: channels x 100; ``hsv``: value and
        the hue/saturation disc as (V, S cos H, S sin H) x 100, so hue has no
        seam at red; ``gray``: luminance x 100.
    """
    return FeatureSpec.for_image(image, color_space, 0.0).colours(image)


def pixel_features(image: np.ndarray, color_space: str = "lab", position_weight: float = 0.5) -> np.ndarray:
    """Feature matrix of every pixel in raster order (:meth:`FeatureSpec.image_features`).

    Parameters
    ----------
    image : (H, W) or (H, W, C) ndarray
        Image, uint8, uint16 or float32 (RGBA: alpha is dropped).
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
    return FeatureSpec.for_image(image, color_space, position_weight).image_features(image)


