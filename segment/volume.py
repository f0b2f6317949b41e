"""3D volumes (MRI, CT, microscopy stacks) labelled by class: :func:`segment_volume`.

A volume runs classes mode (:mod:`segment.config`): every voxel's intensity
(or bands) is a feature, a mixture with one shared covariance is fitted,
class ids are ordered by mean intensity, a bias field polynomial in
(x, y, z) is estimated inside EM (:mod:`segment.bias`), and a light Potts
prior over the 6 face neighbours smooths the labels (:mod:`segment.smoothing`,
the same ICM kernels as images). Specks go only by ``min_size``, with 3D
connectivity. Region merging has no 3D region graph: ``mode="regions"`` is
refused.

The features and the fit see the volume as its planes stacked, a
(Z * H, W[, C]) image: with no position features a voxel's features do not
depend on where it is, so the image machinery (feature histograms, fit
samples) serves unchanged; only the bias field and the prior look at the
third axis. See docs/volumes.md.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segment import bias, io, smoothing, threads
from segment.config import SegmentConfig, volume_defaults
from segment.features import FeatureSpec
from segment.gmm import Mixture
from segment.io.volume import VolumeInfo, read_volume, volume_stem, write_volume
from segment.pipeline import StageTimer, correct_bias, fit_image_model, refit_with_prior, seed_of
from segment.result import build_summary
from segment.segment_file import FileResult

__all__ = ["VolumeSegmentation", "segment_volume", "VOLUME_OUTPUTS"]

# What a volume can write; the other kinds are pictures or 2-D region products.
VOLUME_OUTPUTS = ("labels", "confidence", "bias", "json")


@dataclass
class VolumeSegmentation:
    """The result of :func:`segment_volume`.

    Attributes
    ----------
    labels : (Z, H, W) int32 ndarray
        Class of every voxel, 1..K by mean intensity (0 outside ``mask``).
    confidence : (Z, H, W) float32 ndarray
        Posterior of each voxel's class (under the Potts prior where it
        could change the label).
    model : Mixture or None
        The fitted mixture (None when no voxel took part).
    config : SegmentConfig
        The settings used (classes mode).
    spacing : (float, float, float) or None
        Voxel size (z, y, x) that weighted the prior between planes.
    bias_field : BiasField or None
        The field (a polynomial in x, y, z) the volume was corrected by.
    components : list of dict
        Per class: label, weight, mean features, voxel count, fraction of
        the labelled voxels and mean input intensity per band.
    feature_names : list of str
    timings : dict
        Seconds per stage.
    info : VolumeInfo or None
        The file's metadata (NIfTI header, TIFF resolution), for the outputs.
    source : str or None
        Input path, when a path was given.
    input_shape : tuple of int
        Shape of the volume as given, (Z, H, W[, C]).
    input_dtype : numpy dtype

    Examples
    --------
    >>> import numpy as np, segment
    >>> volume = np.zeros((4, 10, 12), np.uint8); volume[:, :, 6:] = 200
    >>> result = segment.segment_volume(volume, n_components=2)
    >>> result.labels.shape, result.labels.dtype
    ((4, 10, 12), dtype('int32'))
    """

    labels: np.ndarray
    confidence: np.ndarray
    model: Mixture | None
    config: SegmentConfig
    spacing: tuple[float, float, float] | None = None
    bias_field: bias.BiasField | None = None
    components: list[dict[str, Any]] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    info: VolumeInfo | None = None
    source: str | None = None
    input_shape: tuple[int, ...] = ()
    input_dtype: Any = np.uint8

    @property
    def n_labels(self) -> int:
        """Number of distinct classes present (label 0 not counted)."""
        return int(np.count_nonzero(np.bincount(self.labels.ravel())[1:]))

    def summary(self) -> dict[str, Any]:
        """The JSON summary: input, mode, settings, classes with voxel counts, fit, bias field, volume shape and spacing.

        Examples
        --------
        >>> import numpy as np, segment
        >>> volume = np.zeros((4, 10, 12), np.uint8); volume[:, :, 6:] = 200
        >>> summary = segment.segment_volume(volume, n_components=2, spacing=(2, 1, 1)).summary()
        >>> summary["volume"]["shape"], summary["volume"]["spacing"], [c["voxel_count"] for c in summary["components"]]
        ([4, 10, 12], [2.0, 1.0, 1.0], [240, 240])
        """
        summary = build_summary(
            source=self.source, image_shape=self.input_shape, image_dtype=self.input_dtype, config=self.config,
            model=self.model, n_labels=self.n_labels, working_shape=None, feature_names=self.feature_names,
            components=self.components, timings=self.timings, bias_field=self.bias_field,
        )
        if self.info is not None:
            summary["input"].update(self.info.to_dict())
        summary["volume"] = {
            "shape": list(self.labels.shape),
            "spacing": list(self.spacing) if self.spacing else None,
            "voxels": int(self.labels.size),
            "labelled_voxels": int(np.count_nonzero(self.labels)),
        }
        return summary

    def save(self, outdir: str | os.PathLike, stem: str | None = None, kinds: tuple[str, ...] | None = None) -> dict[str, Path]:
        """Write the label volume (and confidence, bias field, JSON summary) in the input's format.

        NIfTI in gives ``<stem>_labels.nii.gz`` (uint8/uint16, the input's
        affine, qform/sform codes and zooms); a TIFF stack, or an array,
        gives ``<stem>_labels.tif`` (multi-page, with the input's resolution
        and ImageJ spacing). Kinds outside :data:`VOLUME_OUTPUTS` are
        skipped (:func:`volume_kinds`). Each file is written whole or not at
        all, the JSON last.

        Returns
        -------
        dict
            Output kind -> path written.

        Examples
        --------
        >>> import tempfile, numpy as np, segment
        >>> volume = np.zeros((4, 10, 12), np.uint8); volume[:, :, 6:] = 200
        >>> result = segment.segment_volume(volume, n_components=2)
        >>> sorted(p.name for p in result.save(tempfile.mkdtemp(), "demo", ("labels", "json")).values())
        ['demo.json', 'demo_labels.tif']
        """
        kinds, _ = volume_kinds(self.config.save if kinds is None else tuple(kinds))
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        stem = stem or (volume_stem(self.source) if self.source else "volume")
        info = self.info if self.info is not None else VolumeInfo(self.labels.shape, None, "tiff", self.spacing)
        protect = (Path(self.source),) if self.source else ()
        paths = volume_output_paths(outdir, stem, kinds, self.source if info.format == "nifti" else None)
        maps = {"labels": lambda: self.labels, "confidence": lambda: self.confidence, "bias": self._field_volume}
        for kind, path in paths.items():
            if kind in maps:
                array = maps[kind]()
                if array is not None:
                    write_volume(path, array, info, protect=protect)
        if "json" in paths:
            summary = self.summary()
            summary["outputs"] = {kind: path.name for kind, path in paths.items()}
            io.write_json(paths["json"], summary, protect=protect)
        return paths

    def _field_volume(self) -> np.ndarray | None:
        """The bias field on the volume's grid, (Z, H, W) float32 (the first band's)."""
        if self.bias_field is None:
            return None
        return np.stack([self.bias_field.plane(z)[:, :, 0] for z in range(self.labels.shape[0])])


def volume_kinds(kinds: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split output kinds into those a volume writes and those it skips (pictures, polygons, hierarchy).

    Examples
    --------
    >>> volume_kinds(("labels", "overlay", "json"))
    (('labels', 'json'), ('overlay',))
    """
    return tuple(k for k in kinds if k in VOLUME_OUTPUTS), tuple(k for k in kinds if k not in VOLUME_OUTPUTS)


def volume_output_paths(outdir: Path, stem: str, kinds: tuple[str, ...], source: str | os.PathLike | None) -> dict[str, Path]:
    """Where each output of a volume goes: ``<stem>_<kind>`` + the input's suffix (.nii.gz, .nii; .tif for
    a TIFF stack or an array), and ``<stem>.json``. Kinds a volume does not write are left out.

    Examples
    --------
    >>> paths = volume_output_paths(Path("out"), "t1", ("labels", "overlay", "json"), "t1.nii.gz")
    >>> [path.name for path in paths.values()]
    ['t1_labels.nii.gz', 't1.json']
    """
    name = str(source or "").lower()
    suffix = next((s for s in (".nii.gz", ".nii") if name.endswith(s)), ".tif")
    kinds, _ = volume_kinds(kinds)
    return {kind: outdir / (f"{stem}.json" if kind == "json" else f"{stem}_{kind}{suffix}") for kind in kinds}


def volume_config(config: SegmentConfig | None, overrides: dict[str, Any]) -> SegmentConfig:
    """The settings of a volume: classes mode unless told otherwise, which is refused.

    Without ``config``, the fields of :data:`segment.config.VOLUME_DEFAULTS`
    not in ``overrides`` take their volume values.

    Raises
    ------
    ValueError
        ``mode="regions"``: region merging needs a 2-D region graph.
    """
    if config is None:
        config = SegmentConfig(mode=overrides.get("mode", "classes"), **volume_defaults(overrides))
    cfg = config.replace(**overrides) if overrides else config
    if cfg.mode != "classes":
        raise ValueError("mode 'regions' is not available for volumes (no 3-D region graph); use mode 'classes'")
    return cfg


def segment_volume(
    volume: np.ndarray | str | os.PathLike,
    *,
    config: SegmentConfig | None = None,
    channel_axis: int | None = None,
    mask: np.ndarray | None = None,
    spacing: tuple[float, float, float] | None = None,
    random_state: int | np.random.Generator | None = None,
    **overrides: Any,
) -> VolumeSegmentation:
    """Label every voxel of a 3D volume with its mixture class (classes mode, bias field, 3D Potts prior).

    Parameters
    ----------
    volume : (Z, H, W[, C]) ndarray or path-like
        A volume of any numeric dtype (never modified), or a NIfTI file
        (.nii, .nii.gz) or TIFF stack read by :func:`segment.io.volume.read_volume`.
    config : SegmentConfig, optional
        Settings; defaults to ``SegmentConfig(mode="classes")`` with
        :data:`segment.config.VOLUME_DEFAULTS` (one covariance per class, Potts
        strength 0.75). Regions mode is refused.
    channel_axis : int or None, default None
        Axis of a 4-D array's channels (e.g. -1 for (Z, H, W, C)); None for
        a 3-D single-band volume.
    mask : (Z, H, W) array, optional
        Voxels to segment (non-zero), e.g. a brain mask; the others take no
        part in the fit and get label 0.
    spacing : (float, float, float), optional
        Voxel size (z, y, x); by default the file's, else isotropic. Planes
        farther apart than the in-plane pixel size weigh less in the prior
        (:func:`segment.smoothing.volume_neighbourhood`).
    random_state : int, numpy.random.Generator or None
        Seed of the sampling and of EM's initialisation (None: ``config.seed``).
    **overrides
        SegmentConfig fields to change, e.g. ``n_components=3``, ``smoothing=0.5``,
        ``bias=False``, ``min_size=20``.

    Returns
    -------
    VolumeSegmentation
        ``labels`` (Z, H, W) int32, class ids 1..K ordered by mean intensity.

    Raises
    ------
    ValueError
        Regions mode, a wrong shape, a mask of another shape, bad settings.
    ImageReadError
        A path that cannot be read as a volume.

    Examples
    --------
    >>> import numpy as np, segment
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((16, 20, 20), np.uint8); truth[4:12, 5:15, 5:15] = 1
    >>> volume = (60 + 120 * truth + rng.normal(0, 10, truth.shape)).astype(np.int16)
    >>> result = segment.segment_volume(volume, n_components=2, spacing=(2.0, 1.0, 1.0))
    >>> float(((result.labels == 2) == (truth == 1)).mean())
    1.0
    """
    cfg = volume_config(config, overrides)
    if random_state is not None:
        cfg = cfg.replace(seed=seed_of(random_state))
    timer = StageTimer()
    info = source = None
    if isinstance(volume, (str, os.PathLike)):
        source = str(volume)
        volume, info = read_volume(volume)
        spacing = spacing if spacing is not None else info.spacing
    planes = _channels_last(np.asarray(volume), channel_axis)
    input_shape, input_dtype = planes.shape, planes.dtype
    depth, height, width = planes.shape[:3]
    valid = _mask_of(mask, (depth, height, width))
    neighbourhood = smoothing.volume_neighbourhood(spacing)
    timer.lap("load")
    labels, confidence, model, field, names = _label_volume(planes, valid, cfg, neighbourhood, timer.lap)
    labels = remove_specks(labels, cfg.min_size)
    components = class_statistics(planes, labels, model)
    timings = timer.total()
    return VolumeSegmentation(
        labels=labels, confidence=confidence, model=model, config=cfg,
        spacing=tuple(float(s) for s in spacing) if spacing is not None else None,
        bias_field=field, components=components, feature_names=names, timings=timings, info=info,
        source=source, input_shape=tuple(input_shape), input_dtype=input_dtype,
    )


def _channels_last(volume: np.ndarray, channel_axis: int | None) -> np.ndarray:
    if volume.ndim == 3 and channel_axis is None:
        return volume
    if volume.ndim != 4:
        raise ValueError(f"a volume must be (Z, H, W), or (Z, H, W, C) with channel_axis; got shape {volume.shape}")
    if channel_axis is None:
        raise ValueError(f"volume of shape {volume.shape} is 4-D but channel_axis=None; give the axis of its channels (e.g. -1)")
    return np.moveaxis(volume, channel_axis, -1)


def _mask_of(mask: np.ndarray | None, shape: tuple[int, int, int]) -> np.ndarray | None:
    """The flat (Z * H * W,) bool mask of the voxels that take part; None when all do."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ValueError(f"mask has shape {mask.shape}, the volume {shape}")
    valid = mask.reshape(-1) != 0
    return None if valid.all() else valid


def _label_volume(
    planes: np.ndarray, valid: np.ndarray | None, cfg: SegmentConfig, neighbourhood: smoothing.Neighbourhood,
    lap: Callable[[str], None],
) -> tuple[np.ndarray, np.ndarray, Mixture | None, bias.BiasField | None, list[str]]:
    """Features → fit → bias field → label → smoothing (HMRF-EM) of the planes stacked as one image; ``lap`` is
    called with each stage's name when it ends."""
    depth, height, width = planes.shape[:3]
    stacked = io.as_image(proportional_values(planes.reshape(depth * height, width, *planes.shape[3:])))
    spec = FeatureSpec.for_image(stacked, cfg.color_space, 0.0, alpha=False)
    feats = spec.image_features(stacked)
    if valid is not None:
        feats = feats[valid]
    lap("features")
    labels = np.zeros((depth, height, width), dtype=np.int32)
    confidence = np.zeros((depth, height, width), dtype=np.float32)
    if not len(feats):
        return labels, confidence, None, None, spec.names
    target = slice(None) if valid is None else valid
    with threads.limited(cfg.n_jobs):
        model = fit_image_model(stacked, spec, valid, cfg, feats=feats)
        lap("fit")
        field = None
        if cfg.bias:
            field, model, _, feats = correct_bias(model, stacked, spec, valid, cfg.seed, refit=True, grid=(depth, height, width))
            lap("bias")

        def label_voxels() -> None:
            components, certainty = model.label(feats)
            labels.reshape(-1)[target] = components + 1
            confidence.reshape(-1)[target] = certainty

        label_voxels()
        lap("label")
        if cfg.smoothing > 0:
            smooth = dict(valid=valid, neighbourhood=neighbourhood)
            smoothing.smooth_labels(model, feats, labels, confidence, cfg.smoothing, update_confidence=False, **smooth)
            model = refit_with_prior(model, feats, labels, valid, cfg, neighbourhood)
            label_voxels()
            smoothing.smooth_labels(model, feats, labels, confidence, cfg.smoothing, **smooth)
            lap("smooth")
    return labels, confidence, model, field, spec.names


def proportional_values(values: np.ndarray) -> np.ndarray:
    """Non-negative intensities scaled so that 0 stays 0 and the maximum spans the feature range.

    A multiplicative bias field needs 0 to stay 0, but the image path
    stretches a float or int16 array from its minimum to its maximum, which
    adds an offset (MRI and microscopy intensities start at 0). So integers
    up to 65535 become uint16 multiplied by ``65535 // max`` (exact, and
    counted by the fast 16-bit histogram), floats are divided by their
    maximum (float32 in [0, 1]). uint8 and uint16 are kept (divided by their
    dtype's maximum later); negative values (CT in Hounsfield units) keep the
    stretch, and a bias field there is not multiplicative (use ``bias=False``).

    Examples
    --------
    >>> proportional_values(np.array([[0, 50], [100, 200]], np.int16)).tolist()
    [[0, 16350], [32700, 65400]]
    >>> proportional_values(np.array([0.0, 2.0, 4.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    if values.dtype in (np.uint8, np.uint16, np.bool_) or not values.size:
        return values
    low, high = values.min(), values.max()
    if low < 0 or not 0 < high or (values.dtype.kind == "f" and high <= 1):
        return values
    if values.dtype.kind in "iu" and high <= 65535:
        scaled = values.astype(np.uint16)
        scaled *= np.uint16(65535 // int(high))
        return scaled
    return np.divide(values, np.float32(high), dtype=np.float32)


def remove_specks(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Give every 6-connected part of a class smaller than ``min_size`` voxels the class of its nearest larger part.

    Label 0 (outside the mask) is left alone and never spreads. Each class
    is taken apart with :func:`scipy.ndimage.label`; the voxels of the
    specks take the label of the nearest voxel that is kept (Euclidean
    distance transform).

    Examples
    --------
    >>> labels = np.ones((3, 5, 5), np.int32); labels[1, 2, 2] = 2
    >>> int(remove_specks(labels, 2)[1, 2, 2])
    1
    """
    if min_size <= 1 or not labels.size:
        return labels
    from scipy import ndimage

    specks = np.zeros(labels.shape, dtype=bool)
    for k in np.unique(labels):
        if k == 0:
            continue
        parts, n = ndimage.label(labels == k)
        small = np.bincount(parts.ravel(), minlength=n + 1) < min_size
        small[0] = False
        specks |= small[parts]
    if not specks.any():
        return labels
    kept = (labels > 0) & ~specks
    if not kept.any():
        return labels
    nearest = ndimage.distance_transform_edt(~kept, return_distances=False, return_indices=True)
    out = labels.copy()
    out[specks] = labels[tuple(index[specks] for index in nearest)]
    return out


def class_statistics(planes: np.ndarray, labels: np.ndarray, model: Mixture | None) -> list[dict[str, Any]]:
    """Per class: label, weight, mean features, voxel count, fraction of the labelled voxels, mean input value per band."""
    if model is None:
        return []
    flat = labels.ravel()
    size = model.n_components + 1
    counts = np.bincount(flat, minlength=size)
    values = planes.reshape(flat.size, -1)
    sums = np.stack([np.bincount(flat, weights=values[:, band].astype(np.float64), minlength=size) for band in range(values.shape[1])], axis=1)
    labelled = max(int(counts[1:].sum()), 1)
    stats = []
    for k in range(model.n_components):
        n = int(counts[k + 1])
        stats.append(
            {
                "label": k + 1,
                "weight": float(model.weights_[k]),
                "mean_features": [float(v) for v in model.means_[k]],
                "voxel_count": n,
                "fraction": round(n / labelled, 6),
                "mean_intensity": [round(float(v), 4) for v in sums[k + 1] / n] if n else None,
            }
        )
    return stats


def warn_skipped(skipped: tuple[str, ...]) -> None:
    """One warning naming the outputs a volume does not write."""
    if skipped:
        warnings.warn(
            f"outputs {', '.join(skipped)} are not written for a volume (it writes {', '.join(VOLUME_OUTPUTS)})",
            UserWarning,
            stacklevel=2,
        )


def segment_volume_file(
    source: str | os.PathLike,
    outdir: str | os.PathLike,
    config: SegmentConfig | None = None,
    *,
    stem: str | None = None,
    kinds: tuple[str, ...] | None = None,
    thumbnails: tuple[Path, Path] | None = None,
    summary_extra: dict[str, Any] | None = None,
    mask: str | os.PathLike | None = None,
) -> FileResult:
    """Segment one volume file (NIfTI, TIFF stack) and write its outputs in its format; the JSON last.

    The counterpart of :func:`segment.segment_file.segment_file` for volumes
    (which calls it): ``config`` defaults to classes mode, ``mask`` is a
    volume file of the same shape, output kinds a volume does not write
    (pictures, polygons, hierarchy) are skipped with one warning unless they
    are the defaults, and ``thumbnails`` shows the middle plane.

    Raises
    ------
    ImageReadError, OutputError, ValueError
        An unreadable volume or mask, a failed write, regions mode.
    """
    from segment.thumbnails import write_thumbnails

    start = time.perf_counter()
    cfg = volume_config(config, {})
    kinds = cfg.save if kinds is None else tuple(kinds)
    written, skipped = volume_kinds(kinds)
    if skipped and tuple(k for k in kinds if k != "json") != tuple(k for k in SegmentConfig().save if k != "json"):
        warn_skipped(skipped)
    voxels, info = read_volume(source)
    loaded = time.perf_counter() - start
    mask_voxels = None
    if mask is not None:
        mask_voxels, _ = read_volume(mask)
        if mask_voxels.shape[:3] != voxels.shape[:3]:
            raise ValueError(f"mask {mask} has shape {mask_voxels.shape[:3]}, the volume {voxels.shape[:3]}")
        mask_voxels = mask_voxels.reshape(mask_voxels.shape[:3] + (-1,))[..., 0]
    result = segment_volume(voxels, config=cfg, channel_axis=-1 if voxels.ndim == 4 else None, mask=mask_voxels, spacing=info.spacing)
    result.info, result.source = info, str(source)
    result.timings["load"] = loaded
    stem = stem or volume_stem(source)
    paths = result.save(outdir, stem, tuple(k for k in written if k != "json"))
    if thumbnails is not None:
        middle = voxels.shape[0] // 2
        write_thumbnails(io.as_image(voxels[middle]), result.labels[middle], *thumbnails)
    summary = result.summary()
    paths.update(volume_output_paths(Path(outdir), stem, ("json",) if "json" in written else (), source))
    summary["outputs"] = {kind: path.name for kind, path in paths.items()}
    summary.update(summary_extra or {})
    if "json" in paths:
        io.write_json(paths["json"], summary, protect=(Path(source),))
    return FileResult(
        summary=summary, paths=paths, n_components=int(result.model.n_components) if result.model is not None else 0,
        n_labels=result.n_labels, pixels=int(result.labels.size), tiled=False, seconds=time.perf_counter() - start,
    )
