"""Images too large for memory: the pipeline's stages, with the full-resolution work done band by band.

The in-memory pipeline (:func:`segment.segment_image`) holds the features of
every pixel, a label and a confidence map, and full-size pictures while it
writes them: tens of bytes per pixel. For a 200-megapixel scan that is more
than a small machine or a busy worker can spare, so :func:`segment_tiled`
runs the same stages with only the decoded image and one band of rows of
full-resolution data in memory:

1. an image above ``work_pixels`` is area-downscaled to its working copy
   band by band, and the copy goes through the same fit, labelling,
   smoothing, region merging and relabelling as in memory
   (:func:`segment.pipeline.segment_working_copy`); an image within
   ``work_pixels`` goes through them whole (:func:`segment.pipeline.label_image`);
2. boundaries are placed at full resolution band by band
   (:func:`segment.upscale.refine_rows`, each band in a window wide enough
   that its labels equal the whole image's);
3. each band is streamed into the output files (PNG rows compressed on the
   fly, confidence rows appended), each written to a temporary file and
   renamed into place at the end.

With ``bias`` the field is fitted on the working copy (as in memory) and
the image divided by it, band by band at full resolution, into a corrected
copy (uint16, or float32 for a float image) that the bands are labelled
from; ``--save bias`` streams the field band by band too.

The label map is therefore the in-memory pipeline's. Without spatial steps
(a plain per-pixel mixture) the mixture is fitted on the same sample and
every band is labelled by it, again as in memory. Only an image with
transparent pixels and spatial steps (which the in-memory pipeline runs at
full resolution), or ``work_pixels=0``, is labelled per pixel with the
spatial steps skipped; the JSON summary lists them.
"""

from __future__ import annotations

import math
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segment import bias, features, io, pipeline, render, sampling, threads, upscale
from segment.config import SegmentConfig
from segment.features import FeatureSpec
from segment.gmm import Mixture
from segment.outputs import label_format_for, output_paths
from segment.result import ComponentTally, build_summary

# The fit sample of segment.batch's shared model (kept here for its callers).

# Bytes per pixel the in-memory pipeline needs at its peak, beyond the decoded
# image: A + B * D for D features (features and their colour intermediates,
# labels, confidence, post-processing, the pictures written at the end).
# Measured on 20 MP images, default settings: 56 B/px for RGB (D = 5), 51 B/px
# for 16-bit grey (D = 3); the constants err on the generous side by ~20 %.
_INMEMORY_BYTES_PER_PIXEL = 40
_INMEMORY_BYTES_PER_FEATURE = 4
# Bytes per pixel of one band in the tiled path (features, colour
# intermediates, labels, confidence, display picture, PNG rows and filters).
_BAND_BYTES_PER_PIXEL = 64
# Interpreter, NumPy, Numba, OpenCV and compiled kernels, resident before any image.
_BASELINE_BYTES = 200 * 2**20
_MIN_BAND_ROWS = 16
# Largest side of the label thumbnail kept by segment_tiled.
THUMBNAIL_SIDE = 160


# ------------------------------------------------------------------ budgets
def _n_features(shape: tuple[int, ...], config: SegmentConfig) -> int:
    spec = FeatureSpec(config.color_space, features.feature_bands(shape), config.position_weight, tuple(shape[:2]))
    return spec.n_features


def physical_memory() -> int:
    """Memory available to this process: physical RAM, capped by a cgroup limit if any."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def memory_budget(config: SegmentConfig, workers: int = 1) -> int:
    """Bytes one image may use: ``config.max_memory``, or half the RAM shared by ``workers``."""
    if config.max_memory is not None:
        return int(config.max_memory)
    return max(2**28, physical_memory() // (2 * max(1, workers)))


def estimate_memory(shape: tuple[int, ...], dtype: np.dtype, config: SegmentConfig) -> int:
    """Peak bytes of the in-memory pipeline for an image of ``shape`` and ``dtype``.

    Parameters
    ----------
    shape : tuple
        (H, W) or (H, W, C) of the decoded image.
    dtype : numpy dtype
        Its dtype (uint8, uint16 or float32).
    config : SegmentConfig
        Settings; ``max_side`` shrinks the part processed after loading.

    Returns
    -------
    int
        An estimate of the resident memory at the peak, in bytes.
    """
    height, width = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    decoded = height * width * channels * np.dtype(dtype).itemsize
    if config.max_side is not None and max(height, width) > config.max_side:
        scale = config.max_side / max(height, width)
        height, width = max(1, round(height * scale)), max(1, round(width * scale))
    pixels = height * width
    per_pixel = _INMEMORY_BYTES_PER_PIXEL + _INMEMORY_BYTES_PER_FEATURE * _n_features(shape, config)
    per_pixel += 2 * channels * np.dtype(dtype).itemsize  # preprocessed copy and display picture
    return _BASELINE_BYTES + decoded + pixels * per_pixel


def needs_tiling(shape: tuple[int, ...], dtype: np.dtype, config: SegmentConfig, budget: int) -> bool:
    """Whether an image of this shape would exceed ``budget`` bytes in memory."""
    return estimate_memory(shape, dtype, config) > budget


def band_rows(shape: tuple[int, ...], itemsize: int, config: SegmentConfig, budget: int) -> int:
    """Rows per band so that the image, one band and the baseline fit in ``budget``."""
    height, width = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    image_bytes = height * width * channels * itemsize
    if config.denoise != "none":
        image_bytes *= 2
    if config.bias:  # the bias-corrected copy of the feature bands
        image_bytes += height * width * features.feature_bands(shape) * corrected_itemsize(itemsize)
    available = budget - _BASELINE_BYTES - image_bytes
    per_row = width * (_BAND_BYTES_PER_PIXEL + 8 * _n_features(shape, config))
    return int(min(height, max(_MIN_BAND_ROWS, available // per_row)))


def corrected_itemsize(itemsize: int) -> int:
    """Bytes per value of the bias-corrected copy of an image with values of ``itemsize`` bytes."""
    return 4 if itemsize >= 4 else 2


def corrected_copy(pixels: np.ndarray, spec: FeatureSpec, field: bias.BiasField, rows_per_band: int) -> tuple[np.ndarray, FeatureSpec]:
    """The feature bands of ``pixels`` divided by ``field``, made band by band, and their spec.

    Integer images give uint16 unit values (steps of 1/65535, far below an
    8-bit level), float images float32 ones: the in-memory pipeline's
    corrected image (:meth:`BiasField.correct`) within that rounding. The
    field is evaluated half a band at a time (its polynomial terms take more
    bytes per pixel than a band of features).
    """
    height, width = spec.shape
    dtype = np.float32 if corrected_itemsize(pixels.dtype.itemsize) == 4 else np.uint16
    out = np.empty((height, width) if spec.n_bands == 1 else (height, width, spec.n_bands), dtype=dtype)
    for start, stop in upscale.band_starts(height, max(1, rows_per_band // 2)):
        unit = spec.unit(pixels[start:stop]).reshape(stop - start, width, spec.n_bands)
        values = np.clip(unit / field.rows(start, stop), 0.0, 1.0)
        if dtype == np.uint16:
            values = np.rint(values * np.float32(65535))
        out[start:stop] = values.reshape(out[start:stop].shape)
    return out, spec.for_working_copy(spec.shape)


# ------------------------------------------------------------------ writers
def _temporary(path: Path) -> Path:
    # Same naming as segment.io.write_atomic, so that leftovers are recognised.
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


class _Stream:
    """A file written piece by piece into a temporary file, renamed into place by commit()."""

    def __init__(self, path: Path, protect: tuple[Path, ...]) -> None:
        target = path.resolve()
        if any(target == Path(p).resolve() for p in protect):
            raise io.OutputError(f"{path}: output would overwrite the input file; choose another output directory")
        self.path = path
        self.tmp = _temporary(path)
        try:
            self.handle = open(self.tmp, "wb")
        except OSError as exc:
            raise io.OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None

    def write(self, data: bytes) -> None:
        try:
            self.handle.write(data)
        except OSError as exc:
            raise io.OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None

    def commit(self) -> None:
        try:
            self.handle.close()
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise io.OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None

    def abort(self) -> None:
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


class PngStream(_Stream):
    """A PNG image written band of rows by band of rows.

    Greyscale or RGB, 8 or 16 bits. Each row is stored with the PNG "Up"
    filter (difference to the row above), which leaves runs of zeros in
    label maps and smooth pictures, and compressed with zlib as it comes.
    """

    def __init__(self, path: Path, height: int, width: int, channels: int, dtype: np.dtype, protect: tuple[Path, ...] = ()) -> None:
        super().__init__(path, protect)
        self.dtype = np.dtype(dtype)
        self.channels = channels
        self.width = width
        row_bytes = width * channels * self.dtype.itemsize
        self.previous = np.zeros(row_bytes, dtype=np.uint8)
        self.compressor = zlib.compressobj(level=3)
        colour_type = {1: 0, 3: 2}[channels]
        self.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8 * self.dtype.itemsize, colour_type, 0, 0, 0))

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def write_rows(self, rows: np.ndarray) -> None:
        """Append rows, (h, W) or (h, W, C) of this stream's dtype."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype.newbyteorder(">") if self.dtype.itemsize > 1 else self.dtype)
        raw = rows.view(np.uint8).reshape(rows.shape[0], -1)
        filtered = np.empty((raw.shape[0], raw.shape[1] + 1), dtype=np.uint8)
        filtered[:, 0] = 2  # filter type "Up"
        np.subtract(raw[:1], self.previous[None], out=filtered[:1, 1:])
        np.subtract(raw[1:], raw[:-1], out=filtered[1:, 1:])
        self.previous = raw[-1].copy()
        data = self.compressor.compress(filtered.tobytes())
        if data:
            self._chunk(b"IDAT", data)

    def commit(self) -> None:
        self._chunk(b"IDAT", self.compressor.flush())
        self._chunk(b"IEND", b"")
        super().commit()


class NpyStream(_Stream):
    """A ``.npy`` array written band of rows by band of rows."""

    def __init__(self, path: Path, shape: tuple[int, int], dtype: np.dtype, protect: tuple[Path, ...] = ()) -> None:
        super().__init__(path, protect)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self.handle, header)
        self.dtype = np.dtype(dtype)

    def write_rows(self, rows: np.ndarray) -> None:
        """Append rows in C order."""
        self.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())


class TiffStream(_Stream):
    """An uncompressed TIFF array written band by band through short-lived memory maps.

    With ``info``, the file carries the input's georeferencing (and
    ``nodata``) or resolution, as :func:`segment.io.write_tiff` writes them.
    """

    def __init__(
        self, path: Path, shape: tuple[int, ...], dtype: np.dtype, protect: tuple[Path, ...] = (),
        info: io.ImageInfo | None = None, nodata: float | None = None,
    ) -> None:
        super().__init__(path, protect)
        import tifffile

        from segment.io.geotiff import geotiff_extratags

        self.handle.close()
        options: dict[str, Any] = {}
        if info is not None:
            info = info.resized(shape)
            options["extratags"] = geotiff_extratags(info.georeference, nodata)
            if info.georeference is None and info.dpi is not None:
                options.update(resolution=info.dpi, resolutionunit="INCH")
        if len(shape) == 3:  # bands as samples of one page, as segment.io.write_tiff stores them
            options.update(photometric="minisblack", planarconfig="contig")
        mapped = tifffile.memmap(self.tmp, shape=shape, dtype=dtype, bigtiff=True, **options)
        del mapped
        self.row = 0

    def write_rows(self, rows: np.ndarray) -> None:
        """Write the next rows (mapped only while they are copied)."""
        import tifffile

        mapped = tifffile.memmap(self.tmp, mode="r+")
        mapped[self.row : self.row + len(rows)] = rows
        mapped.flush()
        del mapped
        self.row += len(rows)

    def commit(self) -> None:
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise io.OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None

    def abort(self) -> None:
        self.tmp.unlink(missing_ok=True)


# --------------------------------------------------------------- the driver
# Outputs and settings that need the whole image in memory.
_WHOLE_IMAGE_OUTPUTS = ("regions", "polygons", "probabilities", "hierarchy")


def _georeferenced(info: io.ImageInfo | None) -> bool:
    return info is not None and info.georeference is not None


def _check_banded(cfg: SegmentConfig, kinds: tuple[str, ...], info: io.ImageInfo | None, image: np.ndarray) -> None:
    """Refuse, in one line, what an image labelled in row bands cannot give."""
    above = "for an image above the memory budget (raise --max-memory)"
    whole = [kind for kind in kinds if kind in _WHOLE_IMAGE_OUTPUTS]
    if whole:
        raise io.OutputError(f"--save {','.join(whole)} is not available {above}")
    if "labels" in kinds and label_format_for(cfg.label_format, _georeferenced(info)) == "zarr":
        raise io.OutputError(f"--label-format zarr is not available {above}; use tif")
    channels = image.shape[2] if image.ndim == 3 else 1
    nodata = cfg.nodata if cfg.nodata is not None else (info.nodata if info is not None else None)
    if cfg.bands is not None or nodata is not None or channels not in (1, 3, 4):
        raise ValueError(f"band selection, nodata and multiband images are not available {above}")
    if cfg.bias and channels == 4 and not image[:, :, 3].all():
        raise ValueError(f"bias correction of an image with transparent pixels is not available {above}; use --no-bias")


@dataclass
class TiledSegmentation:
    """What :func:`segment_tiled` wrote and measured.

    Attributes
    ----------
    summary : dict
        The JSON summary (also written when "json" is among the outputs),
        with the same keys as :meth:`segment.Segmentation.summary` plus
        ``"tiling"``.
    paths : dict
        Output kind -> path written.
    n_labels : int
        Number of distinct labels in the label map.
    n_components : int
    shape : tuple of int
        (H, W) of the labelled image.
    label_thumbnail : (h, w) int32 ndarray
        Labels at a grid of at most ``THUMBNAIL_SIDE`` points per side (nearest).
    timings : dict
        Seconds per stage.
    """

    summary: dict[str, Any]
    paths: dict[str, Path]
    n_labels: int
    n_components: int
    shape: tuple[int, int]
    label_thumbnail: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


def thumbnail_grid(height: int, width: int, side: int = THUMBNAIL_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a nearest-neighbour thumbnail of at most ``side`` pixels per side."""
    scale = min(1.0, side / max(height, width))
    th, tw = max(1, round(height * scale)), max(1, round(width * scale))
    rows = np.minimum(((np.arange(th) + 0.5) * height / th).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(tw) + 0.5) * width / tw).astype(np.int64), width - 1)
    return rows, cols


def segment_tiled(
    image: np.ndarray,
    config: SegmentConfig,
    outdir: str | os.PathLike,
    stem: str,
    *,
    model: Mixture | None = None,
    budget: int,
    source: str | os.PathLike | None = None,
    kinds: tuple[str, ...] | None = None,
    info: io.ImageInfo | None = None,
) -> TiledSegmentation:
    """Segment a large image as :func:`segment.segment_image` does, writing its outputs band by band.

    Parameters
    ----------
    image : (H, W[, C]) ndarray
        The decoded image (see :func:`segment.io.as_image`); not modified.
    config : SegmentConfig
        Settings.
    outdir : path-like
        Output directory (created if missing).
    stem : str
        File name stem of the outputs (as :func:`segment.save_segmentation`).
    model : Mixture, optional
        A fitted model to label with; otherwise one is fitted.
    budget : int
        Memory budget in bytes; sets the number of rows per band.
    source : path-like, optional
        Input file: recorded in the summary and protected from being overwritten.
    kinds : tuple of str, optional
        Outputs to write; defaults to ``config.save``.
    info : ImageInfo, optional
        The input's metadata, carried into the summary and a TIFF label map.

    Returns
    -------
    TiledSegmentation

    Raises
    ------
    OutputError
        An output that cannot be written (nothing partial is left behind).
    ValueError
        Settings that do not fit the image, or a model for other features.

    Notes
    -----
    Besides the image, one band of full-resolution rows and the working
    copy (``work_pixels``) are in memory. The label map is the in-memory
    pipeline's, except for an image with transparent pixels and spatial
    steps, or ``work_pixels=0``: those are labelled per pixel and
    ``summary["tiling"]["skipped"]`` lists the steps left out.
    """
    cfg = pipeline.config_for_model(config, model) if model is not None else config
    kinds = cfg.save if kinds is None else tuple(kinds)
    _check_banded(cfg, kinds, info, image)
    timer = pipeline.StageTimer()
    pixels = pipeline.preprocess_image(io.as_image(image), cfg)
    height, width = pixels.shape[:2]
    spec = FeatureSpec.for_image(pixels, cfg.color_space, cfg.position_weight)
    transparent = pixels.ndim == 3 and pixels.shape[2] == 4 and not pixels[:, :, 3].all()
    rows_per_band = band_rows(pixels.shape, pixels.dtype.itemsize, cfg, budget)
    timer.lap("preprocess")
    with threads.limited(cfg.n_jobs):
        bands = _band_source(pixels, spec, cfg, model, transparent, rows_per_band, timer, source)
        written = _write_bands(pixels, spec, cfg, bands, rows_per_band, outdir, stem, kinds, source, info)
        timer.lap("label" if bands.skipped is not None else "upscale")
    n_labels = int(np.count_nonzero(written.seen[1:]))
    summary = build_summary(
        source=None if source is None else str(source),
        image_shape=pixels.shape,
        image_dtype=pixels.dtype,
        config=cfg,
        model=bands.model,
        n_labels=n_labels,
        working_shape=bands.working_shape,
        feature_names=spec.names,
        components=bands.components if bands.components is not None else written.tally.components(bands.model),
        timings=timer.total(),
        info=info,
        bias_field=bands.field,
    )
    summary["tiling"] = {
        "rows_per_band": int(rows_per_band),
        "bands": math.ceil(height / rows_per_band),
        "budget_bytes": int(budget),
        "skipped": bands.skipped or [],
    }
    summary["outputs"] = {kind: path.name for kind, path in written.paths.items()}
    if "json" in written.paths:
        io.write_json(written.paths["json"], summary, protect=written.protect)
    return TiledSegmentation(
        summary=summary,
        paths=written.paths,
        n_labels=n_labels,
        n_components=int(bands.model.n_components),
        shape=(height, width),
        label_thumbnail=written.thumbnail,
        timings=timer.timings,
    )


@dataclass
class _Bands:
    """Where the labels of each band come from, with what describes them."""

    rows: Any  # rows(start, stop) -> (labels, confidence) of those rows
    model: Mixture
    max_label: int
    working_shape: tuple[int, int] | None = None
    components: list[dict[str, Any]] | None = None  # None: tallied band by band
    skipped: list[str] | None = None  # None: every stage ran
    field: bias.BiasField | None = None  # the bias field over the full grid, when estimated


def _band_source(pixels, spec, cfg, model, transparent, rows_per_band, timer, source) -> _Bands:
    """Run the whole-image stages and say how to label each band."""
    height, width = pixels.shape[:2]
    shared = model is not None
    spatial = pipeline.has_spatial_steps(cfg, shared_model=shared)
    work_shape = pipeline.working_shape((height, width), None, cfg, shared_model=shared)
    if spatial and not transparent and cfg.work_pixels and work_shape is not None:
        part = pipeline.segment_working_copy(pixels, spec, work_shape, cfg, model, timer.lap, rows_per_band)
        field = None if part.bias is None else part.bias.resized((height, width))
        image, image_spec = (pixels, spec) if field is None else corrected_copy(pixels, spec, field, rows_per_band)
        refinement = upscale.prepare_refinement(part.regions, part.colours, image, image_spec, cfg.smoothing)

        def refined(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            labels = upscale.refine_rows(refinement, image, image_spec, start, stop)
            return labels, upscale.enlarge_rows(part.confidence, (height, width), start, stop)

        return _Bands(refined, part.model, int(part.regions.max()), work_shape, part.components, field=field)
    if spatial and not transparent and cfg.work_pixels:  # within work_pixels: whole, as in memory
        part = pipeline.label_image(pixels, spec, None, cfg, model, timer.lap)
        return _Bands(
            lambda start, stop: (part.regions[start:stop], part.confidence[start:stop]),
            part.model, int(part.regions.max()), None, part.components, field=part.bias,
        )
    if model is None:
        # "All pixels" (fit_sample=0) is not an option at this size: a million is plenty.
        alpha = pixels[:, :, 3] if transparent else None
        if alpha is not None and not alpha.any():
            raise ValueError(f"{source or 'image'}: no opaque pixel to segment")
        model = pipeline.fit_image_model(pixels, spec, alpha, cfg, sample_size=cfg.fit_sample or 1_000_000)
    else:
        pipeline.check_model_features(model, spec)
    timer.lap("fit")
    field, image, image_spec = None, pixels, spec
    if cfg.bias:
        field, model = _working_copy_bias(pixels, spec, cfg, model, rows_per_band, refit=not shared)
        image, image_spec = corrected_copy(pixels, spec, field, rows_per_band)
        timer.lap("bias")
    skipped = [
        name
        for name, active in (
            ("morphology", cfg.opening_radius > 0 or cfg.closing_radius > 0),
            ("merge_similar_regions", not shared and cfg.merge_cost > 0),
            ("merge_small_regions", (cfg.min_size if shared else cfg.min_region_size(height * width)) > 1 or cfg.hole_size > 1),
            ("relabel", not shared and cfg.relabel),
            ("smoothing", cfg.smoothing > 0),
        )
        if active
    ]
    return _Bands(
        lambda start, stop: _label_band(image, image_spec, model, start, stop), model, model.n_components,
        skipped=skipped, field=field,
    )


def _working_copy_bias(pixels, spec, cfg, model, rows_per_band, *, refit) -> tuple[bias.BiasField, Mixture]:
    """The bias field fitted on a working copy of ``pixels`` (over their full grid) and the mixture after it."""
    height, width = spec.shape
    shape = upscale.working_shape(height, width, cfg.work_pixels or bias.FIT_PIXELS)
    work = upscale.working_copy(pixels, spec, shape, rows_per_band)
    field, model, _, _ = pipeline.correct_bias(model, work, spec.for_working_copy(shape), None, cfg.seed, refit=refit)
    return field.resized((height, width)), model


@dataclass
class _Written:
    paths: dict[str, Path]
    protect: tuple[Path, ...]
    seen: np.ndarray  # (max_label + 1,) bool: labels present
    tally: ComponentTally
    thumbnail: np.ndarray


def _write_bands(pixels, spec, cfg, bands: _Bands, rows_per_band, outdir, stem, kinds, source, info=None) -> _Written:
    """Label band after band and stream each into the output files (all or none are written)."""
    height, width = pixels.shape[:2]
    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io.OutputError(f"{outdir}: cannot create output directory ({exc.strerror or exc})") from None
    label_format = label_format_for(cfg.label_format, _georeferenced(info))
    paths = output_paths(outdir, stem, kinds, cfg.confidence_format, label_format)
    protect = (Path(source),) if source is not None else ()
    if "bias" in paths and bands.field is None:
        raise io.OutputError(f"{paths['bias']}: no bias field was estimated (run with --bias)")
    if bands.max_label > np.iinfo(np.uint16).max and "labels" in paths:
        raise io.OutputError(f"{paths['labels']}: {bands.max_label} labels do not fit a 16-bit PNG; turn off relabel or raise min_size")
    label_dtype = np.uint8 if bands.max_label <= 255 else np.uint16
    seen = np.zeros(bands.max_label + 1, dtype=bool)
    tally = ComponentTally(bands.model.n_components)
    thumb_rows, thumb_cols = thumbnail_grid(height, width)
    thumbnail = np.zeros((len(thumb_rows), len(thumb_cols)), dtype=np.int32)
    colours = render.palette(bands.max_label + 1)
    streams: dict[str, Any] = {}
    try:
        if "labels" in paths and label_format == "tif":
            nodata = 0 if info is not None and info.nodata is not None else None
            streams["labels"] = TiffStream(paths["labels"], (height, width), label_dtype, protect, info, nodata)
        elif "labels" in paths:
            streams["labels"] = PngStream(paths["labels"], height, width, 1, label_dtype, protect)
        for kind in ("color", "overlay"):
            if kind in paths:
                streams[kind] = PngStream(paths[kind], height, width, 3, np.uint8, protect)
        if "confidence" in paths:
            kind = NpyStream if cfg.confidence_format == "npy" else TiffStream
            streams["confidence"] = kind(paths["confidence"], (height, width), np.float32, protect)
        if "bias" in paths:
            field_shape = (height, width) if bands.field.n_bands == 1 else (height, width, bands.field.n_bands)
            streams["bias"] = TiffStream(paths["bias"], field_shape, np.float32, protect, info)
        for start, stop in upscale.band_starts(height, rows_per_band):
            lookahead = min(height, stop + 1)  # one more row: boundaries look at the row below
            extended, confidence = bands.rows(start, lookahead)
            labels, confidence = extended[: stop - start], confidence[: stop - start]
            display = render.display_rgb(pixels[start:stop] if spec.stretch is None else spec.unit(pixels[start:stop]))
            seen[np.flatnonzero(np.bincount(labels.ravel(), minlength=len(seen)))] = True
            if bands.components is None:
                tally.add(labels, display)
            inside = (thumb_rows >= start) & (thumb_rows < stop)
            thumbnail[inside] = labels[thumb_rows[inside] - start][:, thumb_cols]
            if "labels" in streams:
                streams["labels"].write_rows(labels.astype(label_dtype))
            if "color" in streams:
                streams["color"].write_rows(colours[labels])
            if "overlay" in streams:
                edge = render.boundaries(extended)[: stop - start]
                display = display.copy() if not display.flags.writeable or display.base is not None else display
                display[edge] = (255, 255, 0)
                streams["overlay"].write_rows(display)
            if "confidence" in streams:
                streams["confidence"].write_rows(confidence)
            if "bias" in streams:  # half a band at a time, as corrected_copy evaluates it
                for first, last in upscale.band_starts(stop - start, max(1, (stop - start) // 2)):
                    rows = bands.field.rows(start + first, start + last)
                    streams["bias"].write_rows(rows[:, :, 0] if rows.shape[2] == 1 else rows)
            del extended, labels, confidence, display
        for stream in streams.values():
            stream.commit()
        streams = {}
    finally:
        for stream in streams.values():
            stream.abort()
    return _Written(paths, protect, seen, tally, thumbnail)


def _label_band(pixels, spec: FeatureSpec, model: Mixture, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Mixture labels (0 where transparent) and confidences of rows ``start:stop``."""
    feats = spec.band_features(pixels, start, stop)
    width = pixels.shape[1]
    labels = np.zeros((stop - start) * width, dtype=np.int32)
    confidence = np.zeros((stop - start) * width, dtype=np.float32)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        valid = pixels[start:stop, :, 3].reshape(-1) > 0
        if valid.any():
            components, conf = model.label(feats[valid])
            labels[valid] = components + 1
            confidence[valid] = conf
    else:
        components, conf = model.label(feats)
        labels[:] = components + 1
        confidence[:] = conf
    return labels.reshape(stop - start, width), confidence.reshape(stop - start, width)
