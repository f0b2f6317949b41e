"""PNG, JPEG, WebP, BMP, PNM, JPEG 2000 and GIF: the formats OpenCV and Pillow decode.

Pillow reads the header (size, resolution, EXIF orientation, frames) without
decoding pixels; OpenCV decodes (it keeps 16-bit PNG and JPEG 2000 at full
depth, where Pillow reduces colour to 8 bits); GIF frames come from Pillow.
The EXIF orientation is applied, as OpenCV's imread and image viewers do.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np

from segment.io.arrays import TRANSPOSING_ORIENTATIONS, apply_orientation
from segment.io.errors import ImageReadError
from segment.io.info import ImageInfo

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GIF_SIGNATURE = b"GIF8"
_EXIF_ORIENTATION = 0x0112
_FORMAT_NAMES = {"WEBP": "WebP", "PPM": "PNM", "JPEG2000": "JPEG 2000", "MPO": "JPEG"}
_MULTI_FRAME_FORMATS = ("GIF",)


@contextlib.contextmanager
def _pillow_header(data: bytes):
    """The Pillow image of ``data`` (header only), or None when Pillow does not know the format."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning: max_pixels is our limit
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            try:
                image = Image.open(io.BytesIO(data))
            except Exception:  # unknown to Pillow: OpenCV may still decode it
                image = None
            if image is None:
                yield None
            else:
                with image:
                    yield image
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def count_raster_frames(data: bytes) -> int:
    """Number of pages: every frame of a GIF, 1 for any other format."""
    with _pillow_header(data) as header:
        if header is None or header.format not in _MULTI_FRAME_FORMATS:
            return 1
        return int(getattr(header, "n_frames", 1))


def read_raster(path: Path, data: bytes, page: int = 0, max_pixels: int | None = None):
    """Decode one frame of a PNG/JPEG/WebP/BMP/PNM/JPEG 2000/GIF file.

    Parameters
    ----------
    path : Path
        Named in errors and in the returned info.
    data : bytes
        The file's contents.
    page : int
        Frame of a GIF; 0 for other formats.
    max_pixels : int, optional
        Refuse images with more pixels than this, checked from the header.

    Returns
    -------
    image : (H, W[, C]) ndarray
        RGB(A) channel order, upright.
    info : ImageInfo
    """
    with _pillow_header(data) as header:
        n_frames = 1
        if header is not None:
            width, height = header.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageReadError(
                    path, f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels} (see max_pixels)"
                )
            fmt = _FORMAT_NAMES.get(header.format, header.format)
            if header.format in _MULTI_FRAME_FORMATS:
                n_frames = int(getattr(header, "n_frames", 1))
            orientation = _orientation(header)
            dpi = _dpi(header)
        else:
            fmt, orientation, dpi = "image", 1, None
        if not 0 <= page < n_frames:
            raise ImageReadError(path, f"has {n_frames} page(s); page {page + 1} does not exist")
        if header is not None and header.format in _MULTI_FRAME_FORMATS:
            image = _pillow_frame(path, header, page)
        else:
            image = _decode_opencv(path, data)
    image = apply_orientation(image, orientation)
    if dpi is not None and orientation in TRANSPOSING_ORIENTATIONS:
        dpi = dpi[::-1]
    info = ImageInfo(
        shape=image.shape,
        path=str(path),
        format=fmt,
        page=page,
        n_pages=n_frames,
        orientation=orientation,
        pixel_size=None if dpi is None else (25.4 / dpi[0], 25.4 / dpi[1]),
        pixel_unit=None if dpi is None else "millimeter",
        band_names=_band_names(image),
    )
    return image, info


def _orientation(header) -> int:
    try:
        value = int(header.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        return 1
    return value if 1 <= value <= 8 else 1


def _dpi(header) -> tuple[float, float] | None:
    dpi = header.info.get("dpi")
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _band_names(image: np.ndarray) -> tuple[str, ...] | None:
    if image.ndim == 2:
        return None
    return ("red", "green", "blue", "alpha")[: image.shape[2]] if image.shape[2] in (3, 4) else None


def _pillow_frame(path: Path, header, page: int) -> np.ndarray:
    try:
        header.seek(page)
        transparent = "transparency" in header.info or header.mode in ("RGBA", "LA", "PA")
        return np.asarray(header.convert("RGBA" if transparent else "RGB"))
    except Exception as exc:  # Pillow raises many types for corrupt frames
        raise ImageReadError(path, f"cannot decode {header.format} frame {page + 1} ({type(exc).__name__})") from None


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
