"""TIFF in all its forms: compressions, tiles, BigTIFF, planes, pyramids, OME-TIFF, SVS.

A TIFF file holds one or more *images* (pages as the user sees them). tifffile
groups its IFDs into series (with pyramid levels); the channels of an image may
be samples of one IFD (RGB, contig or separate planes) or separate IFDs (OME-TIFF
and ImageJ "C" axis). An image here is one position on a series' non-channel
axes (time, z, page...), its channels stacked last. Images are numbered in file
order; reduced-resolution copies, thumbnails and slide labels are not images.
"""

from __future__ import annotations

import contextlib
import logging
import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segment.io import geotiff
from segment.io.arrays import apply_orientation, grey_alpha_to_rgba
from segment.io.errors import ImageReadError, first_line
from segment.io.info import ImageInfo

TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_AUXILIARY_SERIES = {"thumbnail", "label", "macro", "map", "overview"}
_CHANNEL_AXES = "CS"
_COMPRESSION_NAMES = {
    "NONE": "uncompressed", "LZW": "LZW", "ADOBE_DEFLATE": "Deflate", "DEFLATE": "Deflate",
    "PACKBITS": "PackBits", "JPEG": "JPEG", "OJPEG": "old-style JPEG", "JPEG2000": "JPEG 2000",
    "APERIO_JP2000_YCBC": "JPEG 2000", "APERIO_JP2000_RGB": "JPEG 2000", "CCITTRLE": "CCITT RLE",
    "CCITTFAX3": "CCITT Group 3", "CCITTFAX4": "CCITT Group 4", "ZSTD": "ZSTD", "LZMA": "LZMA",
    "WEBP": "WebP", "JPEGXR": "JPEG XR", "JPEGXR_NDPI": "JPEG XR", "JPEGXL": "JPEG XL",
    "JBIG": "JBIG", "JBIG_BW": "JBIG", "JBIG_COLOR": "JBIG", "JBIG2": "JBIG2", "PIXARLOG": "PixarLog",
    "SGILOG": "SGILog", "SGILOG24": "SGILog24", "LERC": "LERC", "PNG": "PNG",
}
_PHOTOMETRIC_NAMES = {
    "RGB": ("red", "green", "blue"),
    "YCBCR": ("red", "green", "blue"),  # decoded to RGB
    "SEPARATED": ("cyan", "magenta", "yellow", "black"),
}
# TIFF ResolutionUnit → (pixel unit, unit length per resolution unit)
_RESOLUTION_UNITS = {2: ("millimeter", 25.4), 3: ("millimeter", 10.0), 4: ("millimeter", 1.0), 5: ("micrometer", 1.0)}
_ORIENTATION_TAG = 274


@dataclass(frozen=True)
class _Image:
    """Where one image of a TIFF lives: its series and the positions of its channel pages."""

    series: int
    positions: tuple[int, ...]
    first_ifd: int


def is_tiff(header: bytes) -> bool:
    """True when ``header`` (the first bytes of a file) starts a TIFF or BigTIFF."""
    return header[:4] in TIFF_SIGNATURES


def count_tiff_images(path: Path) -> int:
    """Number of images in a TIFF (see the module docstring); reads no pixels."""
    with open_tiff(path) as tif:
        return len(_images(tif, path))


def read_tiff(path: Path, page: int = 0, level: int | None = None, max_pixels: int | None = None):
    """Decode one image of a TIFF at one pyramid level.

    Parameters
    ----------
    path : Path
    page : int
        Image index, as counted by :func:`count_tiff_images`.
    level : int, optional
        Pyramid level (0 or None = full resolution).
    max_pixels : int, optional
        Refuse an image with more pixels than this before decoding it.

    Returns
    -------
    image : (H, W[, C]) ndarray
        Channels last, in the file's dtype (1-bit as bool, palettes as RGB).
    info : ImageInfo

    Raises
    ------
    ImageReadError
        Corrupt file, page or level out of range, unsupported compression,
        too many pixels.
    """
    with open_tiff(path) as tif:
        images = _images(tif, path)
        if not 0 <= page < len(images):
            raise ImageReadError(path, f"has {len(images)} page(s); page {page + 1} does not exist")
        where = images[page]
        series = tif.series[where.series]
        levels = series.levels
        level = level or 0
        if not 0 <= level < len(levels):
            raise ImageReadError(path, f"has {len(levels)} pyramid level(s); level {level} does not exist")
        pages = [levels[level].pages[i] for i in where.positions]
        if any(p is None for p in pages):
            raise ImageReadError(path, f"page {page + 1} is missing from the file (truncated or corrupt TIFF)")
        key = pages[0].keyframe
        height, width = key.imagelength, key.imagewidth
        if max_pixels is not None and height * width > max_pixels:
            raise ImageReadError(
                path, f"page {page + 1} is {width}x{height} = {width * height} pixels, "
                f"above the limit of {max_pixels} (see max_pixels)"
            )
        compression = compression_name(key.compression)
        _check_decoder(path, key.compression, compression)
        try:
            planes = [_channels_last(p.asarray(squeeze=False)) for p in pages]
        except Exception as exc:  # tifffile and imagecodecs raise many types for corrupt data
            raise ImageReadError(path, f"cannot decode {compression} TIFF page {page + 1} ({first_line(exc)})") from None
        image = planes[0] if len(planes) == 1 else np.dstack(planes)
        image, band_names = _colour(image, key)
        base_tags = series.keyframe.tags
        georeference = geotiff.read_georeference(base_tags)
        orientation = 1
        if georeference is None and _ORIENTATION_TAG in base_tags:
            orientation = int(base_tags[_ORIENTATION_TAG].value)
            image = apply_orientation(image, orientation)
        pixel_size, pixel_unit = _pixel_size(tif, where.series, series.keyframe, georeference)
        n_bands = 1 if image.ndim == 2 else image.shape[2]
        band_names = (
            _ome_channel_names(tif, where.series, n_bands)
            or geotiff.read_band_names(base_tags, n_bands)
            or band_names
        )
        full_shape = _upright_shape(series.keyframe.imagelength, series.keyframe.imagewidth, orientation)
        info = ImageInfo(
            shape=full_shape + image.shape[2:],
            path=str(path),
            format=_format_name(tif, compression),
            page=page,
            n_pages=len(images),
            level=level,
            n_levels=len(levels),
            orientation=orientation,
            pixel_size=pixel_size,
            pixel_unit=pixel_unit,
            band_names=band_names,
            nodata=geotiff.read_nodata(base_tags),
            georeference=georeference,
        )
    return image, info.resized(image.shape)


def tiff_is_georeferenced(path: Path) -> bool:
    """Whether the first image of a TIFF carries GeoTIFF georeferencing (its pixels are not decoded)."""
    with open_tiff(path) as tif:
        return bool(tif.series) and geotiff.read_georeference(tif.series[0].keyframe.tags) is not None


@contextlib.contextmanager
def open_tiff(path: Path):
    """``tifffile.TiffFile`` with its log quiet and its errors as one-line ImageReadError."""
    import tifffile

    logger = logging.getLogger("tifffile")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)  # tifffile logs about corrupt files; our error says it once
    try:
        try:
            tif = tifffile.TiffFile(path)
        except Exception as exc:  # tifffile raises many types for corrupt files
            raise ImageReadError(path, f"cannot decode TIFF ({first_line(exc)})") from None
        with tif:
            yield tif
    finally:
        logger.setLevel(previous)


def compression_name(compression) -> str:
    """A reader's name for a TIFF compression code (``"LZW"``, ``"JPEG XR"``, ...).

    Examples
    --------
    >>> compression_name(5)
    'LZW'
    """
    import tifffile

    try:
        member = tifffile.COMPRESSION(int(compression))
    except ValueError:
        return f"compression {int(compression)}"
    return _COMPRESSION_NAMES.get(member.name, member.name.replace("_", " "))


def _check_decoder(path: Path, compression, name: str) -> None:
    import tifffile

    try:
        tifffile.TIFF.DECOMPRESSORS[compression]
    except (KeyError, ValueError):
        raise ImageReadError(path, f"{name} compressed TIFF is not supported") from None


def _images(tif, path: Path) -> list[_Image]:
    try:
        all_series = tif.series
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise ImageReadError(path, f"cannot decode TIFF ({first_line(exc)})") from None
    images = []
    for index, series in enumerate(all_series):
        if series.name.lower() in _AUXILIARY_SERIES or series.keyframe is None or series.keyframe.is_reduced:
            continue
        for positions in _channel_groups(series):
            first = series.pages[positions[0]]
            images.append(_Image(index, positions, first.index if first is not None else math.inf))
    if not images:
        raise ImageReadError(path, "cannot decode TIFF (no readable page: corrupt or truncated file)")
    return sorted(images, key=lambda image: image.first_ifd)


def _channel_groups(series) -> list[tuple[int, ...]]:
    """Positions in ``series.pages`` of each image's channel pages."""
    n_pages = len(series.pages)
    n_outer = len(series.shape) - len(series.keyframe.shape)
    outer_axes, outer_shape = series.axes[:n_outer], series.shape[:n_outer]
    if n_outer < 0 or math.prod(outer_shape) != n_pages:
        return [(i,) for i in range(n_pages)]
    positions = np.arange(n_pages).reshape(outer_shape)
    channel = [i for i, axis in enumerate(outer_axes) if axis in _CHANNEL_AXES]
    other = [i for i in range(n_outer) if i not in channel]
    n_channels = math.prod(outer_shape[i] for i in channel)
    grouped = positions.transpose(other + channel).reshape(-1, n_channels)
    return [tuple(int(p) for p in row) for row in grouped]


def _channels_last(shaped: np.ndarray) -> np.ndarray:
    """tifffile's (separate samples, depth, H, W, contig samples) → (H, W[, C])."""
    separate, depth, height, width, contig = shaped.shape
    if depth != 1:
        raise ValueError(f"volumetric TIFF pages (depth {depth}) are not supported")
    image = np.moveaxis(shaped[:, 0], 0, -1).reshape(height, width, separate * contig)
    return image[:, :, 0] if separate * contig == 1 else image


def _colour(image: np.ndarray, key) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Apply the photometric interpretation; band names it implies."""
    photometric = key.photometric.name if key.photometric is not None else "MINISBLACK"
    if photometric == "MINISWHITE":
        image = ~image if image.dtype == np.bool_ else _invert(image)
    if photometric == "PALETTE" and key.colormap is not None:
        image = _apply_palette(image, key.colormap)
        return image, ("red", "green", "blue")
    names = _PHOTOMETRIC_NAMES.get(photometric)
    n_bands = 1 if image.ndim == 2 else image.shape[2]
    alpha = tuple(sample in (1, 2) for sample in key.extrasamples)
    if names is None and n_bands == 2 and alpha == (True,):
        return grey_alpha_to_rgba(image), ("grey", "grey", "grey", "alpha")
    if names is None or n_bands < len(names):
        return image, None
    extra = [("alpha" if is_alpha else f"band {len(names) + i + 1}") for i, is_alpha in enumerate(alpha)]
    names = names + tuple(extra)
    return image, names if len(names) == n_bands else None


def _invert(image: np.ndarray) -> np.ndarray:
    if image.dtype.kind == "u":
        return np.iinfo(image.dtype).max - image
    return image  # signed or float "min-is-white" data has no fixed white; keep values


def _apply_palette(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    rgb = np.moveaxis(colormap[:, indices], 0, -1)
    if rgb.max() <= 255:
        return rgb.astype(np.uint8)
    if not (rgb % 257).any():  # 8-bit colours stored as 16-bit (v * 257)
        return (rgb // 257).astype(np.uint8)
    return rgb.astype(np.uint16)


def _pixel_size(tif, series_index: int, key, georeference):
    if georeference is not None:
        a, b, _c, d, e, _f = georeference.transform
        return (math.hypot(a, d), math.hypot(b, e)), georeference.linear_unit
    ome = _ome_pixels(tif, series_index)
    if ome is not None and ome.get("PhysicalSizeX") and ome.get("PhysicalSizeY"):
        unit = ome.get("PhysicalSizeXUnit", "µm")
        unit = {"µm": "micrometer", "um": "micrometer", "nm": "nanometer", "mm": "millimeter", "cm": "centimeter", "m": "meter"}.get(unit)
        if unit is not None:
            return (float(ome["PhysicalSizeX"]), float(ome["PhysicalSizeY"])), unit
    unit = int(key.resolutionunit)
    x_res, y_res = key.resolution
    if unit not in _RESOLUTION_UNITS or not (x_res > 0 and y_res > 0) or (x_res, y_res) == (1, 1):
        return None, None  # 1 pixel per unit: the placeholder writers put when they know nothing
    name, length = _RESOLUTION_UNITS[unit]
    return (length / x_res, length / y_res), name


def _ome_pixels(tif, series_index: int) -> dict | None:
    """Attributes of the OME ``Pixels`` element of a series (with its Channels under ``"channels"``)."""
    if not tif.is_ome or not tif.ome_metadata:
        return None
    try:
        root = ElementTree.fromstring(tif.ome_metadata)
    except ElementTree.ParseError:
        return None
    images = [element for element in root if element.tag.endswith("}Image")]
    if series_index >= len(images):
        return None
    for pixels in images[series_index]:
        if pixels.tag.endswith("}Pixels"):
            attributes = dict(pixels.attrib)
            attributes["channels"] = [c.get("Name") for c in pixels if c.tag.endswith("}Channel")]
            return attributes
    return None


def _ome_channel_names(tif, series_index: int, n_bands: int) -> tuple[str, ...] | None:
    pixels = _ome_pixels(tif, series_index)
    if pixels is None:
        return None
    names = pixels["channels"]
    if len(names) != n_bands or not all(names):
        return None
    return tuple(names)


def _format_name(tif, compression: str) -> str:
    kind = "OME-TIFF" if tif.is_ome else "SVS" if tif.is_svs else "BigTIFF" if tif.is_bigtiff else "TIFF"
    return f"{kind}/{compression}"


def _upright_shape(height: int, width: int, orientation: int) -> tuple[int, int]:
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)
