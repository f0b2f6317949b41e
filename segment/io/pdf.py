"""PDF pages rendered to pixels with PDFium (pypdfium2), at a chosen resolution."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from segment.io.errors import ImageReadError, first_line
from segment.io.info import ImageInfo

PDF_SIGNATURE = b"%PDF"
_POINTS_PER_INCH = 72.0


@contextlib.contextmanager
def _open_pdf(path: Path):
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(path)
    except Exception as exc:  # PdfiumError for corrupt, encrypted or truncated files
        raise ImageReadError(path, f"cannot open PDF ({first_line(exc)})") from None
    try:
        yield document
    finally:
        document.close()


def count_pdf_pages(path: Path) -> int:
    """Number of pages of a PDF file."""
    with _open_pdf(path) as document:
        return len(document)


def pdf_page_shape(width_points: float, height_points: float, dpi: float) -> tuple[int, int]:
    """(height, width) in pixels of a page rendered at ``dpi``.

    Examples
    --------
    >>> pdf_page_shape(612, 792, 300)   # US Letter
    (3300, 2550)
    """
    scale = dpi / _POINTS_PER_INCH
    return max(1, round(height_points * scale)), max(1, round(width_points * scale))


def read_pdf(path: Path, page: int = 0, dpi: float = 300, max_pixels: int | None = None):
    """Render one page of a PDF as an RGB image.

    Parameters
    ----------
    path : Path
    page : int
        Page index (0 is the first page).
    dpi : float
        Rendering resolution in pixels per inch.
    max_pixels : int, optional
        Refuse a page whose rendering at ``dpi`` has more pixels than this
        (checked before rendering).

    Returns
    -------
    image : (H, W, 3) uint8 ndarray
        The page on a white background, its /Rotate applied.
    info : ImageInfo
        Pixel size 25.4 / dpi millimetres.
    """
    if not dpi > 0:
        raise ValueError(f"dpi must be positive; got {dpi}")
    with _open_pdf(path) as document:
        n_pages = len(document)
        if not 0 <= page < n_pages:
            raise ImageReadError(path, f"has {n_pages} page(s); page {page + 1} does not exist")
        pdf_page = document[page]
        try:
            height, width = pdf_page_shape(*pdf_page.get_size(), dpi)
            if max_pixels is not None and height * width > max_pixels:
                raise ImageReadError(
                    path, f"page {page + 1} at {dpi:g} dpi is {width}x{height} = {width * height} pixels, "
                    f"above the limit of {max_pixels} (see max_pixels, or lower dpi)"
                )
            try:
                bitmap = pdf_page.render(scale=dpi / _POINTS_PER_INCH, rev_byteorder=True)
            except Exception as exc:  # PdfiumError and friends
                raise ImageReadError(path, f"cannot render PDF page {page + 1} ({first_line(exc)})") from None
            image = np.array(bitmap.to_numpy()[:, :, :3])
            bitmap.close()
        finally:
            pdf_page.close()
    size = 25.4 / dpi
    info = ImageInfo(
        shape=image.shape,
        path=str(path),
        format="PDF",
        page=page,
        n_pages=n_pages,
        pixel_size=(size, size),
        pixel_unit="millimeter",
        band_names=("red", "green", "blue"),
    )
    return image, info
