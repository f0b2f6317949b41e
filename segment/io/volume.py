"""3D volumes on disk: NIfTI (.nii, .nii.gz, through nibabel) and TIFF stacks (tifffile).

:func:`read_volume` returns a (Z, H, W[, C]) array and a :class:`VolumeInfo`
that remembers what the labels must carry back: a NIfTI header (affine,
qform/sform codes, voxel sizes) or a TIFF's resolution and ImageJ spacing.
:func:`write_volume` writes a (Z, H, W) array in the input's format with that
metadata, atomically. NIfTI arrays are indexed (i, j, k) = (x, y, z); they
are read as (k, j, i) = (Z, H, W) views and written back the same way.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segment.io.errors import ImageReadError, OutputError
from segment.io.write import write_atomic

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named as a NIfTI file (.nii or .nii.gz).

    Examples
    --------
    >>> is_nifti("brain.nii.gz"), is_nifti("scan.tif")
    (True, False)
    """
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def volume_stem(path: str | os.PathLike) -> str:
    """A volume file's name without its suffix, .nii.gz counted as one.

    Examples
    --------
    >>> volume_stem("/data/t1.nii.gz"), volume_stem("stack.tif")
    ('t1', 'stack')
    """
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES[::-1]:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


@dataclass(frozen=True)
class VolumeInfo:
    """Metadata of a volume read from a file, carried into its label volume.

    Attributes
    ----------
    shape : tuple of int
        (Z, H, W[, C]) of the array read.
    path : str or None
        The file.
    format : {"nifti", "tiff"}
        Its format; labels are written in the same one.
    spacing : (float, float, float) or None
        Voxel size (z, y, x) in the file's units (NIfTI zooms, TIFF
        resolution and ImageJ spacing), None when the file gives none.
    header : nibabel Nifti1Header or None
        The NIfTI header (affine, qform/sform and their codes, zooms).
    tiff : dict or None
        TIFF resolution (``resolution``, ``resolutionunit``) and ImageJ
        metadata (``spacing``, ``unit``) to write back.
    """

    shape: tuple[int, ...]
    path: str | None = None
    format: str = "nifti"
    spacing: tuple[float, float, float] | None = None
    header: Any = None
    tiff: dict[str, Any] | None = None

    @property
    def affine(self) -> np.ndarray | None:
        """The NIfTI voxel-to-world affine (4 x 4), None for a TIFF stack."""
        return None if self.header is None else self.header.get_best_affine()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (format, spacing, affine)."""
        affine = self.affine
        return {
            "format": self.format,
            "spacing": list(self.spacing) if self.spacing else None,
            "affine": affine.round(6).tolist() if affine is not None else None,
        }


def read_volume(path: str | os.PathLike) -> tuple[np.ndarray, VolumeInfo]:
    """Read a NIfTI file or a TIFF stack as one (Z, H, W[, C]) volume.

    Parameters
    ----------
    path : path-like
        A .nii or .nii.gz file (3-D, or 4-D with one volume), or a TIFF
        whose pages (or ZYX series) are the planes.

    Returns
    -------
    volume : (Z, H, W[, C]) ndarray
        The file's dtype (a scaled NIfTI as float32). For NIfTI, a view
        with Z along the file's k axis and W along i.
    info : VolumeInfo

    Raises
    ------
    ImageReadError
        A missing, corrupt or unsupported file (a 4-D time series, a 5-D
        array), with one line naming it and the cause.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    return _read_nifti(path) if is_nifti(path) else _read_tiff_stack(path)


def _read_nifti(path: Path) -> tuple[np.ndarray, VolumeInfo]:
    import nibabel

    try:
        image = nibabel.load(str(path))
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises many types (ImageFileError, EOFError, zlib.error, ...) for a bad file
        raise ImageReadError(path, f"cannot read NIfTI ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'corrupt'})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        what = f"a 4-D time series of {data.shape[3]} volumes" if data.ndim == 4 else f"{data.ndim}-D"
        raise ImageReadError(path, f"NIfTI of shape {data.shape} is {what}; segment reads one 3-D volume (extract one first, e.g. fslroi)")
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    zooms = tuple(round(float(z), 6) for z in image.header.get_zooms()[:3])
    zooms += (1.0,) * (3 - len(zooms))
    spacing = (zooms[2], zooms[1], zooms[0]) if all(z > 0 for z in zooms) else None
    volume = data.transpose(2, 1, 0)
    return volume, VolumeInfo(volume.shape, str(path), "nifti", spacing, image.header.copy())


def _read_tiff_stack(path: Path) -> tuple[np.ndarray, VolumeInfo]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data, axes = series.asarray(), series.axes
            page = tif.pages[0]
            tags = {tag.name: tag.value for tag in page.tags}
            imagej = dict(tif.imagej_metadata or {})
    except Exception as exc:  # tifffile raises many types for a bad file
        raise ImageReadError(path, f"cannot read TIFF stack ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'corrupt'})") from None
    volume = _zyx_order(data, axes, path)
    tiff = {"imagej": bool(imagej)}
    x_res, y_res = tags.get("XResolution"), tags.get("YResolution")
    dx = dy = None
    if x_res and y_res and x_res[0] and y_res[0]:
        dx, dy = x_res[1] / x_res[0], y_res[1] / y_res[0]
        tiff["resolution"] = (x_res[0] / x_res[1], y_res[0] / y_res[1])
        tiff["resolutionunit"] = int(tags.get("ResolutionUnit", 1))
    if "spacing" in imagej:
        tiff["spacing"] = float(imagej["spacing"])
    if "unit" in imagej:
        tiff["unit"] = str(imagej["unit"])
    spacing = (tiff["spacing"], dy, dx) if dx and "spacing" in tiff else None
    return volume, VolumeInfo(volume.shape, str(path), "tiff", spacing, None, tiff)


def _zyx_order(data: np.ndarray, axes: str, path: Path) -> np.ndarray:
    """A TIFF series as (Z, H, W[, C]): planes first (Z, pages, time), samples or channels last."""
    planes = [i for i, axis in enumerate(axes) if axis in "ZQIT"]
    channels = [i for i, axis in enumerate(axes) if axis in "CS"]
    rows, cols = axes.find("Y"), axes.find("X")
    if rows < 0 or cols < 0 or len(planes) > 1 or len(channels) > 1 or len(planes) + len(channels) + 2 != data.ndim:
        raise ImageReadError(path, f"TIFF of axes {axes!r} and shape {data.shape} is not one (Z, Y, X[, C]) stack")
    data = np.moveaxis(data, planes + [rows, cols] + channels, list(range(data.ndim)))
    return data if planes else data[None]


def write_volume(path: str | os.PathLike, labels: np.ndarray, info: VolumeInfo, *, protect: tuple[Path, ...] = ()) -> Path:
    """Write a (Z, H, W) volume in ``info``'s format with its metadata, atomically.

    Integer labels are stored as the smallest unsigned type that holds them
    (uint8, uint16); float32 maps (confidence, bias field) as float32. A
    NIfTI keeps the input's affine, qform/sform codes and voxel sizes (no
    intensity scaling); a TIFF stack its resolution and ImageJ spacing.

    Raises
    ------
    OutputError
        The file cannot be written (nothing is left at ``path``).
    """
    from segment.io.write import label_dtype

    dtype = label_dtype(labels) if labels.dtype.kind in "iub" else np.dtype(np.float32)
    data = np.ascontiguousarray(labels, dtype=dtype)
    if data.ndim != 3:
        raise OutputError(f"{path}: a volume must be (Z, H, W); got shape {data.shape}")
    if info.format == "nifti":
        return write_atomic(path, lambda temporary: _write_nifti(temporary, data, info, str(path).endswith(".gz")), protect=protect)
    return write_atomic(path, lambda temporary: _write_tiff_stack(temporary, data, info), protect=protect)


def _write_nifti(temporary: Path, data: np.ndarray, info: VolumeInfo, compressed: bool) -> None:
    import nibabel

    header = info.header.copy() if info.header is not None else nibabel.Nifti1Header()
    volume = data.transpose(2, 1, 0)
    if info.header is not None and len(info.header.get_data_shape()) == 2:
        volume = volume[:, :, 0]
    image = nibabel.Nifti1Image(volume, None, header=header)
    if info.header is not None:
        image.set_qform(info.header.get_qform(), code=int(info.header["qform_code"]))
        image.set_sform(info.header.get_sform(), code=int(info.header["sform_code"]))
    image.set_data_dtype(data.dtype)
    image.header.set_slope_inter(1.0, 0.0)
    if data.dtype.kind == "u":
        image.header["cal_min"], image.header["cal_max"] = 0, int(data.max()) if data.size else 0
    payload = image.to_bytes()
    temporary.write_bytes(gzip.compress(payload, compresslevel=6, mtime=0) if compressed else payload)


def _write_tiff_stack(temporary: Path, data: np.ndarray, info: VolumeInfo) -> None:
    import tifffile

    tiff = info.tiff or {}
    options: dict[str, Any] = {"photometric": "minisblack"}
    if "resolution" in tiff:
        options["resolution"] = tiff["resolution"]
        options["resolutionunit"] = tiff["resolutionunit"]
    if tiff.get("imagej"):
        metadata = {"axes": "ZYX", **{key: tiff[key] for key in ("spacing", "unit") if key in tiff}}
        tifffile.imwrite(temporary, data, imagej=True, metadata=metadata, **options)
    else:
        tifffile.imwrite(temporary, data, metadata={"axes": "ZYX"}, **options)
