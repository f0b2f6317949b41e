"""GeoTIFF and GDAL tags: read georeferencing, nodata and band names; write them back.

The tag and key numbers are those of the OGC GeoTIFF standard and of GDAL's
private tags. Reading needs only tifffile; the transform follows GDAL's
convention (top-left pixel corner, PixelIsPoint shifted by half a pixel), so
that GDAL and rasterio read back what is written here unchanged.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree

from segment.io.info import GeoReference

MODEL_PIXEL_SCALE = 33550
MODEL_TIEPOINT = 33922
MODEL_TRANSFORMATION = 34264
GEO_KEY_DIRECTORY = 34735
GEO_DOUBLE_PARAMS = 34736
GEO_ASCII_PARAMS = 34737
GDAL_METADATA = 42112
GDAL_NODATA = 42113
GEOKEY_TAGS = (GEO_KEY_DIRECTORY, GEO_DOUBLE_PARAMS, GEO_ASCII_PARAMS)

_MODEL_TYPE, _RASTER_TYPE = 1024, 1025
_GEOGRAPHIC_TYPE, _PROJECTED_TYPE, _PROJ_LINEAR_UNITS = 2048, 3072, 3076
_USER_DEFINED = 32767
_PIXEL_IS_POINT = 2
_MODEL_GEOGRAPHIC = 2
_LINEAR_UNITS = {9001: "meter", 9002: "foot", 9003: "US survey foot"}
_SHORT, _ASCII, _DOUBLE = 3, 2, 12


def read_georeference(tags) -> GeoReference | None:
    """Georeferencing from a TIFF page's tags, or None when it has none.

    Parameters
    ----------
    tags : mapping
        ``tifffile.TiffPage.tags`` (code → tag with ``.value``, ``.dtype``, ``.count``).

    Returns
    -------
    GeoReference or None
        None without GeoKeys, or when only ground control points (no affine
        transform) are given.
    """
    if GEO_KEY_DIRECTORY not in tags:
        return None
    keys = _geokeys(tags[GEO_KEY_DIRECTORY].value)
    transform = _transform(tags)
    if transform is None:
        return None
    pixel_is_point = keys.get(_RASTER_TYPE) == _PIXEL_IS_POINT
    if pixel_is_point:  # GDAL's convention: the transform addresses pixel corners
        a, b, c, d, e, f = transform
        transform = (a, b, c - 0.5 * (a + b), d, e, f - 0.5 * (d + e))
    geographic = keys.get(_MODEL_TYPE) == _MODEL_GEOGRAPHIC
    code = keys.get(_GEOGRAPHIC_TYPE if geographic else _PROJECTED_TYPE)
    raw = tuple(
        (code_, int(tags[code_].dtype), int(tags[code_].count), tags[code_].value) for code_ in GEOKEY_TAGS if code_ in tags
    )
    return GeoReference(
        transform=tuple(float(v) for v in transform),
        crs=f"EPSG:{code}" if code and code != _USER_DEFINED else None,
        geokeys=raw,
        pixel_is_point=pixel_is_point,
        linear_unit="degree" if geographic else _LINEAR_UNITS.get(keys.get(_PROJ_LINEAR_UNITS, 9001)),
    )


def _geokeys(directory) -> dict[int, int]:
    """Short-valued GeoKeys of a GeoKeyDirectory (keys stored elsewhere are skipped)."""
    values = [int(v) for v in directory]
    keys = {}
    for start in range(4, 4 + 4 * values[3], 4):
        key, location, _count, value = values[start : start + 4]
        if location == 0:
            keys[key] = value
    return keys


def _transform(tags) -> tuple[float, ...] | None:
    if MODEL_TRANSFORMATION in tags:
        m = [float(v) for v in tags[MODEL_TRANSFORMATION].value]
        return (m[0], m[1], m[3], m[4], m[5], m[7])
    if MODEL_TIEPOINT not in tags or MODEL_PIXEL_SCALE not in tags:
        return None
    i, j, _k, x, y, _z = (float(v) for v in tags[MODEL_TIEPOINT].value[:6])
    sx, sy = (float(v) for v in tags[MODEL_PIXEL_SCALE].value[:2])
    return (sx, 0.0, x - i * sx, 0.0, -sy, y + j * sy)


def read_nodata(tags) -> float | None:
    """The GDAL_NODATA value of a TIFF page, or None.

    Examples
    --------
    >>> class Tag: value = "-9999"
    >>> read_nodata({GDAL_NODATA: Tag()})
    -9999.0
    """
    if GDAL_NODATA not in tags:
        return None
    text = str(tags[GDAL_NODATA].value).strip().strip("\x00")
    try:
        return float(text)
    except ValueError:
        return None


def read_band_names(tags, n_bands: int) -> tuple[str, ...] | None:
    """Band descriptions from GDAL_METADATA, when every band has one."""
    if GDAL_METADATA not in tags:
        return None
    try:
        root = ElementTree.fromstring(str(tags[GDAL_METADATA].value).strip("\x00"))
    except ElementTree.ParseError:
        return None
    names = {}
    for item in root.iter("Item"):
        if item.get("role") == "description" and item.get("sample") is not None and item.text:
            names[int(item.get("sample"))] = item.text
    if sorted(names) != list(range(n_bands)):
        return None
    return tuple(names[i] for i in range(n_bands))


def geotiff_extratags(georeference: GeoReference | None, nodata: float | None = None) -> list[tuple]:
    """TIFF tags that declare ``georeference`` and ``nodata``, for ``tifffile.imwrite(extratags=...)``.

    Parameters
    ----------
    georeference : GeoReference or None
        CRS keys are copied unchanged; the transform is written as pixel
        scale and tie point (or as a model transformation when rotated).
    nodata : float, optional
        Written as GDAL_NODATA.

    Returns
    -------
    list of (code, type, count, value, writeonce)
    """
    tags = []
    if georeference is not None:
        a, b, c, d, e, f = georeference.transform
        if georeference.pixel_is_point:
            c, f = c + 0.5 * (a + b), f + 0.5 * (d + e)
        if b == 0 and d == 0:
            tags.append((MODEL_PIXEL_SCALE, _DOUBLE, 3, (a, -e, 0.0), True))
            tags.append((MODEL_TIEPOINT, _DOUBLE, 6, (0.0, 0.0, 0.0, c, f, 0.0), True))
        else:
            matrix = (a, b, 0.0, c, d, e, 0.0, f, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
            tags.append((MODEL_TRANSFORMATION, _DOUBLE, 16, matrix, True))
        for code, dtype, count, value in georeference.geokeys:
            tags.append((code, dtype, 0 if dtype == _ASCII else count, value, True))
    if nodata is not None:
        text = "nan" if math.isnan(nodata) else repr(float(nodata)).removesuffix(".0")
        tags.append((GDAL_NODATA, _ASCII, 0, text, True))
    return tags
