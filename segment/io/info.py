"""What a file says about its pixels: format, page, orientation, resolution, georeferencing.

:class:`ImageInfo` is returned by :func:`segment.io.read_image` next to the pixel
array and handed back to the writers, which carry resolution, georeferencing and
nodata over to the outputs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

# Metres per unit, for the units a pixel size can be given in.
LENGTH_UNITS = {
    "meter": 1.0,
    "centimeter": 1e-2,
    "millimeter": 1e-3,
    "micrometer": 1e-6,
    "nanometer": 1e-9,
    "inch": 0.0254,
    "foot": 0.3048,
    "US survey foot": 1200 / 3937,
}
# Short names used in column headers (area_mm2, ...).
UNIT_SYMBOLS = {
    "meter": "m",
    "centimeter": "cm",
    "millimeter": "mm",
    "micrometer": "um",
    "nanometer": "nm",
    "inch": "in",
    "foot": "ft",
    "US survey foot": "ftUS",
}


@dataclass(frozen=True)
class GeoReference:
    """Where a raster lies on the Earth, as a GeoTIFF declares it.

    Attributes
    ----------
    transform : tuple of 6 float
        Affine map from pixel (column, row) at the top-left corner of a pixel
        to CRS (x, y), in GDAL/rasterio order ``(a, b, c, d, e, f)``:
        ``x = a·col + b·row + c``, ``y = d·col + e·row + f``.
    crs : str or None
        ``"EPSG:<code>"`` when the GeoKeys name an EPSG code, else None (a
        user-defined CRS is still carried over through ``geokeys``).
    geokeys : tuple
        The raw GeoKeyDirectory, GeoDoubleParams and GeoAsciiParams tags as
        ``(code, tiff_type, count, value)``, written back unchanged.
    pixel_is_point : bool
        GTRasterTypeGeoKey says PixelIsPoint (tie points at pixel centres).
    linear_unit : str or None
        Unit of the CRS axes (``"meter"``, ``"foot"``, ``"degree"``...).

    Examples
    --------
    >>> geo = GeoReference((10.0, 0.0, 500000.0, 0.0, -10.0, 4100000.0), crs="EPSG:32633")
    >>> geo.crs, geo.transform[0]
    ('EPSG:32633', 10.0)
    """

    transform: tuple[float, float, float, float, float, float]
    crs: str | None = None
    geokeys: tuple = ()
    pixel_is_point: bool = False
    linear_unit: str | None = None

    def scaled(self, sx: float, sy: float) -> GeoReference:
        """The same georeference for pixels ``sx`` × ``sy`` times as large.

        Examples
        --------
        >>> GeoReference((10.0, 0.0, 500.0, 0.0, -10.0, 900.0)).scaled(2, 2).transform
        (20.0, 0.0, 500.0, 0.0, -20.0, 900.0)
        """
        a, b, c, d, e, f = self.transform
        return dataclasses.replace(self, transform=(a * sx, b * sy, c, d * sx, e * sy, f))


@dataclass(frozen=True)
class ImageInfo:
    """Metadata of one decoded image (one page of a file, one pyramid level).

    Attributes
    ----------
    shape : tuple of int
        Shape of the array returned with it, (H, W) or (H, W, C).
    path : str or None
        The file, None for an array given in memory.
    format : str
        Source format, e.g. ``"PNG"``, ``"JPEG"``, ``"TIFF/LZW"``, ``"PDF"``.
    page, n_pages : int
        Index of this page (0-based) and number of pages in the file.
    level, n_levels : int
        Pyramid level (0 = full resolution) and number of levels.
    orientation : int
        EXIF/TIFF orientation (1–8) that was applied on reading; 1 = none.
    pixel_size : (float, float) or None
        Physical width and height of one pixel, in ``pixel_unit``.
    pixel_unit : str or None
        ``"millimeter"``, ``"micrometer"``, ``"meter"``, ``"degree"``, ...
    band_names : tuple of str or None
        One name per channel, where the file has them (or RGB(A) order).
    nodata : float or None
        The value the file declares for "no data" (GDAL_NODATA).
    georeference : GeoReference or None
        CRS and transform of a GeoTIFF.

    Examples
    --------
    >>> info = ImageInfo((400, 600, 3), pixel_size=(0.5, 0.5), pixel_unit="mm")
    >>> info.resized((200, 300)).pixel_size
    (1.0, 1.0)
    """

    shape: tuple[int, ...]
    path: str | None = None
    format: str = "array"
    page: int = 0
    n_pages: int = 1
    level: int = 0
    n_levels: int = 1
    orientation: int = 1
    pixel_size: tuple[float, float] | None = None
    pixel_unit: str | None = None
    band_names: tuple[str, ...] | None = None
    nodata: float | None = None
    georeference: GeoReference | None = None

    @property
    def dpi(self) -> tuple[float, float] | None:
        """Pixels per inch (x, y), when the pixel size is a length.

        Examples
        --------
        >>> ImageInfo((10, 10), pixel_size=(25.4 / 300, 25.4 / 300), pixel_unit="millimeter").dpi
        (300.0, 300.0)
        """
        metres = self.pixel_metres
        if metres is None:
            return None
        return tuple(round(0.0254 / m, 6) for m in metres)

    @property
    def pixel_metres(self) -> tuple[float, float] | None:
        """Pixel width and height in metres, when the pixel size is a length."""
        if self.pixel_size is None or self.pixel_unit not in LENGTH_UNITS:
            return None
        factor = LENGTH_UNITS[self.pixel_unit]
        return (self.pixel_size[0] * factor, self.pixel_size[1] * factor)

    def resized(self, shape: tuple[int, ...]) -> ImageInfo:
        """The same metadata for the image resampled to ``shape`` (same extent).

        Pixel size and georeferencing scale with the pixels; use it for outputs
        made at a lower resolution than the input.

        Examples
        --------
        >>> info = ImageInfo((100, 200), pixel_size=(1.0, 1.0), pixel_unit="millimeter")
        >>> info.resized((50, 100)).pixel_size
        (2.0, 2.0)
        """
        if tuple(shape[:2]) == tuple(self.shape[:2]):
            return dataclasses.replace(self, shape=tuple(shape))
        sy = self.shape[0] / shape[0]
        sx = self.shape[1] / shape[1]
        size = None if self.pixel_size is None else (self.pixel_size[0] * sx, self.pixel_size[1] * sy)
        geo = None if self.georeference is None else self.georeference.scaled(sx, sy)
        return dataclasses.replace(self, shape=tuple(shape), pixel_size=size, georeference=geo)

    def to_dict(self) -> dict:
        """A JSON-ready summary (for the segmentation summary).

        Examples
        --------
        >>> ImageInfo((4, 6, 3)).to_dict()["shape"]
        [4, 6, 3]
        """
        out = {
            "path": self.path,
            "format": self.format,
            "shape": list(self.shape),
            "page": self.page + 1,
            "pages": self.n_pages,
            "level": self.level,
            "levels": self.n_levels,
            "orientation": self.orientation,
            "pixel_size": None if self.pixel_size is None else list(self.pixel_size),
            "pixel_unit": self.pixel_unit,
            "dpi": None if self.dpi is None else list(self.dpi),
            "band_names": None if self.band_names is None else list(self.band_names),
            "nodata": _json_number(self.nodata),
        }
        if self.georeference is not None:
            out["crs"] = self.georeference.crs
            out["transform"] = list(self.georeference.transform)
        return out


def _json_number(value: float | None):
    if value is None or math.isfinite(value):
        return value
    return str(value)  # "nan", "inf": JSON has no literal for them
