"""Outputs other tools import: a region table (CSV), region polygons (GeoJSON), class probabilities.

Coordinates are pixel coordinates with (0, 0) the top-left corner of the
top-left pixel, x to the right and y down (the convention of QuPath, GDAL and
GeoJSON exports of pixel data), so the centre of pixel (row r, column c) is
(c + 0.5, r + 0.5). For a georeferenced input, polygons and the extra
``x_crs``/``y_crs`` centroid columns are in the input's CRS.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import numpy as np

from segment.io.errors import OutputError
from segment.io.info import UNIT_SYMBOLS, ImageInfo
from segment.io.write import write_array, write_atomic, write_tiff


def region_table(
    labels: np.ndarray,
    *,
    image: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    components: np.ndarray | None = None,
    info: ImageInfo | None = None,
) -> dict[str, np.ndarray]:
    """Per-region measurements, one row per label id present (0 excluded).

    Parameters
    ----------
    labels : (H, W) integer ndarray
        Label ids ≥ 0; 0 is background / nodata and gets no row.
    image : (H, W[, C]) ndarray, optional
        The segmented image; gives one ``mean_<band>`` column per band.
    confidence : (H, W) ndarray, optional
        Per-pixel confidence (max posterior); gives ``mean_confidence``.
    components : (H, W) integer ndarray, optional
        Mixture component of each pixel; a region's class is its most
        frequent component. Without it the class is the label itself (as
        for label maps of mixture components).
    info : ImageInfo, optional
        Input metadata: band names, pixel size (an ``area_<unit>2`` column)
        and georeferencing (``x_crs``, ``y_crs`` centroid columns).

    Returns
    -------
    dict of str → (R,) ndarray
        Columns in order: ``label``, ``class``, ``area_px``, [``area_<unit>2``],
        ``centroid_x``, ``centroid_y``, [``x_crs``, ``y_crs``], ``x_min``,
        ``y_min``, ``x_max``, ``y_max`` (pixel edges, max exclusive),
        [``mean_<band>`` ...], [``mean_confidence``].

    Examples
    --------
    >>> import numpy as np
    >>> table = region_table(np.array([[1, 1, 2], [1, 1, 2]]))
    >>> table["area_px"].tolist(), table["centroid_x"].tolist()
    ([4, 2], [1.0, 2.5])
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    flat = labels.ravel().astype(np.intp)
    count = np.bincount(flat)
    present = np.flatnonzero(count)
    present = present[present > 0]
    rows, cols = np.indices(labels.shape, sparse=True)
    table: dict[str, np.ndarray] = {"label": present, "class": _classes(flat, present, components)}
    table["area_px"] = count[present]
    if info is not None:
        info = info.resized(labels.shape)
        unit = UNIT_SYMBOLS.get(info.pixel_unit)
        if info.pixel_size is not None and unit is not None:
            table[f"area_{unit}2"] = count[present] * (info.pixel_size[0] * info.pixel_size[1])
    table["centroid_x"] = _means(flat, np.broadcast_to(cols, labels.shape), count, present) + 0.5
    table["centroid_y"] = _means(flat, np.broadcast_to(rows, labels.shape), count, present) + 0.5
    if info is not None and info.georeference is not None:
        a, b, c, d, e, f = info.georeference.transform
        x, y = table["centroid_x"], table["centroid_y"]
        table["x_crs"], table["y_crs"] = a * x + b * y + c, d * x + e * y + f
    boxes = ndimage.find_objects(labels.astype(np.intp, copy=False))
    bounds = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in (boxes[k - 1] for k in present)])
    bounds = bounds.reshape(-1, 4)
    for i, name in enumerate(("x_min", "y_min", "x_max", "y_max")):
        table[name] = bounds[:, i]
    if image is not None:
        bands = image[:, :, np.newaxis] if image.ndim == 2 else image
        for band, name in enumerate(_band_columns(bands.shape[2], info)):
            table[name] = _means(flat, bands[:, :, band], count, present)
    if confidence is not None:
        table["mean_confidence"] = _means(flat, confidence, count, present)
    return table


def _means(flat: np.ndarray, values: np.ndarray, count: np.ndarray, present: np.ndarray) -> np.ndarray:
    sums = np.bincount(flat, weights=np.asarray(values, dtype=np.float64).ravel(), minlength=len(count))
    return sums[present] / count[present]


def _classes(flat: np.ndarray, present: np.ndarray, components: np.ndarray | None) -> np.ndarray:
    if components is None:
        return present.copy()
    comp = np.asarray(components).ravel().astype(np.intp)
    n_classes = int(comp.max()) + 1
    votes = np.bincount(flat * n_classes + comp, minlength=(int(flat.max()) + 1) * n_classes)
    return votes.reshape(-1, n_classes)[present].argmax(axis=1)


def _band_columns(n_bands: int, info: ImageInfo | None) -> list[str]:
    names = info.band_names if info is not None and info.band_names and len(info.band_names) == n_bands else None
    if names is None:
        return ["mean" if n_bands == 1 else f"mean_band{i + 1}" for i in range(n_bands)]
    columns = [f"mean_{re.sub(r'[^0-9A-Za-z]+', '_', name).strip('_').lower() or i + 1}" for i, name in enumerate(names)]
    # repeated names (grey expanded to RGB) get their band number
    return [c if columns.count(c) == 1 else f"{c}{i + 1}" for i, c in enumerate(columns)]


def write_regions(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    image: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    components: np.ndarray | None = None,
    info: ImageInfo | None = None,
    protect: tuple[Path, ...] = (),
) -> Path:
    """Write the region table (see :func:`region_table`) as CSV, atomically.

    Integers are written as integers, other numbers with 10 significant digits.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_regions(folder / "regions.csv", np.array([[1, 1, 2], [1, 1, 2]]))
    >>> path.read_text().splitlines()[0].split(",")[:2]
    ['label', 'class']
    """
    table = region_table(labels, image=image, confidence=confidence, components=components, info=info)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table)
    columns = [[_format_number(v) for v in column] for column in table.values()]
    writer.writerows(zip(*columns))
    text = buffer.getvalue()
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), protect=protect)


def _format_number(value) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return f"{float(value):.10g}"


def region_polygons(
    labels: np.ndarray,
    *,
    components: np.ndarray | None = None,
    info: ImageInfo | None = None,
    class_names: dict[int, str] | None = None,
    class_colors: np.ndarray | None = None,
) -> dict:
    """Region outlines as a GeoJSON FeatureCollection, one Feature per label id (0 excluded).

    Outlines follow pixel edges (GDAL's polygonize through
    ``rasterio.features.shapes``, 4-connected), keep their holes, and are
    valid polygons; a label made of several 4-connected parts is a
    MultiPolygon.

    Parameters
    ----------
    labels : (H, W) integer ndarray
    components : (H, W) integer ndarray, optional
        Mixture component per pixel; a region's class is its most frequent
        component (without it, the label itself).
    info : ImageInfo, optional
        For a georeferenced input, coordinates are in its CRS (named in a
        ``crs`` member, as GDAL reads it); otherwise in pixels.
    class_names : dict of int → str, optional
        Name of each class (default ``"class <k>"``).
    class_colors : (K, 3) uint8 ndarray, optional
        RGB colour of each class (row = class id); default grey.

    Returns
    -------
    dict
        GeoJSON. Each Feature's properties: ``objectType`` ("annotation"),
        ``name``, ``label``, ``class``, ``classification`` {``name``,
        ``color`` [r, g, b]} as QuPath imports them, ``area_px``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 2], [1, 1, 2]])
    >>> features = region_polygons(labels)["features"]
    >>> [(f["properties"]["label"], f["geometry"]["type"]) for f in features]
    [(1, 'Polygon'), (2, 'Polygon')]
    """
    from affine import Affine
    from rasterio import features

    labels = np.asarray(labels)
    if labels.size and labels.max() > np.iinfo(np.int32).max:
        raise ValueError("label ids above 2**31 - 1 cannot be polygonised")
    source = labels.astype(np.int32, copy=False)
    georeference = None if info is None else info.resized(labels.shape).georeference
    transform = Affine.identity() if georeference is None else Affine(*georeference.transform)
    parts: dict[int, list] = {}
    for geometry, value in features.shapes(source, mask=source != 0, connectivity=4, transform=transform):
        parts.setdefault(int(value), []).append(geometry["coordinates"])
    table = region_table(labels, components=components)
    classes = dict(zip(table["label"].tolist(), table["class"].tolist()))
    areas = dict(zip(table["label"].tolist(), table["area_px"].tolist()))
    collection: dict = {"type": "FeatureCollection", "features": []}
    if georeference is not None and georeference.crs is not None:
        code = georeference.crs.split(":")[1]
        collection["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{code}"}}
    for label in sorted(parts):
        rings = parts[label]
        geometry = {"type": "Polygon", "coordinates": rings[0]} if len(rings) == 1 else {"type": "MultiPolygon", "coordinates": rings}
        k = classes[label]
        name = (class_names or {}).get(k, f"class {k}")
        color = [128, 128, 128] if class_colors is None or k >= len(class_colors) else [int(c) for c in class_colors[k][:3]]
        properties = {
            "objectType": "annotation",
            "name": f"region {label}",
            "label": label,
            "class": k,
            "classification": {"name": name, "color": color},
            "area_px": areas[label],
        }
        collection["features"].append({"type": "Feature", "id": str(label), "geometry": geometry, "properties": properties})
    return collection


def write_polygons(
    path: str | os.PathLike,
    labels: np.ndarray,
    *,
    components: np.ndarray | None = None,
    info: ImageInfo | None = None,
    class_names: dict[int, str] | None = None,
    class_colors: np.ndarray | None = None,
    protect: tuple[Path, ...] = (),
) -> Path:
    """Write region outlines (see :func:`region_polygons`) as a GeoJSON file, atomically.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> import json
    >>> path = write_polygons(folder / "regions.geojson", np.array([[1, 2], [1, 2]]))
    >>> len(json.loads(path.read_text())["features"])
    2
    """
    try:
        collection = region_polygons(
            labels, components=components, info=info, class_names=class_names, class_colors=class_colors
        )
    except ImportError:
        raise OutputError(f"{path}: polygon output needs the rasterio package: pip install rasterio") from None
    text = json.dumps(collection, separators=(",", ":")) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), protect=protect)


def write_probabilities(
    path: str | os.PathLike,
    probabilities: np.ndarray,
    info: ImageInfo | None = None,
    *,
    protect: tuple[Path, ...] = (),
) -> Path:
    """Write per-class probabilities as a (K, H, W) float32 ``.npy`` or ``.tif`` (by suffix).

    Parameters
    ----------
    path : path-like
    probabilities : (K, H, W) ndarray
        Posterior probability of each mixture class per pixel.
    info : ImageInfo, optional
        A TIFF (K bands, one page) gets the input's resolution or
        georeferencing.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_probabilities(folder / "probabilities.npy", np.full((2, 3, 4), 0.5))
    >>> np.load(path).shape, np.load(path).dtype
    ((2, 3, 4), dtype('float32'))
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 3:
        raise ValueError(f"probabilities must have shape (K, H, W); got {probabilities.shape}")
    if Path(path).suffix.lower() in (".tif", ".tiff"):
        return write_tiff(path, probabilities, info, protect=protect, bands_first=True)
    return write_array(path, probabilities, protect=protect)
