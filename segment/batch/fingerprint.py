"""What an input file was when an image was made from it: size, modification time, content digest.

The resume record of every image carries the :func:`fingerprint` of its
input taken before the image was read; :func:`same_content` decides whether
the input still holds that content. Size and modification time decide when
they match and may be trusted; otherwise (a copied tree, a filesystem whose
times are unreliable, or ``trust_times=False``) the content digest decides.
A pipe or device has no fingerprint: an image read from one is never up to date.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def content_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     content_digest(f.name)[:12]
    'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(path: str | os.PathLike) -> dict[str, Any] | None:
    """``{"size", "mtime_ns", "sha256"}`` of a regular file; None for a pipe, device or missing file."""
    try:
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            return None
        digest = content_digest(path)
    except OSError:
        return None
    return {"size": before.st_size, "mtime_ns": before.st_mtime_ns, "sha256": digest}


def unchanged_since(path: str | os.PathLike, recorded: dict[str, Any] | None) -> bool:
    """Whether the size and modification time of ``path`` still equal the ``recorded`` fingerprint's."""
    try:
        now = os.stat(path)
    except OSError:
        return False
    return recorded is not None and (now.st_size, now.st_mtime_ns) == (recorded.get("size"), recorded.get("mtime_ns"))


def same_content(path: str | os.PathLike, recorded: Any, *, trust_times: bool = True) -> bool:
    """Whether ``path`` holds the content of the ``recorded`` fingerprint.

    Equal size and modification time are taken as the same content when
    ``trust_times``; otherwise, or when they differ, the SHA-256 of the
    bytes decides (a copied tree keeps its content but not its times).
    """
    if not isinstance(recorded, dict) or not recorded.get("sha256"):
        return False
    path = Path(path)
    try:
        now = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISREG(now.st_mode) or now.st_size != recorded.get("size"):
        return False
    if trust_times and now.st_mtime_ns == recorded.get("mtime_ns"):
        return True
    try:
        return content_digest(path) == recorded["sha256"]
    except OSError:
        return False
