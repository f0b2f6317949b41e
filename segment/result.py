"""A segmentation's result: the labels and what describes them (summary, component statistics).

One builder of the JSON summary and one tally of component statistics serve
every path, in memory (:class:`Segmentation`) or band by band
(:func:`segment.tiles.segment_tiled`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segment import outputs, render
from segment.config import AUTO, SegmentConfig
from segment.gmm import Mixture
from segment.hierarchy import Hierarchy
from segment.io import ImageInfo
from segment.postprocess import BACKGROUND

if TYPE_CHECKING:
    from segment.bias import BiasField


class ComponentTally:
    """Pixel counts and display-colour sums per component label, accumulated block by block.

    Parameters
    ----------
    n_components : int
        Labels are 0 (background) .. K.
    """

    def __init__(self, n_components: int) -> None:
        self.n_components = n_components
        self.counts = np.zeros(n_components + 1, dtype=np.float64)
        self.sums = np.zeros((n_components + 1, 3), dtype=np.float64)

    def add(self, labels: np.ndarray, picture: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Count the pixels of ``labels`` (h, w) with their ``picture`` (h, w, 3) colours.

        ``weights`` (h, w) says how many original pixels each stands for
        (pixels of a working copy); None counts one each.
        """
        flat = labels.ravel()
        size = self.n_components + 1
        colours = picture.reshape(-1, 3).astype(np.float64)
        if weights is not None:
            weights = weights.ravel().astype(np.float64)
            colours *= weights[:, None]
        self.counts += np.bincount(flat, weights=weights, minlength=size)
        for c in range(3):
            self.sums[:, c] += np.bincount(flat, weights=colours[:, c], minlength=size)

    @property
    def n_present(self) -> int:
        """Number of component labels with at least one pixel."""
        return int(np.count_nonzero(self.counts[1:]))

    def components(self, model: Mixture | None) -> list[dict[str, Any]]:
        """Per component: label, weight, mean feature vector, pixel count and mean display colour."""
        if model is None:
            return []
        stats = []
        for k in range(model.n_components):
            n = int(round(self.counts[k + 1]))
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


def component_statistics(
    image: np.ndarray, labels: np.ndarray, model: Mixture | None, pixel_weights: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Per component statistics of ``labels`` over ``image`` (see :class:`ComponentTally`)."""
    if model is None:
        return []
    tally = ComponentTally(model.n_components)
    tally.add(labels, render.display_rgb(image), pixel_weights)
    return tally.components(model)


def build_summary(
    *,
    source: str | None,
    image_shape: tuple[int, ...],
    image_dtype: np.dtype,
    config: SegmentConfig,
    model: Mixture | None,
    n_labels: int,
    working_shape: tuple[int, int] | None,
    feature_names: list[str],
    components: list[dict[str, Any]],
    timings: dict[str, float],
    info: ImageInfo | None = None,
    bias_field: BiasField | None = None,
) -> dict[str, Any]:
    """The JSON summary of a segmentation: input (with its metadata), mode, settings, components, fit, bias field, timings."""
    from segment import __version__

    described = info.to_dict() if info is not None else {}
    summary = {
        "segment_version": __version__,
        "input": {**described, "path": source, "shape": list(image_shape), "dtype": str(np.dtype(image_dtype))},
        "mode": config.mode,
        "settings": config.to_dict(),
        "n_components": int(model.n_components) if model is not None else 0,
        "n_labels": int(n_labels),
        "working_shape": list(working_shape) if working_shape else None,
    }
    meta = getattr(model, "metadata_", {}) if model is not None else {}
    if config.n_components == AUTO and meta.get("auto_scores"):
        summary["auto_components"] = {"criterion": meta.get("auto_criterion"), "scores": meta["auto_scores"]}
    summary.update(
        {
            "features": list(feature_names),
            "components": components,
            "log_likelihood": finite_or_none(getattr(model, "lower_bound_", None)),
            "iterations": int(getattr(model, "n_iter_", 0)),
            "converged": bool(getattr(model, "converged_", False)),
            "log_likelihood_history": [float(v) for v in getattr(model, "log_likelihood_history_", [])],
            "bias_field": bias_field.summary() if bias_field is not None else None,
            "timings": {k: round(v, 6) for k, v in timings.items()},
        }
    )
    return summary


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None when it is missing or not finite (JSON has no inf)."""
    return float(value) if value is not None and np.isfinite(value) else None


@dataclass
class Segmentation:
    """The result of :func:`segment.segment_image`.

    Attributes
    ----------
    labels : (H, W) int32 ndarray
        Label of every pixel: mixture components 1..K in a deterministic order
        (by mean feature, luminance first), or connected regions 1..R with
        ``relabel``; 0 marks transparent pixels that took no part. Images
        above ``work_pixels`` are segmented on a downscaled working copy and
        their boundaries placed at full resolution (:mod:`segment.upscale`).
    model : Mixture or None
        The fitted (or given) mixture; None when no pixel was usable.
    config : SegmentConfig
        The settings used.
    confidence : (H, W) float32 ndarray
        Posterior probability of each pixel's component (0 where transparent);
        for an image segmented on a working copy, the copy's map enlarged
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
    info : ImageInfo or None
        The input's metadata (format, orientation applied, resolution,
        georeferencing, nodata, band names), carried into the outputs.
    region_classes : (R + 1,) int32 ndarray or None
        Mixture component (1..K) of each label id (0 for 0): regions keep
        the component they were merged into.
    probabilities : (K, H, W) float32 ndarray or None
        Posterior of every component at every pixel under the mixture alone
        (no spatial prior), when "probabilities" is among the outputs.
    bias_field : BiasField or None
        The bias field the image was corrected by (``bias``), over the
        image's grid; ``bias_field.image()`` evaluates it, (H, W, C) float32.
    hierarchy : Hierarchy or None
        The merge hierarchy of the regions (:mod:`segment.hierarchy`), when
        "hierarchy" is among the outputs.

    Examples
    --------
    >>> import numpy as np, segment
    >>> image = np.zeros((10, 12, 3), np.uint8); image[:, 6:] = 220
    >>> result = segment.segment_image(image, n_components=2, position_weight=0)
    >>> result.labels.shape, result.labels.dtype, result.model.n_components
    ((10, 12), dtype('int32'), 2)
    """

    labels: np.ndarray
    model: Mixture | None
    config: SegmentConfig
    confidence: np.ndarray
    image: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    log_likelihood_history: list[float] = field(default_factory=list)
    source: str | None = None
    components: list[dict[str, Any]] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    working_shape: tuple[int, int] | None = None
    info: ImageInfo | None = None
    region_classes: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    bias_field: BiasField | None = None
    hierarchy: Hierarchy | None = None

    @property
    def classes(self) -> np.ndarray:
        """Mixture component (1..K) of every pixel, (H, W) int32; 0 where no pixel took part."""
        if self.region_classes is None:
            return self.labels
        return self.region_classes[self.labels]

    @property
    def n_labels(self) -> int:
        """Number of distinct non-background labels."""
        values = np.unique(self.labels)
        return int((values != BACKGROUND).sum())

    def to_rgb(self) -> np.ndarray:
        """Colourised label map, (H, W, 3) uint8.

        Examples
        --------
        >>> import numpy as np, segment
        >>> image = np.zeros((10, 12, 3), np.uint8); image[:, 6:] = 220
        >>> segment.segment_image(image, n_components=2, position_weight=0).to_rgb().shape
        (10, 12, 3)
        """
        return render.colorize(self.labels)

    def overlay(self, color: tuple[int, int, int] = (255, 255, 0)) -> np.ndarray:
        """The image (``config.display_bands`` of a multiband one) with region boundaries drawn on it, (H, W, 3) uint8.

        Examples
        --------
        >>> import numpy as np, segment
        >>> image = np.zeros((10, 12, 3), np.uint8); image[:, 6:] = 220
        >>> picture = segment.segment_image(image, n_components=2, position_weight=0).overlay()
        >>> picture.shape, picture.dtype
        ((10, 12, 3), dtype('uint8'))
        """
        return render.overlay(self.image, self.labels, color, self.config.display_bands)

    def save(self, outdir: str | os.PathLike, stem: str | None = None, kinds: tuple[str, ...] | None = None) -> dict[str, Path]:
        """Write the outputs chosen in ``config.save``; see :func:`segment.save_segmentation`.

        Examples
        --------
        >>> import tempfile, numpy as np, segment
        >>> image = np.zeros((10, 12, 3), np.uint8); image[:, 6:] = 220
        >>> result = segment.segment_image(image, n_components=2, position_weight=0)
        >>> paths = result.save(tempfile.mkdtemp(), stem="demo", kinds=("labels", "json"))
        >>> sorted(path.name for path in paths.values())
        ['demo.json', 'demo_labels.png']
        """
        return outputs.save_segmentation(self, outdir, stem, kinds)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable description: input, settings, components, fit, timings.

        Examples
        --------
        >>> import numpy as np, segment
        >>> image = np.zeros((10, 12, 3), np.uint8); image[:, 6:] = 220
        >>> summary = segment.segment_image(image, n_components=2, position_weight=0).summary()
        >>> summary["input"]["shape"], summary["n_components"]
        ([10, 12, 3], 2)
        """
        return build_summary(
            source=self.source,
            image_shape=self.image.shape,
            image_dtype=self.image.dtype,
            config=self.config,
            model=self.model,
            n_labels=self.n_labels,
            working_shape=self.working_shape,
            feature_names=self.feature_names,
            components=self.components,
            timings=self.timings,
            info=self.info,
            bias_field=self.bias_field,
        )
