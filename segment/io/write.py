"""Atomic writes (temporary file + rename) of pictures, label maps, arrays and JSON.

Label maps and pictures carry the input's metadata over: its resolution (PNG
pHYs, TIFF resolution tags) and, for a GeoTIFF input, its CRS, transform and
nodata, so that GIS software places the label map on the input.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from segment.io.errors import OutputError
from segment.io.geotiff import geotiff_extratags
from segment.io.info import ImageInfo

LABEL_FORMATS = ("png", "tif", "zarr")
_PNG_HEADER_END = 8 + 25  # signature + IHDR chunk


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None], *, protect: tuple[Path, ...] = ()) -> Path:
    """Write a file (or a directory) by ``write(temporary_path)`` followed by a rename.

    A crash leaves either the old output or the new one, never a partial one.

    Parameters
    ----------
    path : path-like
        Final destination.
    write : callable
        Called with a temporary path in the same directory; must create it.
    protect : tuple of Path
        Files that must never be overwritten (the inputs).

    Raises
    ------
    OutputError
        If the destination is a protected input or cannot be written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_atomic(folder / "note.txt", lambda temporary: temporary.write_text("done"))
    >>> path.read_text()
    'done'
    """
    path = Path(path)
    target = path.resolve()
    if any(target == Path(p).resolve() for p in protect):
        raise OutputError(f"{path}: output would overwrite the input file; choose another output directory")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        if tmp.is_dir() and path.is_dir():  # a directory cannot be renamed over a non-empty one
            old = path.with_name(f".{path.stem}.{os.getpid()}.old{path.suffix}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()
    return path


def write_png(
    path: str | os.PathLike,
    image: np.ndarray,
    *,
    protect: tuple[Path, ...] = (),
    dpi: tuple[float, float] | None = None,
) -> Path:
    """Write a uint8/uint16 grey or RGB(A) image as PNG, atomically.

    Parameters
    ----------
    path : path-like
    image : (H, W[, 3 | 4]) uint8 or uint16 ndarray
        RGB(A) channel order.
    protect : tuple of Path
        Inputs that must not be overwritten.
    dpi : (float, float), optional
        Resolution written as the PNG pHYs chunk (pixels per metre).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> from segment.io import load_image
    >>> path = write_png(folder / "grey.png", np.full((2, 3), 9, np.uint8))
    >>> load_image(path).tolist()
    [[9, 9, 9], [9, 9, 9]]
    """
    import cv2

    if image.ndim == 3:
        code = cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        image = cv2.cvtColor(image, code)

    def write(tmp: Path) -> None:
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise OSError(f"PNG encoding failed for {image.dtype} {image.shape}")
        data = encoded.tobytes()
        if dpi is not None:
            data = data[:_PNG_HEADER_END] + _phys_chunk(dpi) + data[_PNG_HEADER_END:]
        tmp.write_bytes(data)

    return write_atomic(path, write, protect=protect)


def _phys_chunk(dpi: tuple[float, float]) -> bytes:
    """PNG pHYs chunk: pixels per metre in x and y, unit 1 (metre)."""
    body = b"pHYs" + struct.pack(">IIB", round(dpi[0] / 0.0254), round(dpi[1] / 0.0254), 1)
    return struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body))


def write_tiff(
    path: str | os.PathLike,
    image: np.ndarray,
    info: ImageInfo | None = None,
    *,
    protect: tuple[Path, ...] = (),
    nodata: float | None = None,
    bands_first: bool = False,
) -> Path:
    """Write an image or array as a Deflate-compressed TIFF with the input's metadata, atomically.

    Parameters
    ----------
    path : path-like
    image : (H, W), (H, W, C) or, with ``bands_first``, (C, H, W) ndarray
        (H, W, 3|4) uint8/uint16 is written as RGB(A); anything else as one
        page of C grey samples (bands, as GDAL reads them).
    info : ImageInfo, optional
        Metadata of the input, for an image of the input's extent
        (resampled if the shape differs, see :meth:`ImageInfo.resized`):
        its georeferencing (GeoTIFF tags) or else its resolution.
    protect : tuple of Path
        Inputs that must not be overwritten.
    nodata : float, optional
        Declared as GDAL_NODATA.
    bands_first : bool
        ``image`` is a (C, H, W) stack of planes.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> import tifffile
    >>> path = write_tiff(folder / "bands.tif", np.zeros((4, 6, 5), np.float32))
    >>> tifffile.imread(path).shape
    (4, 6, 5)
    """
    import tifffile

    shape = image.shape[1:3] if bands_first else image.shape[:2]
    rgb = not bands_first and image.ndim == 3 and image.shape[2] in (3, 4) and image.dtype in (np.uint8, np.uint16)
    options = {"photometric": "rgb" if rgb else "minisblack", "compression": "zlib", "metadata": None}
    if image.dtype.kind == "f":  # float noise barely compresses: spend little time trying
        options["compressionargs"] = {"level": 1}
    if image.ndim == 3:
        options["planarconfig"] = "separate" if bands_first else "contig"
    if rgb and image.shape[2] == 4:
        options["extrasamples"] = ("unassalpha",)
    extratags = []
    if info is not None:
        info = info.resized(shape)
        extratags = geotiff_extratags(info.georeference, nodata)
        if info.georeference is None and info.dpi is not None:
            options["resolution"] = info.dpi
            options["resolutionunit"] = "INCH"
    elif nodata is not None:
        extratags = geotiff_extratags(None, nodata)
    return write_atomic(path, lambda tmp: tifffile.imwrite(tmp, image, extratags=extratags, **options), protect=protect)


def write_image(
    path: str | os.PathLike, image: np.ndarray, info: ImageInfo | None = None, *, protect: tuple[Path, ...] = ()
) -> Path:
    """Write a picture (colour labels, overlay) as PNG or TIFF by suffix, with the input's metadata.

    PNG keeps the resolution; TIFF keeps resolution or georeferencing. See
    :func:`write_png` and :func:`write_tiff`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> from segment.io import load_image
    >>> path = write_image(folder / "colour.png", np.zeros((4, 6, 3), np.uint8))
    >>> load_image(path).shape
    (4, 6, 3)
    """
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        return write_tiff(path, image, info, protect=protect)
    dpi = None if info is None else info.resized(image.shape).dpi
    return write_png(path, image, protect=protect, dpi=dpi)


def label_dtype(labels: np.ndarray) -> np.dtype:
    """Smallest unsigned integer type that holds every label.

    Examples
    --------
    >>> import numpy as np
    >>> label_dtype(np.array([0, 300]))
    dtype('uint16')
    """
    top = int(labels.max()) if labels.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def write_label_map(
    path: str | os.PathLike,
    labels: np.ndarray,
    info: ImageInfo | None = None,
    *,
    image: np.ndarray | None = None,
    protect: tuple[Path, ...] = (),
) -> Path:
    """Write a label map as PNG, TIFF or OME-Zarr (by suffix), with the input's metadata.

    Parameters
    ----------
    path : path-like
        ``.png`` (8/16-bit), ``.tif``/``.tiff`` (8/16/32-bit; a GeoTIFF for a
        georeferenced input) or ``.zarr`` (an OME-Zarr image with the labels
        as its label image; needs the ``zarr`` extra).
    labels : (H, W) integer ndarray
        Label ids ≥ 0; 0 is background / nodata.
    info : ImageInfo, optional
        Metadata of the input (see :func:`segment.io.read_image`). Its
        resolution is written to PNG and TIFF, its CRS, transform and nodata
        (declared as label 0, when the input declared nodata) to TIFF, its
        pixel size to OME-Zarr.
    image : (H, W[, C]) ndarray, optional
        The segmented image; OME-Zarr stores it as the image the labels
        belong to (without it the label map itself is that image).
    protect : tuple of Path
        Inputs that must not be overwritten.

    Raises
    ------
    OutputError
        Negative labels, more than 65,535 labels for a PNG, an unknown
        suffix, the zarr extra missing, or the file cannot be written.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> from segment.io import load_image
    >>> labels = np.array([[1, 1, 2], [300, 2, 2]], np.int32)
    >>> path = write_label_map(folder / "labels.png", labels)
    >>> load_image(path).tolist(), load_image(path).dtype
    ([[1, 1, 2], [300, 2, 2]], dtype('uint16'))
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if labels.ndim != 2 or labels.dtype.kind not in "iub":
        raise OutputError(f"{path}: a label map must be a 2-D integer array; got {labels.dtype} {labels.shape}")
    if labels.size and labels.min() < 0:
        raise OutputError(f"{path}: label ids must not be negative")
    labels = labels.astype(label_dtype(labels), copy=False)
    if suffix == ".png":
        if labels.dtype.itemsize > 2:
            raise OutputError(f"{path}: {labels.max()} labels do not fit a 16-bit PNG; write a TIFF label map, turn off relabel or raise min_size")
        dpi = None if info is None else info.resized(labels.shape).dpi
        return write_png(path, labels, protect=protect, dpi=dpi)
    if suffix in (".tif", ".tiff"):
        nodata = 0 if info is not None and info.nodata is not None else None
        return write_tiff(path, labels, info, protect=protect, nodata=nodata)
    if suffix == ".zarr":
        from segment.io.ngff import write_ome_zarr_labels

        return write_atomic(
            path, lambda tmp: write_ome_zarr_labels(tmp, labels, image=image, info=info), protect=protect
        )
    raise OutputError(f"{path}: unknown label map format {suffix!r}; use .png, .tif or .zarr")


def write_array(
    path: str | os.PathLike, array: np.ndarray, *, protect: tuple[Path, ...] = (), info: ImageInfo | None = None
) -> Path:
    """Write an array as ``.npy`` or ``.tif`` (by suffix), atomically.

    A TIFF gets the input's resolution or georeferencing when ``info`` is
    given (see :func:`write_tiff`).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_array(folder / "confidence.npy", np.ones((2, 3), np.float32))
    >>> np.load(path).shape
    (2, 3)
    """
    path = Path(path)
    if path.suffix == ".npy":
        return write_atomic(path, lambda tmp: np.save(tmp, array), protect=protect)
    return write_tiff(path, array, info, protect=protect)


def write_json(path: str | os.PathLike, data: dict, *, protect: tuple[Path, ...] = ()) -> Path:
    """Write ``data`` as indented JSON, atomically (numpy scalars and arrays, paths allowed).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> import json
    >>> path = write_json(folder / "summary.json", {"components": 3})
    >>> json.loads(path.read_text())
    {'components': 3}
    """
    text = json.dumps(data, indent=2, default=_json_default) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), protect=protect)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
