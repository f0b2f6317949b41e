"""The stages of a segmentation and segment_image(): load → features → fit (EM) → label → smooth → regions.

Images above ``work_pixels`` run the spatial stages on a downscaled working
copy (:func:`segment_working_copy`) and get their boundaries back at full
resolution (:mod:`segment.upscale`); the tiled path for huge scans
(:mod:`segment.tiles`) calls the same stages band by band.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segment import (
    bias, hierarchy, io, merging, model_selection, postprocess, precompile, preprocess, sampling, smoothing, threads, upscale,
)
from segment.config import AUTO, SegmentConfig
from segment.features import FeatureSpec
from segment.gmm import ConvergenceWarning, Mixture
from segment.histogram import Histogram, feature_histogram
from segment.hierarchy import Hierarchy
from segment.result import Segmentation, component_statistics

__all__ = ["Segmentation", "segment_image", "fit_model", "label_image", "segment_working_copy"]

# EM iterations of the refit under the smoothing prior (HMRF-EM).
SMOOTHING_REFIT_ITER = 10
# EM first runs to convergence on a random subset of this many sampled pixels,
# then on the whole sample from there (see _fit_coarse_to_fine).
COARSE_FIT_SAMPLE = 25_000
# -k auto counts the classes of a colour image again under even light when the light field
# fitted with its first count varies more than this (brightest over darkest) in every band:
# light from a lamp or a lens dims all bands alike, whereas a field in one band alone is a
# class's colour taken for light.
UNEVEN_LIGHT = 1.15


class StageTimer:
    """Seconds per stage: ``lap(name)`` records the time since the previous lap."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.start = self.clock = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = now - self.clock
        self.clock = now

    def total(self) -> dict[str, float]:
        """The laps and their ``"total"``."""
        self.timings["total"] = time.perf_counter() - self.start
        return self.timings


def segment_image(
    image: np.ndarray | str | os.PathLike,
    config: SegmentConfig | None = None,
    *,
    model: Mixture | None = None,
    mask: np.ndarray | None = None,
    info: io.ImageInfo | None = None,
    channel_axis: int | None = -1,
    random_state: int | np.random.Generator | None = None,
    **overrides: Any,
) -> Segmentation:
    """Segment an image with a Gaussian mixture over colour and position.

    Parameters
    ----------
    image : (H, W[, C]) ndarray or path-like
        An RGB(A), greyscale or multiband array (any numeric dtype; never
        modified) or the path of an image file (read with its metadata by
        :func:`segment.io.read_image`, at ``config.level`` and ``config.dpi``).
        A 2-D array is greyscale whatever ``channel_axis``.
    config : SegmentConfig, optional
        Settings; defaults to ``SegmentConfig()``.
    model : Mixture, optional
        A fitted model (e.g. from ``segment fit``) to label with instead of
        fitting one, so label ids mean the same class in every image. Its
        stored feature settings (colour space, position weight) are used.
    mask : (H, W) array, optional
        Pixels to segment (non-zero); the others take no part in the fit
        and get label 0, like transparent pixels and nodata.
    info : ImageInfo, optional
        Metadata of an array read elsewhere (resolution, georeferencing,
        nodata, band names), carried into the outputs.
    channel_axis : int or None, default -1
        Axis of a 3-D array's channels, e.g. 0 for (C, H, W); None says the
        array has no channel axis (2-D greyscale), as in scikit-image.
    random_state : int, numpy.random.Generator or None
        Seed of the sampling and of EM's initialisation: the same int (or a
        Generator in the same state) gives the same labels. None uses
        ``config.seed``; a Generator is drawn from once, and the seed drawn
        is kept in ``result.config.seed``.
    **overrides
        SegmentConfig fields to change, e.g. ``n_components=4``.

    Returns
    -------
    Segmentation

    Raises
    ------
    ValueError
        Invalid settings (naming the field) or image array.
    ImageReadError
        An image path that cannot be read.

    Examples
    --------
    >>> import numpy as np, segment
    >>> image = np.zeros((20, 21, 3), np.uint8); image[:, 10:] = 200
    >>> result = segment.segment_image(image, n_components=2, position_weight=0)
    >>> sorted(np.unique(result.labels).tolist())
    [1, 2]
    >>> planar = np.moveaxis(image, -1, 0)  # (3, 20, 21)
    >>> again = segment.segment_image(planar, channel_axis=0, random_state=0, n_components=2, position_weight=0)
    >>> bool((again.labels == result.labels).all())
    True
    """
    cfg = config if config is not None else SegmentConfig()
    if random_state is not None:
        if "seed" in overrides:
            raise ValueError("give random_state or seed, not both")
        overrides["seed"] = seed_of(random_state)
    if overrides:
        cfg = cfg.replace(**overrides)
    if model is not None:
        cfg = config_for_model(cfg, model)
    timer = StageTimer()
    source = None
    if isinstance(image, (str, os.PathLike)):
        source = str(image)
        pixels, info = io.read_image(image, level=cfg.level, dpi=cfg.dpi, max_pixels=cfg.max_pixels)
    else:
        pixels = io.as_image(channels_last(image, channel_axis))
        if pixels.shape[0] * pixels.shape[1] > cfg.max_pixels:
            raise ValueError(f"image has {pixels.shape[0] * pixels.shape[1]} pixels, above max_pixels={cfg.max_pixels}")
        info = info if info is not None else io.ImageInfo(pixels.shape)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != pixels.shape[:2]:
            raise ValueError(f"mask has shape {mask.shape}, the image {pixels.shape[:2]}")
    timer.lap("load")
    read_shape = pixels.shape
    pixels = preprocess_image(pixels, cfg)
    if mask is not None and pixels.shape[:2] != read_shape[:2]:
        mask = preprocess.resize_nearest(mask != 0, pixels.shape[:2])
    info = info.resized(pixels.shape)
    timer.lap("preprocess")
    height, width = pixels.shape[:2]
    valid = usable_pixels(pixels, info, cfg.nodata, mask)
    bands = feature_image(pixels, info, cfg.bands)
    spec = FeatureSpec.for_image(bands, cfg.color_space, cfg.position_weight, alpha=False)
    work_shape = working_shape(pixels.shape[:2], valid, cfg, shared_model=model is not None)
    if work_shape is None:
        part = label_image(bands, spec, valid, cfg, model, timer.lap)
        labels, confidence = part.regions, part.confidence
        if part.corrected is not None:
            bands, spec = part.corrected, spec.for_working_copy(spec.shape)
    else:
        part = segment_working_copy(bands, spec, work_shape, cfg, model, timer.lap)
        if part.bias is not None:
            part.bias = part.bias.resized((height, width))
            bands, spec = part.bias.correct(spec.unit(bands)), spec.for_working_copy((height, width))
        with threads.limited(cfg.n_jobs):
            labels = upscale.refine_labels(part.regions, part.colours, bands, spec, cfg.smoothing)
        confidence = upscale.enlarge_rows(part.confidence, (height, width), 0, height)
        if part.hierarchy is not None:  # the leaves' boundaries placed at full resolution too
            leaves = upscale.refine_labels(part.hierarchy.regions + 1, part.colours, bands, spec, cfg.smoothing) - 1
            part.hierarchy = dataclasses.replace(part.hierarchy, regions=leaves)
        timer.lap("upscale")
    model = part.model
    return Segmentation(
        labels=labels,
        model=model,
        config=cfg,
        confidence=confidence,
        image=pixels,
        timings=timer.total(),
        log_likelihood_history=list(getattr(model, "log_likelihood_history_", [])),
        source=source,
        components=part.components,
        feature_names=part.feature_names,
        working_shape=work_shape,
        info=info,
        region_classes=part.region_classes,
        probabilities=posterior_maps(model, bands, spec, valid) if "probabilities" in cfg.save else None,
        bias_field=part.bias,
        hierarchy=part.hierarchy,
    )


def channels_last(image: np.ndarray, channel_axis: int | None) -> np.ndarray:
    """``image`` with its channel axis moved last (a view); a 2-D image as it is.

    Raises
    ------
    ValueError
        A 3-D image with ``channel_axis=None``, an axis out of range, or an
        array that is neither 2-D nor 3-D.

    Examples
    --------
    >>> channels_last(np.zeros((3, 4, 5)), 0).shape
    (4, 5, 3)
    >>> channels_last(np.zeros((4, 5)), None).shape
    (4, 5)
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.ndim != 3:
        raise ValueError(f"image must be 2-D (H, W) or 3-D with a channel axis; got shape {image.shape}")
    if channel_axis is None:
        raise ValueError(
            f"image of shape {image.shape} is 3-D but channel_axis=None; give the axis of its channels "
            "(e.g. channel_axis=-1 for (H, W, C), 0 for (C, H, W))"
        )
    if not -3 <= channel_axis <= 2:
        raise ValueError(f"channel_axis={channel_axis} is out of range for an image of shape {image.shape}")
    return np.moveaxis(image, channel_axis, -1)


def seed_of(random_state: int | np.random.Generator | np.random.RandomState) -> int:
    """The integer seed (``SegmentConfig.seed``) that ``random_state`` stands for.

    An int is itself; a Generator or RandomState is drawn from once.

    Examples
    --------
    >>> seed_of(7)
    7
    >>> seed_of(np.random.default_rng(1)) == seed_of(np.random.default_rng(1))
    True
    """
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    raise TypeError(f"random_state must be an int, a numpy Generator or None; got {type(random_state).__name__}")


def preprocess_image(pixels: np.ndarray, cfg: SegmentConfig) -> np.ndarray:
    """Downscale to ``max_side`` and denoise, as configured."""
    return preprocess.denoise(preprocess.downscale(pixels, cfg.max_side), cfg.denoise, cfg.denoise_size)


@dataclass
class Labelling:
    """What :func:`label_image` computed for one image (or working copy)."""

    regions: np.ndarray  # final labels (H, W) int32
    class_labels: np.ndarray  # component ids after region merging, before relabelling
    colours: np.ndarray  # (H, W, C) colour features
    confidence: np.ndarray
    model: Mixture | None
    feature_names: list[str]
    components: list[dict[str, Any]] = field(default_factory=list)
    region_classes: np.ndarray | None = None  # mixture component of each label id
    bias: bias.BiasField | None = None  # the bias field, when estimated
    corrected: np.ndarray | None = None  # the bias-corrected image (unit values) that was labelled
    hierarchy: Hierarchy | None = None  # merge hierarchy of the regions (with --save hierarchy)


def label_image(
    pixels: np.ndarray,
    spec: FeatureSpec,
    valid: np.ndarray | None,
    cfg: SegmentConfig,
    model: Mixture | None,
    lap: Callable[[str], None],
    pixel_weights: np.ndarray | None = None,
    histogram: Histogram | None = None,
) -> Labelling:
    """Features → fit (unless ``model`` is given) → bias field → label → smoothing → regions, timing each stage.

    The bias field is fitted with ``cfg.bias``; region merging and
    relabelling run in regions mode only (``cfg.mode``).

    Parameters
    ----------
    pixels : (H, W[, C]) ndarray
        The (preprocessed) image.
    spec : FeatureSpec
        Its feature spec.
    valid : (H * W,) bool ndarray or None
        Pixels that take part (:func:`usable_pixels`); None for all.
    cfg : SegmentConfig
    model : Mixture or None
        A shared model to label with (its labels stay class ids).
    lap : callable
        Called with each stage's name when it ends.
    pixel_weights : (H, W) ndarray, optional
        Original pixels each pixel stands for, for the component statistics.
    histogram : Histogram, optional
        To fit on instead of this image's own (:func:`fit_image_model`).
    """
    height, width = pixels.shape[:2]
    feats = spec.image_features(pixels)
    if valid is not None:
        feats = feats[valid]
    lap("features")
    field = corrected = None
    flat_labels = np.zeros(height * width, dtype=np.int32)
    flat_confidence = np.zeros(height * width, dtype=np.float32)
    with threads.limited(cfg.n_jobs):
        fitted_here = model is None
        if len(feats) and model is None:
            model = fit_image_model(pixels, spec, valid, cfg, feats=feats, histogram=histogram)
        elif model is not None:
            check_model_features(model, spec)
        lap("fit")
        if cfg.bias and len(feats):
            field, model, corrected, feats = correct_bias(model, pixels, spec, valid, cfg.seed, refit=fitted_here)
            lap("bias")
        target = slice(None) if valid is None else valid

        def label_pixels() -> None:
            components, confidence = model.label(feats)
            flat_labels[target] = components + 1
            flat_confidence[target] = confidence

        if len(feats):
            label_pixels()
        lap("label")
        if len(feats) and cfg.smoothing > 0:
            grid = flat_labels.reshape(height, width), flat_confidence.reshape(height, width)
            smoothing.smooth_labels(model, feats, *grid, cfg.smoothing, valid=valid, update_confidence=not fitted_here)
            if fitted_here:  # HMRF-EM: refit under the prior of these labels, then label and smooth again
                model = refit_with_prior(model, feats, grid[0], valid, cfg)
                label_pixels()
                smoothing.smooth_labels(model, feats, *grid, cfg.smoothing, valid=valid)
            lap("smooth")
    colours = _colour_map(feats[:, : spec.n_colour], valid, (height, width))
    as_regions = fitted_here and cfg.mode == "regions"
    labels, hierarchy = label_regions(flat_labels.reshape(height, width), colours, cfg, as_regions=as_regions)
    regions = postprocess.relabel_regions(labels) if cfg.relabel and fitted_here else labels
    region_classes = np.zeros(int(regions.max()) + 1, dtype=np.int32)
    region_classes[regions.ravel()] = labels.ravel()
    lap("postprocess")
    components = component_statistics(pixels, labels, model, pixel_weights)
    return Labelling(
        regions, labels, colours, flat_confidence.reshape(height, width), model, spec.names, components, region_classes,
        field, corrected, hierarchy,
    )



def correct_bias(
    model: Mixture,
    pixels: np.ndarray,
    spec: FeatureSpec,
    valid: np.ndarray | None,
    seed: int,
    *,
    refit: bool,
    grid: tuple[int, int, int] | None = None,
) -> tuple[bias.BiasField, Mixture, np.ndarray, np.ndarray]:
    """Fit the bias field of ``pixels`` inside EM (:func:`segment.bias.fit_bias_field`) and correct them.

    ``grid`` (Z, H, W) says that ``pixels`` are a volume's planes stacked,
    (Z * H, W[, C]): the field is then 3D. Returns the field, the mixture
    (refitted and ordered with ``refit``), the corrected image in unit values
    and the features of its valid pixels.
    """
    unit, unit_spec = spec.unit(pixels), spec.for_working_copy(spec.shape)
    field, model = bias.fit_bias_field(model, unit, unit_spec, valid, refit=refit, seed=seed, shape=grid)
    if refit:
        order_components(model)
    corrected = field.correct(unit)
    feats = unit_spec.image_features(corrected)
    return field, model, corrected, feats if valid is None else feats[valid]


def label_regions(
    labels: np.ndarray, colours: np.ndarray, cfg: SegmentConfig, *, as_regions: bool
) -> tuple[np.ndarray, Hierarchy | None]:
    """Morphology, merging of similar regions (``as_regions``) and of small ones; component ids kept.

    Also the merge hierarchy of the regions after morphology, when ``cfg.save``
    asks for it and regions are merged (None otherwise).
    """
    precompile.wait()  # a first use may be compiling this stage's kernels in a second process
    height, width = labels.shape
    labels = postprocess.morphology(labels, cfg.opening_radius, cfg.closing_radius)
    tree = None
    if as_regions:
        tree = hierarchy.merge_hierarchy(labels, colours) if "hierarchy" in cfg.save else None
        labels = merging.merge_similar_regions(labels, colours, cfg.merge_cost)
    labels = postprocess.merge_small_regions(
        labels, cfg.min_region_size(height * width) if as_regions else cfg.min_size, cfg.hole_size,
        features=colours if cfg.merge_into == "similar" else None,
    )
    return labels, tree


def segment_working_copy(
    pixels: np.ndarray,
    spec: FeatureSpec,
    work_shape: tuple[int, int],
    cfg: SegmentConfig,
    model: Mixture | None,
    lap: Callable[[str], None],
    rows_per_band: int | None = None,
) -> Labelling:
    """The stages of :func:`label_image` on a copy of ``pixels`` area-downscaled to ``work_shape``.

    Sizes in pixels are scaled to the copy (:func:`working_config`), and the
    component statistics count every copy pixel as the original pixels it
    stands for. ``rows_per_band`` full rows are read at a time to make the
    copy (the result does not depend on it).
    """
    height, width = spec.shape
    work = upscale.working_copy(pixels, spec, work_shape, rows_per_band)
    lap("working_copy")
    cells = np.outer(upscale.cell_sizes(height, work_shape[0]), upscale.cell_sizes(width, work_shape[1]))
    work_cfg = working_config(cfg, work_shape, (height, width))
    # The full-resolution histogram, when there is one, is exact EM over every pixel; the copy's is not.
    histogram = feature_histogram(pixels, spec) if model is None else None
    return label_image(work, spec.for_working_copy(work_shape), None, work_cfg, model, lap, cells, histogram)


def working_shape(
    shape: tuple[int, int], valid: np.ndarray | None, cfg: SegmentConfig, *, shared_model: bool
) -> tuple[int, int] | None:
    """Size of the working copy for the spatial steps, or None to work at full resolution.

    Full resolution is kept for images within ``work_pixels``, images with
    transparent pixels, and settings without spatial steps (a plain
    per-pixel mixture gains nothing from a working copy).
    """
    height, width = shape
    if not cfg.work_pixels or height * width <= cfg.work_pixels or valid is not None:
        return None
    if not has_spatial_steps(cfg, shared_model=shared_model):
        return None
    return upscale.working_shape(height, width, cfg.work_pixels)


def has_spatial_steps(cfg: SegmentConfig, *, shared_model: bool) -> bool:
    """Whether ``cfg`` asks for a stage that looks at neighbours (smoothing, morphology, regions)."""
    pixel_steps = cfg.smoothing > 0 or cfg.min_size or cfg.hole_size or cfg.opening_radius or cfg.closing_radius
    region_steps = not shared_model and (cfg.merge_cost > 0 or cfg.min_fraction > 0 or cfg.relabel)
    return bool(pixel_steps or region_steps)


def working_config(cfg: SegmentConfig, work: tuple[int, int], full: tuple[int, int]) -> SegmentConfig:
    """``cfg`` with its sizes in pixels (areas, radii) scaled to the working copy."""
    area = (work[0] * work[1]) / (full[0] * full[1])
    return cfg.replace(
        min_size=math.ceil(cfg.min_size * area),
        hole_size=math.ceil(cfg.hole_size * area),
        opening_radius=round(cfg.opening_radius * math.sqrt(area)),
        closing_radius=round(cfg.closing_radius * math.sqrt(area)),
    )


def check_model_features(model: Mixture, spec: FeatureSpec) -> None:
    """Raise ValueError when ``model`` was fitted on other features than ``spec`` gives."""
    if spec.n_features != model.means_.shape[1]:
        raise ValueError(
            f"the model expects {model.means_.shape[1]} features but this image gives {spec.n_features} "
            "(a greyscale image with a colour model, or the reverse?)"
        )


def fit_image_model(
    pixels: np.ndarray,
    spec: FeatureSpec,
    valid: np.ndarray | None,
    cfg: SegmentConfig,
    *,
    feats: np.ndarray | None = None,
    sample_size: int | None = None,
    histogram: Histogram | None = None,
) -> Mixture:
    """Fit the mixture of ``cfg`` on the image's histogram, or else on its fit sample.

    Without position features, an image with few distinct values (greyscale,
    16-bit, few colours: :func:`segment.histogram.feature_histogram`) is
    fitted on the histogram of its pixels, weighted by their counts: exact EM
    over every pixel. Otherwise the fit sample is used
    (:func:`segment.sampling.fit_sample`). ``feats`` are the features of the
    valid pixels when already computed (else only the sample's are);
    ``sample_size`` overrides ``cfg.fit_sample``; ``histogram`` is used
    instead of this image's own (e.g. a full-resolution one for a working
    copy). The same image and settings give the same model either way.
    ``metadata_["histogram_bins"]`` says when a histogram was fitted.
    """
    rng = np.random.default_rng(cfg.seed)
    size = cfg.fit_sample if sample_size is None else sample_size
    flat = sampling.fit_sample(spec.shape, valid, size, rng)
    n_pixels = spec.shape[0] * spec.shape[1] if valid is None else int(np.count_nonzero(valid))
    if feats is None:
        sample = spec.pixel_features(pixels, flat)
    else:
        sample = feats if len(flat) == len(feats) else feats[sampling.within_mask(flat, valid)]
    if histogram is None:
        histogram = feature_histogram(pixels, spec, valid)
    selection_colours = None
    if cfg.n_components == AUTO:
        colour_image = spec.colours(pixels) if feats is None else _colour_map(feats[:, : spec.n_colour], valid, spec.shape)
        selection_colours = model_selection.local_colours(colour_image, valid, flat)
    model = _fit_sample(sample, spec.n_colour, n_pixels, cfg, rng, histogram, selection_colours)
    if cfg.n_components == AUTO and spec.n_colour >= 3:
        even_colours = _colours_under_even_light(model, pixels, spec, valid, flat, cfg.seed)
        if even_colours is not None:
            model = _fit_sample(sample, spec.n_colour, n_pixels, cfg, np.random.default_rng(cfg.seed), histogram, even_colours)
    return model


def _colours_under_even_light(
    model: Mixture, pixels: np.ndarray, spec: FeatureSpec, valid: np.ndarray | None, flat: np.ndarray, seed: int
) -> np.ndarray | None:
    """The local colours of the pixels ``flat`` with the light field that ``model``'s classes explain best divided out.

    None when that field is nearly even (:data:`UNEVEN_LIGHT`). Uneven light spreads a class
    over a range of colours that can look like several classes, so ``-k auto`` counts a
    colour image's classes again on these colours.
    """
    unit, unit_spec = spec.unit(pixels), spec.for_working_copy(spec.shape)
    field, _ = bias.fit_bias_field(model, unit, unit_spec, valid, refit=True, seed=seed)
    light = field.image()
    if float((light.max(axis=(0, 1)) / light.min(axis=(0, 1))).min()) <= UNEVEN_LIGHT:
        return None
    return model_selection.local_colours(unit_spec.colours(field.correct(unit)), valid, flat)


def _fit_sample(
    sample: np.ndarray,
    n_colour_features: int,
    n_pixels: int,
    cfg: SegmentConfig,
    rng: np.random.Generator,
    histogram: Histogram | None = None,
    selection_colours: np.ndarray | None = None,
) -> Mixture:
    needed = cfg.auto_range[1] if cfg.n_components == AUTO else cfg.n_components
    n_colours = len(histogram) if histogram is not None else _count_distinct(sample[:, :n_colour_features], needed)
    selection = None
    if cfg.n_components == AUTO:
        colours = sample[:, :n_colour_features] if selection_colours is None else selection_colours
        selection = model_selection.choose_n_components(
            colours, cfg.auto_range, n_distinct=n_colours, reg_covar=cfg.reg_covar, seed=cfg.seed
        )
        n_components = selection.n_components
    elif cfg.n_components > n_colours:
        warnings.warn(
            f"n_components reduced from {cfg.n_components} to {n_colours}: "
            f"the image has only {n_colours} distinct colour value(s)",
            UserWarning,
            stacklevel=4,
        )
        n_components = n_colours
    else:
        n_components = cfg.n_components
    with warnings.catch_warnings():
        # Not converging within max_iter is reported in the summary instead.
        warnings.simplefilter("ignore", ConvergenceWarning)
        if histogram is not None:
            model = _new_model(n_components, cfg).fit(histogram.features, sample_weight=histogram.counts)
        else:
            model = _fit_coarse_to_fine(n_components, sample, cfg, rng)
    order_components(model)
    model.metadata_ = {"color_space": cfg.color_space, "position_weight": cfg.position_weight}
    if histogram is not None:
        model.metadata_["histogram_bins"] = len(histogram)
    if selection is not None:
        model.metadata_["auto_scores"] = {str(k): float(v) for k, v in selection.scores.items()}
        model.metadata_["auto_criterion"] = selection.criterion
    return model


def _fit_coarse_to_fine(n_components: int, sample: np.ndarray, cfg: SegmentConfig, rng: np.random.Generator) -> Mixture:
    """Fit a mixture on ``sample`` by EM started from its fit on a random subset.

    Most EM iterations move the components towards where they settle, which a
    subset of ``COARSE_FIT_SAMPLE`` rows shows as well at a fraction of the
    cost; from there EM on the whole sample converges in a few iterations
    (about 6 instead of 28 on BSDS500 images, same quality).
    """
    if len(sample) <= 2 * COARSE_FIT_SAMPLE:
        return _new_model(n_components, cfg).fit(sample)
    coarse = _new_model(n_components, cfg).fit(sample[sampling.random_rows(len(sample), COARSE_FIT_SAMPLE, rng)])
    model = _new_model(n_components, cfg.replace(n_init=1))  # restarts were the coarse fit's
    model.weights_init, model.means_init, model.precisions_init = coarse.weights_, coarse.means_, coarse.precisions_
    return model.fit(sample)


def refit_with_prior(
    model: Mixture,
    feats: np.ndarray,
    labels: np.ndarray,
    valid: np.ndarray | None,
    cfg: SegmentConfig,
    neighbourhood: smoothing.Neighbourhood = smoothing.PLANE,
) -> Mixture:
    """HMRF-EM: refit ``model`` with every pixel's Potts prior from its neighbours' (smoothed) labels.

    EM restarts from the fitted parameters on the same fit sample, for at
    most ``SMOOTHING_REFIT_ITER`` iterations. Components move towards the
    spatially coherent classes instead of explaining speckle. ``labels``
    is (H, W), or (Z, H, W) for a volume with its ``neighbourhood``.
    """
    plane_rows = labels.reshape(-1, labels.shape[-1]).shape  # a volume's planes stacked, as its features are
    pixels = sampling.fit_sample(plane_rows, valid, cfg.fit_sample, np.random.default_rng(cfg.seed))
    rows = sampling.within_mask(pixels, valid)
    prior = smoothing.potts_log_prior(labels, pixels, cfg.smoothing, model.n_components, neighbourhood)
    refit = _new_model(model.n_components, cfg.replace(max_iter=min(cfg.max_iter, SMOOTHING_REFIT_ITER)))
    refit.weights_init, refit.means_init, refit.precisions_init = model.weights_, model.means_, model.precisions_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        refit.fit(feats if len(rows) == len(feats) else feats[rows], log_prior=prior)
    order_components(refit)
    refit.metadata_ = model.metadata_
    return refit


def fit_model(sample: np.ndarray, n_colour_features: int, config: SegmentConfig) -> Mixture:
    """Fit the mixture described by ``config`` on already sampled features.

    The model is fitted, ordered and tagged exactly as :func:`segment_image`
    does it, so that it can label other pixels or images (a model shared by
    a batch).

    Parameters
    ----------
    sample : (N, D) float32 ndarray
        Features of the sampled pixels (colour columns first, then x, y).
    n_colour_features : int
        Number of colour columns in ``sample``.
    config : SegmentConfig
        Settings; ``fit_sample`` is ignored (the sample is used whole).

    Returns
    -------
    Mixture
        With ``metadata_`` holding the colour space and position weight.
    """
    return _fit_sample(sample, n_colour_features, len(sample), config, np.random.default_rng(config.seed))


def order_components(model: Mixture) -> Mixture:
    """Put the components in ascending order of their mean features, the first (luminance in Lab, grey) first."""
    return model.permute_components(np.lexsort(model.means_.T[::-1]))


def _new_model(n_components: int, cfg: SegmentConfig) -> Mixture:
    return Mixture(
        n_components,
        covariance_type=cfg.covariance_type,
        tol=cfg.tol,
        reg_covar=cfg.reg_covar,
        max_iter=cfg.max_iter,
        n_init=cfg.n_init,
        init_params=cfg.init_params,
        random_state=cfg.seed,
    )


def _count_distinct(colours: np.ndarray, enough: int) -> int:
    """Number of distinct rows of a (N, C) array, exact below ``enough`` (at least ``enough`` otherwise)."""

    def count(rows: np.ndarray) -> int:
        rows = np.ascontiguousarray(rows)
        return len(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))))

    # A spread-out subset usually proves there are enough, without sorting every row.
    subset = count(colours[:: max(1, len(colours) // 4096)])
    return subset if subset >= enough else count(colours)


def _colour_map(colours: np.ndarray, valid: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, C) colour features of every pixel (0 where transparent), from those of the valid pixels."""
    if valid is None:
        return colours.reshape(*shape, -1)
    out = np.zeros((shape[0] * shape[1], colours.shape[1]), dtype=colours.dtype)
    out[valid] = colours
    return out.reshape(*shape, -1)


def posterior_maps(
    model: Mixture | None, image: np.ndarray, spec: FeatureSpec, valid: np.ndarray | None
) -> np.ndarray | None:
    """Per-component posterior probability of every pixel under the mixture alone, (K, H, W) float32.

    Computed band by band of rows, so memory beyond the output stays small; 0
    where pixels take no part.
    """
    if model is None:
        return None
    height, width = spec.shape
    out = np.zeros((model.n_components, height, width), dtype=np.float32)
    rows = max(1, 1_000_000 // width)
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        proba = model.predict_proba(spec.band_features(image, start, stop)).astype(np.float32)
        if valid is not None:
            proba[~valid[start * width : stop * width]] = 0
        out[:, start:stop] = proba.T.reshape(model.n_components, stop - start, width)
    return out


def has_alpha(image: np.ndarray, info: io.ImageInfo) -> bool:
    """Whether the last band of ``image`` is alpha: RGBA (or grey + alpha), unless the file names it otherwise."""
    channels = image.shape[2] if image.ndim == 3 else 1
    if channels not in (2, 4):
        return False
    return info.band_names is None or len(info.band_names) != channels or info.band_names[-1] == "alpha"


def usable_pixels(
    image: np.ndarray, info: io.ImageInfo, nodata: float | None, mask: np.ndarray | None
) -> np.ndarray | None:
    """Flat mask of the pixels that take part: opaque, not nodata, inside ``mask``; None when all do.

    ``nodata`` overrides the value the file declares (``info.nodata``).
    """
    usable = np.ones(image.shape[:2], dtype=bool)
    alpha = has_alpha(image, info)
    if alpha:
        usable &= image[:, :, -1] > 0
    value = nodata if nodata is not None else info.nodata
    if value is not None:
        usable &= io.valid_pixels(image[:, :, :-1] if alpha else image, value)
    if mask is not None:
        usable &= mask != 0
    return None if usable.all() else usable.ravel()


def feature_image(image: np.ndarray, info: io.ImageInfo, bands: tuple[int, ...] | None) -> np.ndarray:
    """The bands of ``image`` that become features: ``bands`` (1-based), else all but alpha.

    Raises
    ------
    ValueError
        A band number beyond the image's bands.
    """
    channels = image.shape[2] if image.ndim == 3 else 1
    if bands is None:
        return image[:, :, :-1] if has_alpha(image, info) else image
    if max(bands) > channels:
        raise ValueError(f"bands asks for band {max(bands)} but the image has {channels} band(s)")
    picked = [band - 1 for band in bands]
    if image.ndim == 2:
        return image
    return image[:, :, picked[0]] if len(picked) == 1 else np.ascontiguousarray(image[:, :, picked])


def config_for_model(cfg: SegmentConfig, model: Mixture) -> SegmentConfig:
    """``cfg`` with the feature settings (colour space, position weight) and size a shared model was fitted with."""
    meta = getattr(model, "metadata_", {}) or {}
    changes = {key: meta[key] for key in ("color_space", "position_weight") if key in meta}
    return cfg.replace(n_components=int(model.n_components), **changes)
