"""The errors a user can cause through files: each one line naming the file and the cause."""

from __future__ import annotations

import os


class SegmentError(Exception):
    """An error the user caused (bad input file, bad output location, ...).

    ``str(error)`` is one line naming the file and the cause.

    Examples
    --------
    >>> from segment.io import ImageReadError, load_image
    >>> try:
    ...     load_image("no/such/scan.png")
    ... except SegmentError as error:
    ...     print(type(error).__name__)
    ImageReadError
    """


class ImageReadError(SegmentError, ValueError):
    """An input image could not be read.

    Examples
    --------
    >>> str(ImageReadError("scan.tif", "JPEG XR compressed TIFF is not supported"))
    'scan.tif: JPEG XR compressed TIFF is not supported'
    """

    def __init__(self, path: str | os.PathLike, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = str(path)
        self.cause = cause


class OutputError(SegmentError):
    """An output file could not be written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from segment.io import write_json
    >>> blocker = Path(tempfile.mkdtemp()) / "file"; _ = blocker.write_text("")
    >>> try:
    ...     write_json(blocker / "summary.json", {})
    ... except OutputError as error:
    ...     print("cannot write")
    cannot write
    """


def first_line(exc: BaseException) -> str:
    """``"TypeName: message"`` of an exception, cut to its first line."""
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0] if text else type(exc).__name__
