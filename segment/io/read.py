"""Decode any image, scan or PDF page into an array and its :class:`ImageInfo`.

The format is recognised from the file's first bytes, not its name: TIFF
(:mod:`segment.io.tiff`), PDF (:mod:`segment.io.pdf`), everything else through
OpenCV and Pillow (:mod:`segment.io.raster`). Images come back in RGB(A)
channel order (other bands as stored), upright, as uint8, uint16 or float32.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from segment.io.arrays import as_image
from segment.config import IMAGE_SUFFIXES  # noqa: F401 (re-exported)
from segment.io.errors import ImageReadError
from segment.io.info import ImageInfo
from segment.io.pdf import PDF_SIGNATURE, count_pdf_pages, read_pdf
from segment.io.raster import GIF_SIGNATURE, count_raster_frames, read_raster
from segment.io.tiff import count_tiff_images, is_tiff, read_tiff, tiff_is_georeferenced

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".svs")
DEFAULT_DPI = 300.0
# Declared NaN nodata is replaced by this value so that arrays stay finite.
FLOAT_NODATA = float(np.finfo(np.float32).min)
# Seconds a pipe is waited on between two checks for a stop signal.
PIPE_WAIT_STEP = 0.2


def read_image(
    path: str | os.PathLike,
    page: int = 0,
    *,
    level: int | None = None,
    dpi: float = DEFAULT_DPI,
    max_pixels: int | None = None,
) -> tuple[np.ndarray, ImageInfo]:
    """Read one page of an image file with its metadata.

    Parameters
    ----------
    path : path-like
        TIFF (any compression tifffile decodes, BigTIFF, tiled, planar,
        pyramidal, OME-TIFF, SVS), PNG, JPEG, WebP, BMP, PNM, GIF, JPEG 2000, PDF.
    page : int
        Page index (0 is the first): a TIFF image, a GIF frame, a PDF page.
    level : int, optional
        Pyramid level of a pyramidal TIFF; None or 0 is full resolution.
    dpi : float
        Resolution at which a PDF page is rendered.
    max_pixels : int, optional
        Refuse a page with more pixels than this, checked before decoding
        (for a PDF, at ``dpi``).

    Returns
    -------
    image : (H, W) or (H, W, C) ndarray
        uint8, uint16 or float32 (see :func:`as_image`); RGB(A) order,
        EXIF orientation applied, any number of bands.
    info : ImageInfo
        Format, page, orientation, resolution, georeferencing, nodata, bands.

    Raises
    ------
    ImageReadError
        Missing, empty or undecodable file, unsupported compression, page
        or level out of range, non-finite pixels, too many pixels.

    Examples
    --------
    >>> image, info = read_image("sample_images/coins.png")  # doctest: +SKIP
    >>> info.format, image.shape                              # doctest: +SKIP
    ('PNG', (303, 384))
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        return _read_stream(path, page, level=level, dpi=dpi, max_pixels=max_pixels)
    kind = _file_kind(path)
    if kind != "tiff" and level not in (None, 0):
        raise ImageReadError(path, f"has no pyramid; level {level} does not exist")
    if kind == "tiff":
        raw, info = read_tiff(path, page, level, max_pixels)
    elif kind == "pdf":
        raw, info = read_pdf(path, page, dpi, max_pixels)
    else:
        raw, info = read_raster(path, _read_bytes(path), page, max_pixels)
    raw, info = _finite_nodata(raw, info)
    try:
        image = as_image(raw)
    except ValueError as exc:
        where = f"page {page + 1}: " if info.n_pages > 1 else ""
        raise ImageReadError(path, f"{where}{exc}") from None
    return image, dataclasses.replace(info, shape=image.shape)


def load_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """Read the first page of an image file into an array.

    See :func:`read_image`, which also returns the metadata.

    Returns
    -------
    image : (H, W) or (H, W, C) ndarray

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> from segment.io import write_png
    >>> _ = write_png(folder / "a.png", np.full((4, 6, 3), 7, np.uint8))
    >>> image = load_image(folder / "a.png")
    >>> image.shape, image.dtype, int(image[0, 0, 0])
    ((4, 6, 3), dtype('uint8'), 7)
    """
    return read_image(path, max_pixels=max_pixels)[0]


def load_page(
    path: str | os.PathLike,
    page: int = 0,
    *,
    max_pixels: int | None = None,
    level: int | None = None,
    dpi: float = DEFAULT_DPI,
) -> np.ndarray:
    """Read one page of a file (TIFF image, GIF frame, PDF page) into an array.

    See :func:`read_image`; pages are counted as in :func:`count_pages`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> import tifffile
    >>> with tifffile.TiffWriter(folder / "stack.tif") as tif:
    ...     for value in range(3):
    ...         tif.write(np.full((8, 8), value, np.uint8))
    >>> int(load_page(folder / "stack.tif", 2).max())
    2
    """
    return read_image(path, page, level=level, dpi=dpi, max_pixels=max_pixels)[0]


def load_pages(
    path: str | os.PathLike, *, max_pixels: int | None = None, level: int | None = None, dpi: float = DEFAULT_DPI
) -> Iterator[np.ndarray]:
    """Yield every page of an image file in order; each is decoded only when reached.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> import tifffile
    >>> with tifffile.TiffWriter(folder / "stack.tif") as tif:
    ...     for value in range(3):
    ...         tif.write(np.full((8, 8), value, np.uint8))
    >>> [page.shape for page in load_pages(folder / "stack.tif")]
    [(8, 8), (8, 8), (8, 8)]
    """
    for page in range(count_pages(path)):
        yield load_page(path, page, max_pixels=max_pixels, level=level, dpi=dpi)


def count_pages(path: str | os.PathLike) -> int:
    """Number of pages in a file: TIFF images, GIF frames, PDF pages; 1 otherwise.

    Only headers and directories are read, not pixels. Reduced-resolution
    TIFF pages (pyramid levels, thumbnails) and slide labels are not pages,
    and neither are the channel planes of an OME-TIFF.

    Raises
    ------
    ImageReadError
        A file that is missing, empty or whose structure cannot be read.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> import tifffile
    >>> with tifffile.TiffWriter(folder / "stack.tif") as tif:
    ...     for value in range(3):
    ...         tif.write(np.full((8, 8), value, np.uint8))
    >>> count_pages(folder / "stack.tif")
    3
    """
    path = Path(path)
    kind = _file_kind(path)
    if kind == "tiff":
        return count_tiff_images(path)
    if kind == "pdf":
        return count_pdf_pages(path)
    if not _read_bytes(path, 6).startswith(GIF_SIGNATURE):
        return 1  # without reading a large photo just to learn it has one page
    return count_raster_frames(_read_bytes(path))


def read_mask(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """Read a mask image: True where any channel is non-zero (zero = excluded).

    Parameters
    ----------
    path : path-like
        Any image format :func:`read_image` reads (first page).
    shape : tuple of int
        Shape of the image the mask belongs to; its first two entries must
        match the mask's height and width.

    Returns
    -------
    mask : (H, W) bool ndarray

    Raises
    ------
    ImageReadError
        Unreadable file, or a mask whose size differs from the image's.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> from segment.io import write_png
    >>> mask = np.zeros((4, 6), np.uint8); mask[:, :2] = 255
    >>> _ = write_png(folder / "mask.png", mask)
    >>> read_mask(folder / "mask.png", (4, 6, 3)).sum(axis=0).tolist()
    [4, 4, 0, 0, 0, 0]
    """
    pixels, _ = read_image(path)
    height, width = shape[:2]
    if pixels.shape[:2] != (height, width):
        raise ImageReadError(
            path, f"mask is {pixels.shape[1]}x{pixels.shape[0]} pixels but the image is {width}x{height}"
        )
    return pixels != 0 if pixels.ndim == 2 else (pixels != 0).any(axis=2)


def valid_pixels(image: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """Pixels that are not nodata: True where some band differs from ``nodata``.

    Parameters
    ----------
    image : (H, W[, C]) ndarray
    nodata : float or None
        The declared nodata value (``ImageInfo.nodata``).

    Returns
    -------
    (H, W) bool ndarray, or None when no nodata is declared.

    Examples
    --------
    >>> import numpy as np
    >>> valid_pixels(np.array([[0, 5], [0, 0]], np.uint8), 0).tolist()
    [[False, True], [False, False]]
    """
    if nodata is None:
        return None
    differs = image != image.dtype.type(nodata) if image.dtype.kind == "f" else image != nodata
    return differs if differs.ndim == 2 else differs.any(axis=2)


def is_georeferenced(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a georeferenced (GeoTIFF) file, read from its header; False for anything unreadable.

    Examples
    --------
    >>> is_georeferenced("sample_images/coins.png")
    False
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        return _file_kind(path) == "tiff" and tiff_is_georeferenced(path)
    except ImageReadError:
        return False


def _read_stream(path: Path, page: int, **options) -> tuple[np.ndarray, ImageInfo]:
    """:func:`read_image` of a pipe or device, which can be read once only: its bytes go through a temporary file."""
    import tempfile

    data = _read_pipe(path)
    with tempfile.TemporaryDirectory(prefix="segment-stream-") as folder:
        copy = Path(folder) / path.name
        copy.write_bytes(data)
        try:
            image, info = read_image(copy, page, **options)
        except ImageReadError as exc:
            raise ImageReadError(path, exc.cause) from None
    return image, dataclasses.replace(info, path=str(path))


def _file_kind(path: Path) -> str:
    """"tiff", "pdf" or "raster", from the first bytes of the file."""
    header = _read_bytes(path, 8)
    if is_tiff(header):
        return "tiff"
    if header.startswith(PDF_SIGNATURE):
        return "pdf"
    return "raster"


def _read_bytes(path: Path, size: int = -1) -> bytes:
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    try:
        with open(path, "rb") as file:
            data = file.read(size)
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(path, "empty file")
    return data


def _read_pipe(path: Path) -> bytes:
    """All bytes of a pipe or device, waited for in steps of ``PIPE_WAIT_STEP`` s so that a stop signal ends the wait.

    A signal that lands between Python's last check and a blocking ``open`` or
    ``read`` would leave that call waiting for a writer that may never come.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            data = _read_until_closed(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ImageReadError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageReadError(path, "empty file")
    return data


def _read_until_closed(fd: int) -> bytes:
    """What a non-blocking ``fd`` gives until its writer closes it, polled every ``PIPE_WAIT_STEP`` s."""
    import selectors

    chunks = []
    # poll, not epoll: epoll refuses devices such as /dev/null.
    with getattr(selectors, "PollSelector", selectors.SelectSelector)() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if not selector.select(timeout=PIPE_WAIT_STEP):
                continue
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _finite_nodata(image: np.ndarray, info: ImageInfo) -> tuple[np.ndarray, ImageInfo]:
    """Replace NaN pixels of a file whose nodata is NaN by :data:`FLOAT_NODATA`."""
    if info.nodata is None or not math.isnan(info.nodata) or image.dtype.kind != "f":
        return image, info
    return np.where(np.isnan(image), image.dtype.type(FLOAT_NODATA), image), dataclasses.replace(info, nodata=FLOAT_NODATA)
