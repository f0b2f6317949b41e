"""Synthetic class images with a known number of classes, for tests and for scripts/evaluate_k_auto.py.

An image is a layout of K class labels (a Voronoi tessellation, smoothed
random label fields, or ellipses on a background), one of them often covering
only a few per cent of the image; each class gets a colour (or grey level)
that a person tells apart from the others, its own fine texture, and the
whole picture gets smooth uneven light (shading), a little lens blur and
sensor noise.

Examples
--------
>>> import numpy as np
>>> image, truth = class_image(3, (120, 160), np.random.default_rng(0))
>>> image.shape, image.dtype, sorted(np.unique(truth).tolist())
((120, 160, 3), dtype('uint8'), [1, 2, 3])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, spatial
from skimage import color

__all__ = ["ClassImageSettings", "class_image", "random_settings"]

LAYOUTS = ("voronoi", "fields", "ellipses")
# Colours of two classes differ by at least this CIE76 Delta E; grey levels by this many of 255.
MIN_COLOUR_DISTANCE = 22.0
MIN_GREY_STEP = 26
# Every class covers at least this fraction of the image; a "small" class about SMALL_CLASS_AREA.
MIN_CLASS_AREA = 0.01
SMALL_CLASS_AREA = (0.02, 0.05)


@dataclass(frozen=True)
class ClassImageSettings:
    """How one synthetic class image looks (all amplitudes on the 0–255 scale).

    Parameters
    ----------
    layout : {"voronoi", "fields", "ellipses"}
    noise : float
        Standard deviation of the Gaussian sensor noise.
    shading : float
        Largest relative change of light across the image (0.05: ±5 %).
    texture : float
        Standard deviation of each class's fine texture.
    colour : bool
        RGB (True) or greyscale.
    small_class : bool
        Whether one class covers only 2–5 % of the image.
    """

    layout: str = "voronoi"
    noise: float = 4.0
    shading: float = 0.05
    texture: float = 3.0
    colour: bool = True
    small_class: bool = True


def random_settings(rng: np.random.Generator, noise: float | None = None) -> ClassImageSettings:
    """Settings drawn at random: layout, shading, texture, colour or grey, a small class or not."""
    return ClassImageSettings(
        layout=str(rng.choice(LAYOUTS)),
        noise=float(rng.uniform(1.0, 10.0)) if noise is None else noise,
        shading=float(rng.uniform(0.0, 0.05)),
        texture=float(rng.uniform(0.0, 5.0)),
        colour=bool(rng.random() < 0.6),
        small_class=bool(rng.random() < 0.5),
    )


def class_image(
    n_classes: int,
    shape: tuple[int, int],
    rng: np.random.Generator,
    settings: ClassImageSettings | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic image of ``n_classes`` classes and its truth.

    Parameters
    ----------
    n_classes : int
        Number of classes, 1 to 10.
    shape : (int, int)
        (height, width) of the image.
    rng : numpy.random.Generator
        Source of every random choice (the same state gives the same image).
    settings : ClassImageSettings, optional
        Defaults to ``ClassImageSettings()``.

    Returns
    -------
    image : (H, W, 3) or (H, W) uint8 ndarray
    truth : (H, W) int32 ndarray
        Class of every pixel, 1..n_classes; each class covers at least 1 % of it.
    """
    if not 1 <= n_classes <= 10:
        raise ValueError(f"n_classes must be 1 to 10; got {n_classes}")
    settings = settings or ClassImageSettings()
    truth = _layout(n_classes, shape, rng, settings)
    levels = _class_colours(n_classes, rng) if settings.colour else _class_greys(n_classes, rng)[:, None]
    image = levels[truth - 1].astype(np.float64)
    if settings.texture > 0:
        texture = _smooth_noise(shape, 1.0, rng, (n_classes,))  # one pattern per class
        amplitude = settings.texture * rng.uniform(0.5, 1.5, n_classes)
        image += (amplitude[:, None, None] * texture)[truth - 1, np.arange(shape[0])[:, None], np.arange(shape[1])][..., None]
    image *= 1.0 + settings.shading * _shading(shape, rng)[..., None]
    image = ndimage.gaussian_filter(image, (0.7, 0.7, 0))  # lens blur: mixed pixels on the borders
    image += rng.normal(0.0, settings.noise, image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return (image if settings.colour else image[..., 0]), truth


def _layout(n_classes: int, shape: tuple[int, int], rng: np.random.Generator, settings: ClassImageSettings) -> np.ndarray:
    """Class labels 1..n_classes, each covering at least MIN_CLASS_AREA (redrawn until so)."""
    small = settings.small_class and n_classes >= 2
    base = n_classes - 1 if small else n_classes
    for _ in range(50):
        truth = _base_layout(base, shape, rng, settings.layout)
        if small:
            _add_small_class(truth, n_classes, rng)
        areas = np.bincount(truth.ravel(), minlength=n_classes + 1)[1:] / truth.size
        if areas.min() >= MIN_CLASS_AREA:
            return truth
    raise RuntimeError(f"no layout of {n_classes} classes with every class above {MIN_CLASS_AREA:.0%} of the image")


def _base_layout(n_classes: int, shape: tuple[int, int], rng: np.random.Generator, layout: str) -> np.ndarray:
    height, width = shape
    if n_classes == 1:
        return np.ones(shape, dtype=np.int32)
    if layout == "voronoi":
        n_cells = int(rng.integers(n_classes, 3 * n_classes + 1))
        seeds = rng.uniform(0, 1, (n_cells, 2)) * (height, width)
        cell_class = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n_cells - n_classes)])
        pixels = np.stack(np.mgrid[0:height, 0:width], axis=-1).reshape(-1, 2)
        nearest = spatial.cKDTree(seeds).query(pixels)[1].reshape(shape)
        return (cell_class[nearest] + 1).astype(np.int32)
    if layout == "fields":
        scale = rng.uniform(0.05, 0.15) * min(shape)
        fields = _smooth_noise(shape, scale, rng, (n_classes,))
        fields += rng.normal(0, 0.3, n_classes)[:, None, None]  # unequal areas
        return (fields.argmax(axis=0) + 1).astype(np.int32)
    # ellipses of the other classes on a background of class 1, later ones on top
    truth = np.ones(shape, dtype=np.int32)
    rows, cols = np.mgrid[0:height, 0:width]
    for label in range(2, n_classes + 1):
        for _ in range(int(rng.integers(1, 4))):
            _draw_ellipse(truth, rows, cols, label, rng.uniform(0.08, 0.25) * min(shape), rng)
    return truth


def _add_small_class(truth: np.ndarray, label: int, rng: np.random.Generator) -> None:
    """Paint ``label`` as a few small ellipses covering about SMALL_CLASS_AREA of the image."""
    height, width = truth.shape
    target = rng.uniform(*SMALL_CLASS_AREA) * truth.size
    n_spots = int(rng.integers(1, 4))
    radius = np.sqrt(target / n_spots / np.pi)
    rows, cols = np.mgrid[0:height, 0:width]
    for _ in range(n_spots):
        _draw_ellipse(truth, rows, cols, label, radius, rng)


def _draw_ellipse(truth: np.ndarray, rows: np.ndarray, cols: np.ndarray, label: int, radius: float, rng: np.random.Generator) -> None:
    height, width = truth.shape
    centre = rng.uniform(0.1, 0.9, 2) * (height, width)
    aspect = rng.uniform(0.6, 1.6)
    angle = rng.uniform(0, np.pi)
    dy, dx = rows - centre[0], cols - centre[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    truth[(u / (radius * aspect)) ** 2 + (v * aspect / radius) ** 2 <= 1] = label


def _class_colours(n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """(K, 3) RGB colours in 20..235, pairwise at least MIN_COLOUR_DISTANCE apart in CIE Lab."""
    for _ in range(100):
        chosen: list[np.ndarray] = []
        candidates = rng.uniform(20, 235, (400, 3))
        lab = color.rgb2lab(candidates[None] / 255.0)[0]
        picked = []
        for i in range(len(candidates)):
            if all(np.linalg.norm(lab[i] - lab[j]) >= MIN_COLOUR_DISTANCE for j in picked):
                picked.append(i)
                chosen.append(candidates[i])
                if len(chosen) == n_classes:
                    return np.array(chosen)
    raise RuntimeError(f"could not draw {n_classes} distinct colours")


def _class_greys(n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """(K,) grey levels in 20..235, at least MIN_GREY_STEP apart, in random order."""
    slack = 215 - MIN_GREY_STEP * (n_classes - 1)
    gaps = rng.dirichlet(np.ones(n_classes + 1)) * slack
    levels = 20 + np.cumsum(gaps[:-1]) + MIN_GREY_STEP * np.arange(n_classes)
    return rng.permutation(levels)


def _smooth_noise(shape: tuple[int, int], scale: float, rng: np.random.Generator, lead: tuple[int, ...] = ()) -> np.ndarray:
    """White noise blurred over ``scale`` pixels, unit standard deviation, shape ``lead + shape``."""
    noise = rng.normal(0, 1, lead + shape)
    sigma = (0,) * len(lead) + (scale, scale)
    smooth = ndimage.gaussian_filter(noise, sigma, mode="wrap")
    axes = tuple(range(len(lead), len(lead) + 2))
    return smooth / smooth.std(axis=axes, keepdims=True)


def _shading(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth light field in [-1, 1]: a ramp in a random direction plus a broad bump."""
    height, width = shape
    rows, cols = np.mgrid[0:height, 0:width] / max(shape)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = rows * np.sin(angle) + cols * np.cos(angle)
    centre = rng.uniform(0, 1, 2) * (height, width) / max(shape)
    bump = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * rng.uniform(0.2, 0.5) ** 2))
    field = ramp + rng.uniform(-1, 1) * bump
    field -= field.min()
    return 2 * field / max(field.max(), 1e-12) - 1
