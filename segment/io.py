"""Reading images into a known layout, and writing files atomically.

Images come back in RGB(A) channel order as uint8, uint16 or float32 arrays of
shape (H, W), (H, W, 3) or (H, W, 4). Nothing else in the package reads files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".pgm", ".ppm", ".pbm", ".pnm")
TIFF_SUFFIXES = (".tif", ".tiff")


class SegmentError(Exception):
    """An error the user caused (bad input file, bad output location, ...).

    ``str(error)`` is one line naming the file and the cause.
    """


class ImageReadError(SegmentError, ValueError):
    """An input image could not be read."""

    def __init__(self, path: str | os.PathLike, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = str(path)
        self.cause = cause


class OutputError(SegmentError):
    """An output file could not be written."""


def load_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file into an RGB(A) array.

    Parameters
    ----------
    path : path-like
        PNG, JPEG, TIFF (8/16-bit, float; the first page), BMP, WebP, ...
    max_pixels : int, optional
        Refuse images with more pixels than this, checked from the header
        before the pixels are decoded.

    Returns
    -------
    image : (H, W) or (H, W, 3) or (H, W, 4) ndarray
        uint8, uint16 or float32; colour channels in RGB(A) order.

    Raises
    ------
    ImageReadError
        Missing file, directory, empty or undecodable file, truncated data,
        non-finite pixel values, or more pixels than ``max_pixels``.
    """
    path = Path(path)
    data = _read_bytes(path)
    if max_pixels is not None:
        _check_pixel_limit(path, data, max_pixels)
    if path.suffix.lower() in TIFF_SUFFIXES:
        image = _decode_tiff(path, data)
    else:
        image = _decode_opencv(path, data)
    try:
        return as_image(image)
    except ValueError as exc:
        raise ImageReadError(path, str(exc)) from None


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(path, "empty file")
    return data


def _check_pixel_limit(path: Path, data: bytes, max_pixels: int) -> None:
    import io

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(io.BytesIO(data)) as img:
                    width, height = img.size
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except Exception:  # unknown to PIL: OpenCV's own limit still applies
        return
    if width * height > max_pixels:
        raise ImageReadError(
            path, f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels} (see max_pixels)"
        )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _decode_opencv(path: Path, data: bytes) -> np.ndarray:
    import cv2

    if data.startswith(b"\xff\xd8") and b"\xff\xd9" not in data[-1024:]:
        raise ImageReadError(path, "truncated JPEG data (no end-of-image marker)")
    if data.startswith(_PNG_SIGNATURE) and b"IEND" not in data[-64:]:
        # checked here because libpng reports truncation on stderr itself
        raise ImageReadError(path, "truncated PNG data (no IEND chunk)")
    # OpenCV logs its own complaint about corrupt data on stderr; the error below says it once.
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if image is None:
        raise ImageReadError(path, "cannot decode image (not an image, unsupported format or corrupt data)")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _decode_tiff(path: Path, data: bytes) -> np.ndarray:
    import io

    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            return tif.pages[0].asarray()
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise ImageReadError(path, f"cannot decode TIFF ({type(exc).__name__}: {exc})".splitlines()[0]) from None


def count_pages(path: str | os.PathLike) -> int:
    """Number of images in a file: the full-resolution pages of a TIFF, 1 otherwise.

    Only the TIFF header and page directories are read, not the pixels.
    Reduced-resolution pages (pyramid levels, thumbnails) are not counted.

    Raises
    ------
    ImageReadError
        A TIFF whose directories cannot be read (missing, empty or corrupt file).
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return 1
    return len(_tiff_page_indices(path))


def load_page(path: str | os.PathLike, page: int = 0, *, max_pixels: int | None = None) -> np.ndarray:
    """Read one page of a (multi-page) TIFF, or the image of any other file.

    Unlike :func:`load_image`, a TIFF is read from the file directly, page by
    page, so a large scan is held in memory once.

    Parameters
    ----------
    path : path-like
        Image file; pages are counted as in :func:`count_pages`.
    page : int
        Index of the page (0 is the first); only 0 for non-TIFF files.
    max_pixels : int, optional
        Refuse a page with more pixels than this, before decoding it.

    Returns
    -------
    image : (H, W) or (H, W, 3) or (H, W, 4) ndarray
        As returned by :func:`load_image`; full precision kept (16-bit stays uint16).

    Raises
    ------
    ImageReadError
        Unreadable file, a page index out of range, or too many pixels.
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        if page != 0:
            raise ImageReadError(path, f"has a single image; page {page + 1} does not exist")
        return load_image(path, max_pixels=max_pixels)
    import tifffile

    indices = _tiff_page_indices(path)
    if not 0 <= page < len(indices):
        raise ImageReadError(path, f"has {len(indices)} page(s); page {page + 1} does not exist")
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            tiff_page = tif.pages[indices[page]]
            height, width = tiff_page.imagelength, tiff_page.imagewidth
            if max_pixels is not None and height * width > max_pixels:
                raise ImageReadError(
                    path, f"page {page + 1} is {width}x{height} = {width * height} pixels, "
                    f"above the limit of {max_pixels} (see max_pixels)"
                )
            image = tiff_page.asarray()
            if tiff_page.planarconfig == 2 and image.ndim == 3:  # separate planes: channels last
                image = np.moveaxis(image, 0, -1)
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise ImageReadError(path, f"cannot decode TIFF page {page + 1} ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    try:
        return as_image(image)
    except ValueError as exc:
        raise ImageReadError(path, f"page {page + 1}: {exc}") from None


def load_pages(path: str | os.PathLike, *, max_pixels: int | None = None):
    """Yield every page of an image file in order (one image for non-TIFF files).

    See :func:`load_page`; each page is decoded only when it is reached.
    """
    for page in range(count_pages(path)):
        yield load_page(path, page, max_pixels=max_pixels)


def _tiff_page_indices(path: Path) -> list[int]:
    import tifffile

    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file")
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            indices = [i for i, page in enumerate(tif.pages) if not getattr(page, "is_reduced", False)]
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise ImageReadError(path, f"cannot decode TIFF ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if not indices:
        raise ImageReadError(path, "cannot decode TIFF (no readable page: corrupt or truncated file)")
    return indices


@contextlib.contextmanager
def _quiet_tifffile():
    """Silence tifffile's own log messages about corrupt files; the error says it."""
    logger = logging.getLogger("tifffile")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def as_image(image: np.ndarray) -> np.ndarray:
    """Bring an image array to (H, W[, 3|4]) uint8/uint16/float32, without changing it.

    (H, W, 1) becomes (H, W); (H, W, 2) is grey plus alpha; bool becomes
    uint8 0/255; other integer types and float64 become float32.

    Raises
    ------
    ValueError
        Wrong number of dimensions or channels, no pixels, a non-numeric
        dtype, or NaN/infinite values.
    """
    image = np.asarray(image)
    if image.dtype.kind not in "biuf":
        raise ValueError(f"image dtype must be numeric or bool; got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 2:
        image = np.dstack([image[:, :, 0]] * 3 + [image[:, :, 1]])
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"image must have shape (H, W), (H, W, 3) or (H, W, 4); got {image.shape}")
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


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None], *, protect: tuple[Path, ...] = ()) -> Path:
    """Write a file by ``write(temporary_path)`` followed by a rename.

    A crash leaves either the old file or the new one, never a partial file.

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
    """
    path = Path(path)
    target = path.resolve()
    if any(target == Path(p).resolve() for p in protect):
        raise OutputError(f"{path}: output would overwrite the input file; choose another output directory")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_png(path: str | os.PathLike, image: np.ndarray, *, protect: tuple[Path, ...] = ()) -> Path:
    """Write a uint8/uint16 grey or RGB(A) image as PNG, atomically."""
    import cv2

    if image.ndim == 3:
        code = cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        image = cv2.cvtColor(image, code)

    def write(tmp: Path) -> None:
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise OSError(f"PNG encoding failed for {image.dtype} {image.shape}")
        tmp.write_bytes(encoded.tobytes())

    return write_atomic(path, write, protect=protect)


def write_array(path: str | os.PathLike, array: np.ndarray, *, protect: tuple[Path, ...] = ()) -> Path:
    """Write an array as ``.npy`` or ``.tif`` (by suffix), atomically."""
    path = Path(path)
    if path.suffix == ".npy":
        return write_atomic(path, lambda tmp: np.save(tmp, array), protect=protect)
    import tifffile

    return write_atomic(path, lambda tmp: tifffile.imwrite(tmp, array), protect=protect)


def write_json(path: str | os.PathLike, data: dict, *, protect: tuple[Path, ...] = ()) -> Path:
    """Write ``data`` as indented JSON, atomically."""
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
