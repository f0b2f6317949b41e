"""Images too large for memory: fit on a sample, then label and write row band by row band.

The in-memory pipeline (:func:`segment.segment_image`) holds the features of
every pixel, a label and a confidence map, and full-size pictures while it
writes them: tens of bytes per pixel. For a 200-megapixel scan that is more
than a small machine or a busy worker can spare, so :func:`segment_tiled`

1. fits the mixture on a jittered-grid sample of the pixels (the same sample
   :func:`segment_image` would fit on), computing features for those pixels
   only;
2. computes features, labels and confidences for one band of rows at a time,
   sized to fit the memory budget, with positions taken in whole-image
   coordinates so that every band sees the same feature space;
3. streams each band into the output files (PNG rows compressed on the fly,
   confidence rows appended), each written to a temporary file and renamed
   into place at the end, and accumulates the per-component statistics.

Only the decoded image and one band are ever in memory. Labels are the same
as the in-memory pipeline's for the same settings (same sample, same
features). Spatial post-processing (morphology, small-region merging,
relabelling) and the smoothing prior need the whole label map, so they are
skipped for tiled images; the JSON summary says so.
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

from segment import features, io, preprocess, render
from segment.config import SegmentConfig
from segment.gmm import GaussianMixture

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


def _n_features(channels: int, config: SegmentConfig) -> int:
    colour = 1 if channels in (1, 2) or config.color_space == "gray" else 3
    return colour + (2 if config.position_weight > 0 else 0)


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
    per_pixel = _INMEMORY_BYTES_PER_PIXEL + _INMEMORY_BYTES_PER_FEATURE * _n_features(channels, config)
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
    available = budget - _BASELINE_BYTES - image_bytes
    per_row = width * (_BAND_BYTES_PER_PIXEL + 8 * _n_features(channels, config))
    return int(min(height, max(_MIN_BAND_ROWS, available // per_row)))


# ----------------------------------------------------------------- features
def band_features(
    image: np.ndarray,
    start: int,
    stop: int,
    color_space: str,
    position_weight: float,
    stretch: tuple[float, float] | None = None,
) -> np.ndarray:
    """Features of rows ``start:stop`` in whole-image coordinates, ((stop-start)*W, D) float32."""
    height, width = image.shape[:2]
    colour = features.color_features(features.stretch_to_unit(image[start:stop], stretch), color_space)
    n_colour = colour.shape[2]
    n_position = 2 if position_weight > 0 else 0
    out = np.empty((stop - start, width, n_colour + n_position), dtype=np.float32)
    out[:, :, :n_colour] = colour
    del colour
    if n_position:
        scale = np.float32(features.FEATURE_SCALE * position_weight / max(height, width))
        out[:, :, n_colour] = (np.arange(width, dtype=np.float32) + 0.5) * scale
        out[:, :, n_colour + 1] = ((np.arange(start, stop, dtype=np.float32) + 0.5) * scale)[:, None]
    return out.reshape((stop - start) * width, -1)


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
    """An uncompressed TIFF array written band by band through short-lived memory maps."""

    def __init__(self, path: Path, shape: tuple[int, int], dtype: np.dtype, protect: tuple[Path, ...] = ()) -> None:
        super().__init__(path, protect)
        import tifffile

        self.handle.close()
        mapped = tifffile.memmap(self.tmp, shape=shape, dtype=dtype, bigtiff=True)
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
    model: GaussianMixture | None = None,
    budget: int,
    source: str | os.PathLike | None = None,
    kinds: tuple[str, ...] | None = None,
) -> TiledSegmentation:
    """Segment a large image band by band and write its outputs without holding them in memory.

    Parameters
    ----------
    image : (H, W[, C]) ndarray
        The decoded image (see :func:`segment.io.as_image`); not modified.
    config : SegmentConfig
        Settings. Post-processing and smoothing are not applied (see Notes).
    outdir : path-like
        Output directory (created if missing).
    stem : str
        File name stem of the outputs (as :func:`segment.save_segmentation`).
    model : GaussianMixture, optional
        A fitted model to label with; otherwise one is fitted on a grid
        sample of ``config.fit_sample`` pixels.
    budget : int
        Memory budget in bytes; sets the number of rows per band.
    source : path-like, optional
        Input file: recorded in the summary and protected from being overwritten.
    kinds : tuple of str, optional
        Outputs to write; defaults to ``config.save``.

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
    Features, labels and confidences of one band at a time are in memory,
    besides the image. The label map equals the in-memory pipeline's for the
    same settings when no post-processing is asked for. Morphology,
    small-region merging, relabelling and the smoothing prior need the
    whole label map and are skipped; ``summary["tiling"]`` lists them.
    """
    from segment import __version__
    from segment.outputs import output_paths
    from segment.pipeline import _numba_threads, _with_model_features, fit_model

    cfg = _with_model_features(config, model) if model is not None else config
    kinds = cfg.save if kinds is None else tuple(kinds)
    timings: dict[str, float] = {}
    start = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    pixels = io.as_image(image)
    pixels = preprocess.denoise(preprocess.downscale(pixels, cfg.max_side), cfg.denoise, cfg.denoise_size)
    height, width = pixels.shape[:2]
    stretch = features.unit_range(pixels)
    alpha = pixels[:, :, 3] if pixels.ndim == 3 and pixels.shape[2] == 4 else None
    if alpha is not None and alpha.all():
        alpha = None
    lap("preprocess")

    with _numba_threads(cfg.n_jobs):
        if model is None:
            # "All pixels" (fit_sample=0) is not an option at this size: a million is plenty.
            flat = fit_sample_indices((height, width), alpha, cfg.fit_sample or 1_000_000, cfg.seed)
            if len(flat) == 0:
                raise ValueError(f"{source or 'image'}: no opaque pixel to segment")
            sample = features.sample_features(pixels, flat, cfg.color_space, cfg.position_weight, stretch)
            n_colour = sample.shape[1] - (2 if cfg.position_weight > 0 else 0)
            model = fit_model(sample, n_colour, cfg)
            del sample, flat
        lap("fit")
        n_features = model.means_.shape[1]
        n_colour = n_features - (2 if cfg.position_weight > 0 else 0)
        rows_per_band = band_rows(pixels.shape, pixels.dtype.itemsize, cfg, budget)
        outdir = Path(outdir)
        try:
            outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise io.OutputError(f"{outdir}: cannot create output directory ({exc.strerror or exc})") from None
        paths = output_paths(outdir, stem, kinds, cfg.confidence_format)
        protect = (Path(source),) if source is not None else ()
        K = model.n_components
        label_dtype = np.uint8 if K <= 255 else np.uint16
        streams: dict[str, Any] = {}
        try:
            if "labels" in paths:
                streams["labels"] = PngStream(paths["labels"], height, width, 1, label_dtype, protect)
            if "color" in paths:
                streams["color"] = PngStream(paths["color"], height, width, 3, np.uint8, protect)
            if "overlay" in paths:
                streams["overlay"] = PngStream(paths["overlay"], height, width, 3, np.uint8, protect)
            if "confidence" in paths:
                kind = NpyStream if cfg.confidence_format == "npy" else TiffStream
                streams["confidence"] = kind(paths["confidence"], (height, width), np.float32, protect)
            stats = _BandStatistics(K, height, width)
            colours = render.palette(K + 1)
            for row in range(0, height, rows_per_band):
                stop = min(height, row + rows_per_band)
                lookahead = min(height, stop + 1)  # one more row: boundaries look at the row below
                labels, confidence = _label_band(pixels, row, lookahead, model, cfg, stretch, n_features)
                if labels.shape[0] > stop - row:
                    below, labels, confidence = labels[-1], labels[:-1], confidence[:-1]
                else:
                    below = None
                display = render.display_rgb(features.stretch_to_unit(pixels[row:stop], stretch))
                stats.add(row, labels, display)
                if "labels" in streams:
                    streams["labels"].write_rows(labels.astype(label_dtype))
                if "color" in streams:
                    streams["color"].write_rows(colours[labels])
                if "overlay" in streams:
                    edge = render.boundaries(labels if below is None else np.vstack([labels, below[None]]))
                    display = display.copy() if not display.flags.writeable or display.base is not None else display
                    display[edge[: stop - row]] = (255, 255, 0)
                    streams["overlay"].write_rows(display)
                if "confidence" in streams:
                    streams["confidence"].write_rows(confidence)
                del labels, confidence, display
            lap("label")
            for stream in streams.values():
                stream.commit()
            streams = {}
        finally:
            for stream in streams.values():
                stream.abort()

    names = features.feature_names(n_colour, cfg.color_space, cfg.position_weight)
    skipped = [
        name
        for name, active in (
            ("morphology", cfg.opening_radius > 0 or cfg.closing_radius > 0),
            ("merge_similar_regions", cfg.merge_cost > 0),
            ("merge_small_regions", cfg.min_region_size(pixels.shape[0] * pixels.shape[1]) > 1 or cfg.hole_size > 1),
            ("relabel", cfg.relabel),
            ("smoothing", cfg.smoothing > 0),
        )
        if active
    ]
    timings["total"] = time.perf_counter() - start
    summary = {
        "segment_version": __version__,
        "input": {"path": None if source is None else str(source), "shape": list(pixels.shape), "dtype": str(pixels.dtype)},
        "settings": cfg.to_dict(),
        "n_components": int(K),
        "n_labels": stats.n_labels,
        "features": names,
        "components": stats.components(model),
        "log_likelihood": _finite_or_none(getattr(model, "lower_bound_", None)),
        "iterations": int(getattr(model, "n_iter_", 0)),
        "converged": bool(getattr(model, "converged_", False)),
        "log_likelihood_history": [float(v) for v in getattr(model, "log_likelihood_history_", [])],
        "timings": {k: round(v, 6) for k, v in timings.items()},
        "tiling": {
            "rows_per_band": int(rows_per_band),
            "bands": math.ceil(height / rows_per_band),
            "budget_bytes": int(budget),
            "skipped": skipped,
        },
        "outputs": {kind: path.name for kind, path in paths.items()},
    }
    if "json" in paths:
        io.write_json(paths["json"], summary, protect=protect)
    return TiledSegmentation(
        summary=summary,
        paths=paths,
        n_labels=stats.n_labels,
        n_components=int(K),
        shape=(height, width),
        label_thumbnail=stats.thumbnail,
        timings=timings,
    )


def fit_sample_indices(shape: tuple[int, int], alpha: np.ndarray | None, size: int, seed: int) -> np.ndarray:
    """Raster indices of the pixels a model is fitted on, as :func:`segment.segment_image` picks them.

    Parameters
    ----------
    shape : (H, W)
    alpha : (H, W) ndarray or None
        Alpha channel; transparent pixels are never picked.
    size : int
        About this many pixels on a jittered grid (:func:`segment.pipeline.grid_sample`);
        0 takes every pixel.
    seed : int
        Seed of the jitter.

    Returns
    -------
    (N,) int64 ndarray
    """
    from segment.pipeline import grid_sample

    height, width = shape
    if alpha is not None and alpha.all():
        alpha = None
    if size == 0:
        return np.arange(height * width, dtype=np.int64) if alpha is None else np.flatnonzero(alpha)
    rng = np.random.default_rng(seed)
    if alpha is None:
        return np.asarray(grid_sample(shape, None, size, rng), dtype=np.int64)
    n_valid = int(np.count_nonzero(alpha))
    if n_valid <= size:
        return np.flatnonzero(alpha)
    flat = np.asarray(grid_sample(shape, None, max(1, round(size * height * width / n_valid)), rng), dtype=np.int64)
    return flat[alpha.reshape(-1)[flat] > 0]


def _label_band(pixels, start, stop, model, cfg, stretch, n_features):
    feats = band_features(pixels, start, stop, cfg.color_space, cfg.position_weight, stretch)
    if feats.shape[1] != n_features:
        raise ValueError(
            f"the model expects {n_features} features but this image gives {feats.shape[1]} "
            "(a greyscale image with a colour model, or the reverse?)"
        )
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


class _BandStatistics:
    """Per-component pixel counts and colour sums, and a label thumbnail, accumulated band by band."""

    def __init__(self, n_components: int, height: int, width: int) -> None:
        self.K = n_components
        self.counts = np.zeros(n_components + 1, dtype=np.int64)
        self.sums = np.zeros((n_components + 1, 3), dtype=np.float64)
        self.rows, self.cols = thumbnail_grid(height, width)
        self.thumbnail = np.zeros((len(self.rows), len(self.cols)), dtype=np.int32)

    def add(self, start: int, labels: np.ndarray, display: np.ndarray) -> None:
        flat = labels.ravel()
        self.counts += np.bincount(flat, minlength=self.K + 1)
        picture = display.reshape(-1, 3)
        for c in range(3):
            self.sums[:, c] += np.bincount(flat, weights=picture[:, c], minlength=self.K + 1)
        inside = (self.rows >= start) & (self.rows < start + labels.shape[0])
        self.thumbnail[inside] = labels[self.rows[inside] - start][:, self.cols]

    @property
    def n_labels(self) -> int:
        return int(np.count_nonzero(self.counts[1:]))

    def components(self, model: GaussianMixture) -> list[dict[str, Any]]:
        stats = []
        for k in range(self.K):
            n = int(self.counts[k + 1])
            stats.append(
                {
                    "label": k + 1,
                    "weight": float(model.weights_[k]),
                    "mean_features": [float(v) for v in model.means_[k]],
                    "pixel_count": n,
                    "mean_rgb": [round(float(v), 2) for v in self.sums[k + 1] / n] if n else None,
                }
            )
        return stats


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
