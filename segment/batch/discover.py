"""Which images a batch segments, and what their outputs are called.

:func:`find_images` lists the image files of a folder (tree) that match the
patterns; :func:`discover` turns them into :class:`BatchItem` s, one per
image (per page of a multi-page TIFF), with an output folder that mirrors
the input tree and an output stem that no other image of that folder shares.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from segment.batch.errors import BatchError
from segment.config import IMAGE_SUFFIXES
from segment.segment_file import file_pages, page_stem

# Every image type the reader decodes.
DEFAULT_PATTERNS = tuple(f"*{suffix}" for suffix in IMAGE_SUFFIXES)


@dataclass(frozen=True)
class BatchItem:
    """One image of a batch: a file, or one page of a multi-page TIFF.

    Attributes
    ----------
    source : Path
        The input file (absolute).
    relative : str
        Its path relative to the input folder, with "/" separators.
    page : int or None
        Page index (0 = first) of a multi-page TIFF; None for single images.
    outdir : Path
        Output folder (absolute): the input's folder mirrored under OUTDIR.
    stem : str
        File name stem of the outputs, e.g. "scan" or "scan_p002".
    """

    source: Path
    relative: str
    page: int | None
    outdir: Path
    stem: str

    @property
    def label(self) -> str:
        """How the item is named in messages: the relative path, and the page if any."""
        return self.relative if self.page is None else f"{self.relative} [page {self.page + 1}]"

    @property
    def summary_path(self) -> Path:
        """The image's JSON summary, written last: its presence marks the image done."""
        return self.outdir / f"{self.stem}.json"


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    name = relative.rsplit("/", 1)[-1].lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if fnmatch.fnmatchcase(relative.lower() if "/" in pattern else name, pattern):
            return True
    return False


def find_images(
    indir: str | os.PathLike,
    *,
    patterns: Sequence[str] | None = None,
    recursive: bool = False,
    exclude: str | os.PathLike | None = None,
) -> list[Path]:
    """Image files under ``indir`` that match ``patterns``, sorted by relative path.

    Parameters
    ----------
    indir : path-like
        Folder to search.
    patterns : sequence of str, optional
        Shell globs, matched case-insensitively against the file name (or
        against the relative path when the glob contains "/"). Defaults to
        every image type the loader reads.
    recursive : bool
        Also search sub-folders.
    exclude : path-like, optional
        A folder not to search (the output folder, when it lies inside).

    Returns
    -------
    list of Path
        Hidden files and folders (names starting with ".") are left out;
        named pipes and devices are listed like files (reading one that
        never ends is stopped by a batch's time limit).

    Raises
    ------
    BatchError
        If ``indir`` is not a folder.
    """
    indir = Path(indir)
    if not indir.is_dir():
        raise BatchError(f"{indir}: not a folder" if indir.exists() else f"{indir}: no such folder")
    patterns = tuple(patterns) if patterns else DEFAULT_PATTERNS
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for folder, dirnames, filenames in os.walk(indir):
        folder_path = Path(folder)
        dirnames[:] = sorted(
            d for d in dirnames if recursive and not d.startswith(".") and (folder_path / d).resolve() != skip
        )
        for filename in filenames:
            if filename.startswith("."):
                continue
            path = folder_path / filename
            relative = path.relative_to(indir).as_posix()
            if _matches(relative, patterns) and (path.is_file() or path.is_fifo() or path.is_char_device()):
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(indir).as_posix())


def discover(
    indir: str | os.PathLike,
    outdir: str | os.PathLike,
    *,
    patterns: Sequence[str] | None = None,
    recursive: bool = False,
    volume: bool = False,
) -> list[BatchItem]:
    """The images of a batch and where their outputs go.

    Multi-page TIFFs give one item per page (stems ``name_p001``, ...); the
    output tree mirrors the input tree. Two inputs of one folder that would
    share a stem (``a.png`` and ``a.jpg``) keep their suffix in the stem
    (``a.png``, ``a.jpg``).

    Parameters
    ----------
    indir, outdir : path-like
        Input and output folders; an output folder inside the input folder
        is not searched.
    patterns, recursive
        See :func:`find_images`.
    volume : bool
        TIFFs are volumes (one item each), as NIfTI files always are.

    Returns
    -------
    list of BatchItem
    """
    indir_path = Path(indir).absolute()
    outdir_path = Path(outdir).absolute()
    files = find_images(indir_path, patterns=patterns, recursive=recursive, exclude=outdir_path)
    items: list[BatchItem] = []
    for path in files:
        relative = path.relative_to(indir_path)
        for page, stem in file_pages(path, volume):  # an unreadable file is one item; its task reports the error
            items.append(
                BatchItem(
                    source=path,
                    relative=relative.as_posix(),
                    page=page,
                    outdir=outdir_path / relative.parent,
                    stem=stem,
                )
            )
    return _disambiguate(items)


def _disambiguate(items: list[BatchItem]) -> list[BatchItem]:
    seen: dict[tuple[Path, str], int] = {}
    for item in items:
        seen[(item.outdir, item.stem)] = seen.get((item.outdir, item.stem), 0) + 1
    return [
        dataclasses.replace(item, stem=page_stem(item.source.name, item.page)) if seen[(item.outdir, item.stem)] > 1 else item
        for item in items
    ]
