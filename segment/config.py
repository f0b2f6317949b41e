"""SegmentConfig: every knob of the pipeline with its default, validated once."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

COLOR_SPACES = ("lab", "rgb", "hsv", "gray")
COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
INIT_METHODS = ("kmeans++", "random_from_data")
DENOISE_FILTERS = ("none", "gaussian", "median", "bilateral")
OUTPUT_KINDS = ("labels", "color", "overlay", "confidence", "json", "regions", "polygons", "probabilities", "bias", "hierarchy")
CONFIDENCE_FORMATS = ("npy", "tif")
LABEL_FORMATS = ("auto", "png", "tif", "zarr")
MERGE_TARGETS = ("similar", "border")
MODES = ("regions", "classes")
# The defaults that differ by mode; a field left at None takes its mode's value.
# Classes mode labels every pixel by its class: no position features, no region
# merging or relabelling, one covariance shared by the classes (a wide ink class
# would otherwise claim the paper's tail), a light Potts prior (stronger ones eat
# the edges of one-pixel strokes: see docs/classes.md) and a bias field fitted in EM.
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "regions": {
        "position_weight": 0.5, "covariance_type": "full", "smoothing": 2.0, "merge_cost": 1.0,
        "min_fraction": 0.01, "relabel": True, "bias": False,
    },
    "classes": {
        "position_weight": 0.0, "covariance_type": "tied", "smoothing": 0.25, "merge_cost": 0.0,
        "min_fraction": 0.0, "relabel": False, "bias": True,
    },
}
# A volume (MRI, CT, a microscopy stack) in classes mode also takes these unless
# told otherwise: one covariance per class (tissues differ in spread, and with a
# shared one a strong bias field swallowed the white matter) and a stronger
# Potts prior (tuned on brain MRI: docs/mri.md).
VOLUME_DEFAULTS: dict[str, Any] = {"covariance_type": "full", "smoothing": 0.75}
AUTO = "auto"
# Every file type segment.io reads (what `segment batch` looks for by default).
IMAGE_SUFFIXES = (
    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".btf", ".svs", ".bmp", ".webp", ".gif",
    ".jp2", ".j2k", ".jpf", ".jpx", ".pgm", ".ppm", ".pbm", ".pnm", ".pdf", ".nii", ".nii.gz",
)
# Smallest working copy for the spatial steps (a 100 x 100 image).
MIN_WORK_PIXELS = 10_000


def volume_defaults(given: Iterable[str]) -> dict[str, Any]:
    """The :data:`VOLUME_DEFAULTS` of the fields not among ``given`` (those the user set).

    Examples
    --------
    >>> volume_defaults(["smoothing"])
    {'covariance_type': 'full'}
    """
    given = set(given)
    return {name: value for name, value in VOLUME_DEFAULTS.items() if name not in given}


@dataclass(frozen=True)
class SegmentConfig:
    """All settings of :func:`segment.segment_image`, with their defaults.

    Fields marked "mode default" take the value of ``MODE_DEFAULTS[mode]``
    when left at None.

    Parameters
    ----------
    mode : {"regions", "classes"}
        ``"regions"`` draws the regions a person would outline in a photo
        (connected regions, similar neighbours merged). ``"classes"`` labels
        every pixel with its mixture class (ink and paper, tissues, material
        phases), class ids ordered by mean luminance: no region merging nor
        relabelling, no position features, a light Potts prior and a bias
        field by default; specks are removed only by ``min_size``.
    n_components : int or "auto"
        Number of mixture components (colour classes). ``"auto"`` counts the
        colour classes a person tells apart, within ``auto_range``: window-mean
        colours of the fit sample, a generous mixture fitted to them, its
        overlapping components merged (:mod:`segment.model_selection`).
    color_space : {"lab", "rgb", "hsv", "gray"}
        Colour features. Every space is scaled so that its main axis spans
        0..100 (Lab's L natively). Greyscale images always use intensity.
    position_weight : float
        Weight of the (x, y) position features. Positions are scaled so that
        the image's longer side spans ``100 * position_weight`` feature units,
        the same span as black-to-white in colour: 1 makes crossing the whole
        image count as much as going from black to white, whatever the image
        size. 0 turns position off. Mode default: 0.5 (regions), 0 (classes).
    covariance_type : {"full", "diag", "spherical", "tied"}
        Covariance structure of the components (scikit-learn's meaning).
        Mode default: "full" (regions), "tied" (classes).
    max_iter : int
        Maximum number of EM iterations.
    tol : float
        Convergence threshold on the change of the mean log-likelihood.
    reg_covar : float
        Added to the covariance diagonals, in squared feature units.
    n_init : int
        Number of initialisations; the best fit is kept.
    init_params : {"kmeans++", "random_from_data"}
        How the initial means are chosen.
    seed : int
        Random seed: the same seed gives the same labels.
    fit_sample : int
        Fit the mixture on at most this many pixels (a stratified grid
        sample), then label every pixel. 0 fits on all pixels.
    smoothing : float
        Strength (beta) of a Potts prior on the labels: a pixel's label gains
        ``beta`` log-probability per 4-neighbour with the same label
        (``beta / sqrt(2)`` per diagonal one), and the labels maximising the
        posterior are found by iterated conditional modes. 0 is a plain
        per-pixel mixture. Mode default: 2 (regions), 0.25 (classes).
    bias : bool
        Estimate a smooth multiplicative bias field per band (uneven light,
        shading, coil sensitivity) inside EM and label the corrected image
        (:mod:`segment.bias`). Mode default: off (regions), on (classes).
        Not available for images labelled in row bands (``max_memory``).
    work_pixels : int
        Images with more pixels than this run the spatial steps (smoothing
        and its refit, region merging) on a copy downscaled to at most this
        many pixels (area averaging); the labels are then brought back to
        full resolution and the pixels near region boundaries labelled again
        at full resolution, by the mixture under the same smoothing prior.
        Sizes in pixels (``min_size``, ``hole_size``, radii) are scaled to
        the copy. Not used for images with transparent pixels, nor for a
        plain per-pixel mixture (no smoothing, merging or relabelling).
        0 works at full resolution throughout.
    auto_range : tuple of int
        Smallest and largest number of components ``"auto"`` may choose.
    max_side : int or None
        Downscale the image so that its longer side is at most this.
    denoise : {"none", "gaussian", "median", "bilateral"}
        Pre-filter applied before features are computed.
    denoise_size : int
        Kernel diameter of the pre-filter in pixels (odd).
    min_size : int
        Connected regions smaller than this many pixels are merged into a
        neighbour (see ``merge_into``).
    min_fraction : float
        The same threshold as a fraction of the image's pixels, so that it
        scales with the image; the larger of the two applies. Not applied
        with a shared model, where a small patch of a class is still that class.
        Mode default: 0.01 (regions), 0 (classes).
    merge_cost : float
        Adjacent regions are merged, most alike first, while their merge cost
        is below this; 0 turns it off. The cost is the odds against the two
        regions being parts of one object, as a logistic model learned on
        BSDS500 train judges them from their colours, colour histograms,
        the image edge along their border at two scales, their sizes, shared
        border and texture (``merging.MERGE_WEIGHTS``): 1 merges while "one
        object" is the likelier answer, lower values merge less. Runs before
        small regions are merged. Not applied with a shared model, whose
        labels stay class ids, nor in classes mode. Mode default: 1 (regions),
        0 (classes).
    merge_into : {"similar", "border"}
        Which neighbour a small region joins: the one with the closest mean
        colour, or the one it shares the longest border with.
    hole_size : int
        Regions smaller than this, enclosed by a single other region, take
        that region's label.
    opening_radius, closing_radius : int
        Radius of a per-label morphological opening / closing (0 = off).
    relabel : bool
        Give every connected region its own label (what a person counts as
        segments) instead of one label per mixture component. Not applied
        with a shared model, whose labels stay class ids, nor in classes mode.
        Mode default: on (regions), off (classes).
    bands : tuple of int or None
        Bands (1-based) of a multiband image used as features, e.g.
        ``(1, 2, 4)``; None uses every band (alpha excluded). Every band is
        a feature scaled like colour; ``color_space`` applies to 3-band
        (RGB) images only.
    display_bands : tuple of int or None
        Three bands (1-based, of the image as read) drawn as red, green and
        blue in the pictures; None: RGB as is, the first three bands of
        other multiband images, grey for one band.
    nodata : float or None
        Pixels whose bands all equal this value take no part and get label
        0, like transparent pixels; None uses the nodata value the file
        declares (GeoTIFF GDAL_NODATA), if any.
    level : int or None
        Pyramid level to read from pyramidal TIFF, OME-TIFF and whole-slide
        files (0 = full resolution, the default).
    dpi : float
        Resolution at which PDF pages are rendered.
    volume : bool
        Read a multi-page (ZYX) TIFF as one (Z, H, W) volume, segmented by
        :func:`segment.segment_volume`, instead of page by page. NIfTI files
        (.nii, .nii.gz) are always volumes.
    save : tuple of str
        Outputs written by ``Segmentation.save``: any of "labels", "color",
        "overlay", "confidence", "json", "regions" (a CSV row per label),
        "polygons" (GeoJSON, QuPath's conventions), "probabilities"
        (per-component posteriors, (K, H, W) float32), "bias" (the bias
        field, (H, W[, C]) float32 TIFF; needs ``bias``) and "hierarchy" (the
        region merge hierarchy: a ucm2 16-bit PNG and the merge tree as JSON,
        see :mod:`segment.hierarchy`).
    label_format : {"auto", "png", "tif", "zarr"}
        File format of the label map: PNG, TIFF (a GeoTIFF for a
        georeferenced input) or an OME-Zarr label image; ``"auto"`` writes
        a GeoTIFF for a georeferenced input and a PNG otherwise.
    confidence_format : {"npy", "tif"}
        File format of the per-pixel confidence (max posterior) map and of
        the probabilities.
    max_pixels : int
        Images with more pixels than this are refused before decoding.
    n_jobs : int or None
        Number of threads for the EM kernels; None uses Numba's default.
    max_memory : int, str or None
        Memory budget in bytes for segmenting one image (a string such as
        "2G" or "512M" is parsed). An image whose in-memory processing would
        exceed it is labelled in row bands with a model fitted on a sample,
        and written band by band (post-processing is skipped for such images).
        None: half of the machine's memory, shared by concurrent workers.

    Examples
    --------
    >>> cfg = SegmentConfig(n_components=4, smoothing=0)
    >>> cfg.n_components, cfg.color_space
    (4, 'lab')
    >>> SegmentConfig(n_components=0)
    Traceback (most recent call last):
    ...
    ValueError: n_components must be ...
    """

    mode: str = "regions"
    n_components: int | str = 8
    color_space: str = "lab"
    position_weight: float | None = None
    covariance_type: str | None = None
    max_iter: int = 100
    tol: float = 1e-3
    reg_covar: float = 1e-2
    n_init: int = 1
    init_params: str = "kmeans++"
    seed: int = 0
    fit_sample: int = 200_000
    smoothing: float | None = None
    bias: bool | None = None
    work_pixels: int = 500_000
    auto_range: tuple[int, int] = (2, 10)
    max_side: int | None = None
    denoise: str = "none"
    denoise_size: int = 5
    min_size: int = 0
    min_fraction: float | None = None
    merge_cost: float | None = None
    merge_into: str = "similar"
    hole_size: int = 0
    opening_radius: int = 0
    closing_radius: int = 0
    relabel: bool | None = None
    bands: tuple[int, ...] | None = None
    display_bands: tuple[int, ...] | None = None
    nodata: float | None = None
    level: int | None = None
    dpi: float = 300.0
    volume: bool = False
    save: tuple[str, ...] = field(default=("labels", "color", "overlay", "json"))
    label_format: str = "auto"
    confidence_format: str = "npy"
    max_pixels: int = 500_000_000
    n_jobs: int | None = None
    max_memory: int | None = None

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, MODES)
        for name, value in MODE_DEFAULTS[self.mode].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if isinstance(self.max_memory, str):
            object.__setattr__(self, "max_memory", parse_size(self.max_memory))
        if isinstance(self.save, str):
            object.__setattr__(self, "save", tuple(s.strip() for s in self.save.split(",") if s.strip()))
        else:
            object.__setattr__(self, "save", tuple(self.save))
        object.__setattr__(self, "auto_range", tuple(self.auto_range))
        for name in ("bands", "display_bands"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, _parse_bands(name, value))
            elif value is not None:
                object.__setattr__(self, name, tuple(value))
        _validate(self)

    def replace(self, **changes: Any) -> "SegmentConfig":
        """Return a copy with some fields changed (validated again).

        Changing ``mode`` also resets the fields with mode defaults to the
        new mode's values, unless they are among ``changes``.

        Examples
        --------
        >>> cfg = SegmentConfig().replace(mode="classes")
        >>> cfg.relabel, cfg.position_weight, cfg.bias
        (False, 0.0, True)
        """
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown SegmentConfig field(s): {', '.join(sorted(unknown))}")
        if changes.get("mode", self.mode) != self.mode:
            changes = {**dict.fromkeys(MODE_DEFAULTS["regions"]), **changes}
        return dataclasses.replace(self, **changes)

    def min_region_size(self, n_pixels: int) -> int:
        """Smallest region kept in an image of ``n_pixels`` pixels: ``min_size`` or ``min_fraction`` of them.

        Examples
        --------
        >>> SegmentConfig(min_size=50, min_fraction=0.01).min_region_size(10_000)
        100
        """
        return max(self.min_size, math.ceil(self.min_fraction * n_pixels))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict.

        Examples
        --------
        >>> SegmentConfig().to_dict()["n_components"]
        8
        """
        out = dataclasses.asdict(self)
        out["save"] = list(self.save)
        out["auto_range"] = list(self.auto_range)
        for name in ("bands", "display_bands"):
            out[name] = None if out[name] is None else list(out[name])
        return out


def _parse_bands(name: str, text: str) -> tuple[int, ...] | None:
    """Band numbers from "1,2,4" (None for an empty string)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return tuple(int(part) for part in parts) or None
    except ValueError:
        raise ValueError(f"{name} must be comma-separated band numbers such as 1,2,4; got {text!r}") from None


_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str) -> int:
    """Bytes from a size such as "1500000", "512M", "2G" or "1.5GiB" (binary units).

    Raises
    ------
    ValueError
        If ``text`` is not a number with an optional K, M, G or T unit.
    """
    cleaned = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = cleaned[-1:] if cleaned[-1:] in _SIZE_UNITS and cleaned[-1:] else ""
    try:
        value = float(cleaned[: len(cleaned) - len(unit)])
    except ValueError:
        raise ValueError(f"max_memory must be a size such as 2G or 512M; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"max_memory must be a positive size; got {text!r}")
    return int(value * _SIZE_UNITS[unit])


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


def _check_number(name: str, value: Any, minimum: float, *, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"{name} must be a number; got {value!r}")
    if value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum}; got {value}")


def _validate(cfg: SegmentConfig) -> None:
    if cfg.n_components != AUTO:
        _check_int("n_components", cfg.n_components, 1)
    if len(cfg.auto_range) != 2:
        raise ValueError(f"auto_range must be (min, max); got {cfg.auto_range!r}")
    for bound in cfg.auto_range:
        _check_int("auto_range", bound, 1)
    if cfg.auto_range[0] > cfg.auto_range[1]:
        raise ValueError(f"auto_range must be (min, max) with min <= max; got {cfg.auto_range!r}")
    _check_choice("color_space", cfg.color_space, COLOR_SPACES)
    _check_choice("covariance_type", cfg.covariance_type, COVARIANCE_TYPES)
    _check_choice("init_params", cfg.init_params, INIT_METHODS)
    _check_choice("denoise", cfg.denoise, DENOISE_FILTERS)
    _check_choice("confidence_format", cfg.confidence_format, CONFIDENCE_FORMATS)
    _check_number("position_weight", cfg.position_weight, 0.0)
    _check_number("tol", cfg.tol, 0.0)
    _check_number("reg_covar", cfg.reg_covar, 0.0)
    _check_number("smoothing", cfg.smoothing, 0.0)
    _check_int("max_iter", cfg.max_iter, 1)
    _check_int("n_init", cfg.n_init, 1)
    _check_int("seed", cfg.seed, 0)
    _check_int("fit_sample", cfg.fit_sample, 0)
    _check_int("work_pixels", cfg.work_pixels, 0)
    if 0 < cfg.work_pixels < MIN_WORK_PIXELS:
        raise ValueError(f"work_pixels must be 0 (off) or at least {MIN_WORK_PIXELS}; got {cfg.work_pixels}")
    _check_int("denoise_size", cfg.denoise_size, 1)
    if cfg.denoise_size % 2 == 0:
        raise ValueError(f"denoise_size must be odd; got {cfg.denoise_size}")
    _check_int("min_size", cfg.min_size, 0)
    _check_number("min_fraction", cfg.min_fraction, 0.0)
    if cfg.min_fraction > 1:
        raise ValueError(f"min_fraction must be <= 1 (a fraction of the image's pixels); got {cfg.min_fraction}")
    _check_number("merge_cost", cfg.merge_cost, 0.0)
    _check_choice("merge_into", cfg.merge_into, MERGE_TARGETS)
    _check_int("hole_size", cfg.hole_size, 0)
    _check_int("opening_radius", cfg.opening_radius, 0)
    _check_int("closing_radius", cfg.closing_radius, 0)
    _check_int("max_pixels", cfg.max_pixels, 1)
    if cfg.max_side is not None:
        _check_int("max_side", cfg.max_side, 1)
    if cfg.n_jobs is not None:
        _check_int("n_jobs", cfg.n_jobs, 1)
    if cfg.max_memory is not None:
        _check_int("max_memory", cfg.max_memory, 2**24)
    for name in ("relabel", "bias"):
        if not isinstance(getattr(cfg, name), bool):
            raise ValueError(f"{name} must be True or False; got {getattr(cfg, name)!r}")
    if cfg.mode == "classes" and (cfg.merge_cost > 0 or cfg.relabel or cfg.min_fraction > 0):
        raise ValueError(
            "mode 'classes' labels pixels by class: merge_cost and min_fraction must be 0 and relabel off "
            "(use min_size to remove specks)"
        )
    if "bias" in cfg.save and not cfg.bias:
        raise ValueError("save 'bias' needs bias correction on (bias=True, --bias)")
    for kind in cfg.save:
        _check_choice("save", kind, OUTPUT_KINDS)
    _check_choice("label_format", cfg.label_format, LABEL_FORMATS)
    if cfg.bands is not None:
        for band in cfg.bands:
            _check_int("bands", band, 1)
        if len(set(cfg.bands)) != len(cfg.bands):
            raise ValueError(f"bands must not repeat a band; got {cfg.bands!r}")
    if cfg.display_bands is not None:
        for band in cfg.display_bands:
            _check_int("display_bands", band, 1)
        if len(cfg.display_bands) != 3:
            raise ValueError(f"display_bands must name three bands (red, green, blue); got {cfg.display_bands!r}")
    if cfg.nodata is not None:
        _check_number("nodata", cfg.nodata, -math.inf)
    if cfg.level is not None:
        _check_int("level", cfg.level, 0)
    _check_number("dpi", cfg.dpi, 0.0, strict=True)
