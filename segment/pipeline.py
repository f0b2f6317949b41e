"""segment_image(): load → features → fit (EM) → label → post-process, timed."""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segment import features, io, merging, postprocess, preprocess, render, smoothing, upscale
from segment.config import AUTO, SegmentConfig, SettingsError
from segment.gmm import ConvergenceWarning, GaussianMixture

# Sample used to compare numbers of components for n_components="auto".
AUTO_SAMPLE = 50_000
# EM iterations of the refit under the smoothing prior (HMRF-EM).
SMOOTHING_REFIT_ITER = 10
# EM first runs to convergence on a random subset of this many sampled pixels,
# then on the whole sample from there (see _fit_coarse_to_fine).
COARSE_FIT_SAMPLE = 25_000


@dataclass
class Segmentation:
    """The result of :func:`segment_image`.

    Attributes
    ----------
    labels : (H, W) int32 ndarray
        Label of every pixel: mixture components 1..K in a deterministic order
        (by mean feature, luminance first), or connected regions 1..R with
        ``relabel``; 0 marks transparent pixels that took no part. Images
        above ``work_pixels`` are segmented on a downscaled working copy and
        their boundaries placed at full resolution (:mod:`segment.upscale`).
    model : GaussianMixture or None
        The fitted (or given) mixture; None when no pixel was usable.
    config : SegmentConfig
        The settings used.
    confidence : (H, W) float32 ndarray
        Posterior probability of each pixel's component (0 where transparent);
        for an image segmented on a working copy, the copy's map resized
        (bilinear).
    image : ndarray
        The image as segmented (after downscaling and denoising).
    timings : dict
        Seconds per stage.
    log_likelihood_history : list of float
        Mean log-likelihood per EM iteration.
    source : str or None
        Input path, when a path was given.
    components : list of dict
        Per component: label, weight, mean feature vector, pixel count and
        mean colour of its pixels in the final (pre-relabel) map; for an
        image segmented on a working copy, of that copy's map with every
        pixel counted as the original pixels it stands for.
    feature_names : list of str
        Names of the feature columns.
    working_shape : (int, int) or None
        Size of the downscaled working copy the spatial steps ran on
        (``work_pixels``), or None when they ran at full resolution.
    """

    labels: np.ndarray
    model: GaussianMixture | None
    config: SegmentConfig
    confidence: np.ndarray
    image: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    log_likelihood_history: list[float] = field(default_factory=list)
    source: str | None = None
    components: list[dict[str, Any]] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    working_shape: tuple[int, int] | None = None

    @property
    def n_labels(self) -> int:
        """Number of distinct non-background labels."""
        values = np.unique(self.labels)
        return int((values != postprocess.BACKGROUND).sum())

    def to_rgb(self) -> np.ndarray:
        """Colourised label map, (H, W, 3) uint8."""
        return render.colorize(self.labels)

    def overlay(self, color: tuple[int, int, int] = (255, 255, 0)) -> np.ndarray:
        """The image with region boundaries drawn on it, (H, W, 3) uint8."""
        return render.overlay(self.image, self.labels, color)

    def save(self, outdir: str | os.PathLike, stem: str | None = None) -> dict[str, Path]:
        """Write the outputs chosen in ``config.save``; see :func:`segment.save_segmentation`."""
        from segment.outputs import save_segmentation

        return save_segmentation(self, outdir, stem)

    def _auto_components(self) -> dict[str, Any]:
        """How ``n_components="auto"`` chose: BIC of every candidate on the fit sample (empty otherwise)."""
        bic = getattr(self.model, "metadata_", {}).get("auto_bic") if self.model is not None else None
        if not bic or self.config.n_components != AUTO:
            return {}
        return {"auto_components": {"criterion": "BIC on the fit sample", "bic": bic}}

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable description: input, settings, components, fit, timings."""
        from segment import __version__

        model = self.model
        return {
            "segment_version": __version__,
            "input": {"path": self.source, "shape": list(self.image.shape), "dtype": str(self.image.dtype)},
            "settings": self.config.to_dict(),
            "n_components": int(model.n_components) if model is not None else 0,
            "n_labels": self.n_labels,
            "working_shape": list(self.working_shape) if self.working_shape else None,
            **self._auto_components(),
            "features": self.feature_names,
            "components": self.components,
            "log_likelihood": _finite_or_none(getattr(model, "lower_bound_", None)),
            "iterations": int(getattr(model, "n_iter_", 0)),
            "converged": bool(getattr(model, "converged_", False)),
            "log_likelihood_history": [float(v) for v in self.log_likelihood_history],
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }


def segment_image(
    image: np.ndarray | str | os.PathLike,
    config: SegmentConfig | None = None,
    *,
    model: GaussianMixture | None = None,
    **overrides: Any,
) -> Segmentation:
    """Segment an image with a Gaussian mixture over colour and position.

    Parameters
    ----------
    image : (H, W[, C]) ndarray or path-like
        An RGB(A) or greyscale array (any numeric dtype; never modified) or
        the path of an image file.
    config : SegmentConfig, optional
        Settings; defaults to ``SegmentConfig()``.
    model : GaussianMixture, optional
        A fitted model (e.g. from ``segment fit``) to label with instead of
        fitting one, so label ids mean the same class in every image. Its
        stored feature settings (colour space, position weight) are used.
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
    """
    cfg = config if config is not None else SegmentConfig()
    if overrides:
        cfg = cfg.replace(**overrides)
    if model is not None:
        cfg = _with_model_features(cfg, model)
    timings: dict[str, float] = {}
    start = clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    source = None
    if isinstance(image, (str, os.PathLike)):
        source = str(image)
        pixels = io.load_image(image, max_pixels=cfg.max_pixels)
    else:
        pixels = io.as_image(image)
        if pixels.shape[0] * pixels.shape[1] > cfg.max_pixels:
            raise ValueError(f"image has {pixels.shape[0] * pixels.shape[1]} pixels, above max_pixels={cfg.max_pixels}")
    lap("load")
    pixels = preprocess.denoise(preprocess.downscale(pixels, cfg.max_side), cfg.denoise, cfg.denoise_size)
    lap("preprocess")
    height, width = pixels.shape[:2]
    valid = _opaque_pixels(pixels)
    work_shape = _working_shape(pixels.shape[:2], valid, cfg, shared_model=model is not None)
    if work_shape is None:
        part = _label_image(pixels, valid, cfg, model, lap)
        labels, confidence = part.regions, part.confidence
        component_stats = _component_stats(pixels, part.class_labels, part.model)
    else:
        stretch = features.unit_range(pixels)
        work = preprocess.resize_area(features.stretch_to_unit(pixels, stretch), work_shape)
        part = _label_image(work, None, _working_config(cfg, work.shape[:2], pixels.shape[:2]), model, lap)
        with _numba_threads(cfg.n_jobs):
            labels = upscale.refine_labels(part.regions, part.colours, pixels, cfg.color_space, cfg.smoothing, stretch)
        confidence = preprocess.resize_linear(part.confidence, (height, width))
        cells = np.outer(upscale.cell_sizes(height, work_shape[0]), upscale.cell_sizes(width, work_shape[1]))
        component_stats = _component_stats(work, part.class_labels, part.model, cells)
        lap("upscale")
    timings["total"] = time.perf_counter() - start
    model = part.model
    return Segmentation(
        labels=labels,
        model=model,
        config=cfg,
        confidence=confidence,
        image=pixels,
        timings=timings,
        log_likelihood_history=list(getattr(model, "log_likelihood_history_", [])),
        source=source,
        components=component_stats,
        feature_names=part.feature_names,
        working_shape=work_shape,
    )


@dataclass
class _Labelling:
    """What :func:`_label_image` computed for one image."""

    regions: np.ndarray  # final labels (H, W) int32
    class_labels: np.ndarray  # component ids after region merging, before relabelling
    colours: np.ndarray  # (H, W, C) colour features
    confidence: np.ndarray
    model: GaussianMixture | None
    feature_names: list[str]


def _label_image(
    pixels: np.ndarray, valid: np.ndarray | None, cfg: SegmentConfig, model: GaussianMixture | None, lap
) -> _Labelling:
    """Features → fit (unless ``model`` is given) → label → smoothing → post-processing, timing each stage."""
    height, width = pixels.shape[:2]
    feats = features.pixel_features(pixels, cfg.color_space, cfg.position_weight)
    if valid is not None:
        feats = feats[valid]
    n_colour = feats.shape[1] - (2 if cfg.position_weight > 0 else 0)
    names = features.feature_names(n_colour, cfg.color_space, cfg.position_weight)
    lap("features")

    flat_labels = np.zeros(height * width, dtype=np.int32)
    flat_confidence = np.zeros(height * width, dtype=np.float32)
    with _numba_threads(cfg.n_jobs):
        fitted_here = model is None
        if len(feats) and model is None:
            model = _fit_model(feats, n_colour, (height, width), valid, cfg)
        elif model is not None and feats.shape[1] != model.means_.shape[1]:
            raise ValueError(
                f"the model expects {model.means_.shape[1]} features but this image gives {feats.shape[1]} "
                "(a greyscale image with a colour model, or the reverse?)"
            )
        lap("fit")
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
                model = _refit_with_prior(model, feats, grid[0], valid, cfg)
                label_pixels()
                smoothing.smooth_labels(model, feats, *grid, cfg.smoothing, valid=valid)
            lap("smooth")
    labels = postprocess.morphology(flat_labels.reshape(height, width), cfg.opening_radius, cfg.closing_radius)
    as_regions = fitted_here  # a shared model's labels stay class ids
    colours = _colour_map(feats[:, :n_colour], valid, (height, width))
    if as_regions:
        labels = merging.merge_similar_regions(labels, colours, cfg.merge_cost)
    labels = postprocess.merge_small_regions(
        labels, cfg.min_region_size(height * width) if as_regions else cfg.min_size, cfg.hole_size,
        features=colours if cfg.merge_into == "similar" else None,
    )
    regions = postprocess.relabel_regions(labels) if cfg.relabel and as_regions else labels
    lap("postprocess")
    return _Labelling(regions, labels, colours, flat_confidence.reshape(height, width), model, names)


def _working_shape(
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
    pixel_steps = cfg.smoothing > 0 or cfg.min_size or cfg.hole_size or cfg.opening_radius or cfg.closing_radius
    region_steps = not shared_model and (cfg.merge_cost > 0 or cfg.min_fraction > 0 or cfg.relabel)
    if not (pixel_steps or region_steps):
        return None
    return upscale.working_shape(height, width, cfg.work_pixels)


def _working_config(cfg: SegmentConfig, work: tuple[int, int], full: tuple[int, int]) -> SegmentConfig:
    """``cfg`` with its sizes in pixels (areas, radii) scaled to the working copy."""
    area = (work[0] * work[1]) / (full[0] * full[1])
    return cfg.replace(
        min_size=math.ceil(cfg.min_size * area),
        hole_size=math.ceil(cfg.hole_size * area),
        opening_radius=round(cfg.opening_radius * math.sqrt(area)),
        closing_radius=round(cfg.closing_radius * math.sqrt(area)),
    )


def _fit_model(
    feats: np.ndarray, n_colour_features: int, shape: tuple[int, int], valid: np.ndarray | None, cfg: SegmentConfig
) -> GaussianMixture:
    rng = np.random.default_rng(cfg.seed)
    sample = feats[grid_sample(shape, valid, cfg.fit_sample, rng)] if cfg.fit_sample else feats
    if cfg.n_components != AUTO and cfg.n_components > len(feats):
        raise SettingsError(f"n_components={cfg.n_components} is larger than the number of pixels ({len(feats)})")
    needed = cfg.auto_range[1] if cfg.n_components == AUTO else cfg.n_components
    n_colours = _count_distinct(sample[:, :n_colour_features], needed)
    bic = None
    if cfg.n_components == AUTO:
        n_components, bic = _choose_n_components(sample, cfg, n_colours)
    elif cfg.n_components > n_colours:
        warnings.warn(
            f"n_components reduced from {cfg.n_components} to {n_colours}: "
            f"the image has only {n_colours} distinct colour value(s)",
            UserWarning,
            stacklevel=3,
        )
        n_components = n_colours
    else:
        n_components = cfg.n_components
    with warnings.catch_warnings():
        # Not converging within max_iter is reported in the summary instead.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _fit_coarse_to_fine(n_components, sample, cfg, rng)
    order = np.lexsort(model.means_.T[::-1])
    model.permute_components(order)
    model.metadata_ = {"color_space": cfg.color_space, "position_weight": cfg.position_weight}
    if bic is not None:
        model.metadata_["auto_bic"] = {str(k): float(v) for k, v in bic.items()}
    return model


def _fit_coarse_to_fine(n_components: int, sample: np.ndarray, cfg: SegmentConfig, rng: np.random.Generator) -> GaussianMixture:
    """Fit a mixture on ``sample`` by EM started from its fit on a random subset.

    Most EM iterations move the components towards where they settle, which a
    subset of ``COARSE_FIT_SAMPLE`` rows shows as well at a fraction of the
    cost; from there EM on the whole sample converges in a few iterations
    (about 6 instead of 28 on BSDS500 images, same quality).
    """
    if len(sample) <= 2 * COARSE_FIT_SAMPLE:
        return _new_model(n_components, cfg).fit(sample)
    coarse = _new_model(n_components, cfg).fit(sample[np.sort(rng.choice(len(sample), COARSE_FIT_SAMPLE, replace=False))])
    model = _new_model(n_components, cfg.replace(n_init=1))  # restarts were the coarse fit's
    model.weights_init, model.means_init, model.precisions_init = coarse.weights_, coarse.means_, coarse.precisions_
    return model.fit(sample)


def _refit_with_prior(
    model: GaussianMixture, feats: np.ndarray, labels: np.ndarray, valid: np.ndarray | None, cfg: SegmentConfig
) -> GaussianMixture:
    """HMRF-EM: refit ``model`` with every pixel's Potts prior from its neighbours' (smoothed) labels.

    EM restarts from the fitted parameters on the same grid sample, for at
    most ``SMOOTHING_REFIT_ITER`` iterations. Components move towards the
    spatially coherent classes instead of explaining speckle.
    """
    rows = grid_sample(labels.shape, valid, cfg.fit_sample, np.random.default_rng(cfg.seed)) if cfg.fit_sample else None
    rows = np.arange(len(feats)) if rows is None else rows
    pixels = rows if valid is None else np.flatnonzero(valid)[rows]
    prior = smoothing.potts_log_prior(labels, pixels, cfg.smoothing, model.n_components)
    refit = _new_model(model.n_components, cfg.replace(max_iter=min(cfg.max_iter, SMOOTHING_REFIT_ITER)))
    refit.weights_init, refit.means_init, refit.precisions_init = model.weights_, model.means_, model.precisions_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        refit.fit(feats[rows], log_prior=prior)
    refit.permute_components(np.lexsort(refit.means_.T[::-1]))
    refit.metadata_ = model.metadata_
    return refit


def fit_model(sample: np.ndarray, n_colour_features: int, config: SegmentConfig) -> GaussianMixture:
    """Fit the mixture described by ``config`` on already sampled features.

    The model is fitted, ordered and tagged exactly as :func:`segment_image`
    does it, so that it can label other pixels or images (tiled labelling,
    a model shared by a batch).

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
    GaussianMixture
        With ``metadata_`` holding the colour space and position weight.
    """
    return _fit_model(sample, n_colour_features, (1, len(sample)), None, config.replace(fit_sample=0))


def _new_model(n_components: int, cfg: SegmentConfig) -> GaussianMixture:
    return GaussianMixture(
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


def _choose_n_components(sample: np.ndarray, cfg: SegmentConfig, n_colours: int) -> tuple[int, dict[int, float]]:
    """The number of components in ``cfg.auto_range`` (at most ``n_colours``) with the lowest BIC, and every BIC."""
    rng = np.random.default_rng(cfg.seed)
    if len(sample) > AUTO_SAMPLE:
        sample = sample[np.sort(rng.choice(len(sample), AUTO_SAMPLE, replace=False))]
    low, high = cfg.auto_range
    candidates = range(min(low, n_colours), min(high, n_colours) + 1)
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in candidates:
            scores[k] = _new_model(k, cfg).fit(sample).bic(sample)
    return (min(scores, key=scores.get) if scores else 1), scores


def grid_sample(shape: tuple[int, int], valid: np.ndarray | None, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (into the valid pixels) of a jittered-grid sample of about ``size`` pixels.

    One random pixel per cell of a regular grid, so every part of the image is
    represented in proportion to its area, small regions included.
    """
    height, width = shape
    n_valid = height * width if valid is None else int(valid.sum())
    if n_valid <= size:
        return np.arange(n_valid)
    step = max(1.0, np.sqrt(n_valid / size))
    ys = np.arange(0, height, step)
    xs = np.arange(0, width, step)
    rows = np.minimum((ys[:, None] + rng.random((len(ys), len(xs))) * step).astype(np.int64), height - 1)
    cols = np.minimum((xs[None, :] + rng.random((len(ys), len(xs))) * step).astype(np.int64), width - 1)
    flat = rows.ravel() * width + cols.ravel()  # one pixel per cell: all distinct
    if valid is None:
        return flat
    position = np.cumsum(valid) - 1
    return position[flat[valid[flat]]]


def _colour_map(colours: np.ndarray, valid: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, C) colour features of every pixel (0 where transparent), from those of the valid pixels."""
    if valid is None:
        return colours.reshape(*shape, -1)
    out = np.zeros((shape[0] * shape[1], colours.shape[1]), dtype=colours.dtype)
    out[valid] = colours
    return out.reshape(*shape, -1)


def _opaque_pixels(image: np.ndarray) -> np.ndarray | None:
    """Flat mask of pixels with non-zero alpha, or None when every pixel counts."""
    if image.ndim != 3 or image.shape[2] != 4:
        return None
    mask = image[:, :, 3].ravel() > 0
    return None if mask.all() else mask


def _component_stats(
    image: np.ndarray, labels: np.ndarray, model: GaussianMixture | None, pixel_weights: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Per component: weight, mean features, pixel count and mean display colour of its pixels in ``labels``.

    ``pixel_weights`` gives how many original pixels each pixel of a working
    copy stands for (None: one each).
    """
    if model is None:
        return []
    K = model.n_components
    flat = labels.ravel()
    weights = None if pixel_weights is None else pixel_weights.ravel().astype(np.float64)
    counts = np.bincount(flat, weights=weights, minlength=K + 1)
    picture = render.display_rgb(image).reshape(-1, 3).astype(np.float64)
    if weights is not None:
        picture *= weights[:, None]
    sums = np.stack([np.bincount(flat, weights=picture[:, c], minlength=K + 1) for c in range(3)], axis=1)
    stats = []
    for k in range(K):
        n = int(round(counts[k + 1]))
        stats.append(
            {
                "label": k + 1,
                "weight": float(model.weights_[k]),
                "mean_features": [float(v) for v in model.means_[k]],
                "pixel_count": n,
                "mean_rgb": [round(float(v), 2) for v in sums[k + 1] / n] if n else None,
            }
        )
    return stats


def _with_model_features(cfg: SegmentConfig, model: GaussianMixture) -> SegmentConfig:
    meta = getattr(model, "metadata_", {}) or {}
    changes = {key: meta[key] for key in ("color_space", "position_weight") if key in meta}
    return cfg.replace(n_components=int(model.n_components), **changes)


@contextlib.contextmanager
def _numba_threads(n_jobs: int | None):
    if n_jobs is None:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_jobs, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
