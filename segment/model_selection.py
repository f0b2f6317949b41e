"""The number of mixture components for ``n_components="auto"``: the colour classes a person tells apart.

1. Colours as a person sees them: each sampled pixel's colour averaged over
   its 5 x 5 window (noise and fine texture average out), windows that
   straddle a border between two classes left out (blurred edges mix their
   colours) -- :func:`local_colours`.
2. A mixture with two components more than the range allows is fitted to
   them; each component is widened by ``COLOUR_RESOLUTION`` (colours closer
   than that are one class to the eye).
3. The two closest components (Bhattacharyya distance) are merged into the
   Gaussian with their combined weight, mean and covariance, again and again,
   while the closest two are less than ``MERGE_DISTANCE`` apart. The groups
   left are the classes -- :func:`merge_components`, :func:`count_classes`.

BIC on pixel features cannot do this: a class under uneven light, with
texture or with blurred borders is not one Gaussian, and with tens of
thousands of pixels BIC pays for every extra component that describes its
shape, so it picks the top of any range. Those extra components overlap,
whereas classes a person tells apart do not. The measurements behind the
choice are in docs/k_auto.md (scripts/evaluate_k_auto.py).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from segment import sampling
from segment.gmm import ConvergenceWarning, Mixture

__all__ = [
    "CRITERION", "Selection", "bhattacharyya_distance", "choose_n_components", "count_classes", "local_colours",
    "merge_components",
]

CRITERION = "window-mean colours, overlapping Gaussian components merged (Bhattacharyya distance)"
# Colour rows of the fit sample the selection looks at.
AUTO_SAMPLE = 50_000
# Components are merged while the two closest are less than this apart (tuned in docs/k_auto.md).
MERGE_DISTANCE = 1.5
# Colours closer than about this (in feature units: Lab's L spans 0-100) are not told apart: it is
# added to every component's spread in each colour axis before merging (tuned in docs/k_auto.md).
COLOUR_RESOLUTION = 1.5
# Colours are averaged over a square window this many pixels wide before the choice.
LOCAL_WINDOW = 5
# Windows that vary more than this many times the image's median window are on a border, left out.
FLAT_FACTOR = 2.0
# Below this many flat-window pixels, the pixels' own colours are used.
MIN_LOCAL_ROWS = 500
# The mixture that is merged down has this many components more than the top of the range.
EXTRA_COMPONENTS = 2


@dataclass(frozen=True)
class Selection:
    """The chosen number of components and the score of every candidate.

    Attributes
    ----------
    n_components : int
    scores : dict of int to float
        For each number of components K in the range, the Bhattacharyya
        distance between the two closest of the K groups left by merging;
        the largest K whose score reaches the threshold is chosen.
    criterion : str
    """

    n_components: int
    scores: dict[int, float]
    criterion: str = CRITERION


def choose_n_components(
    colours: np.ndarray,
    auto_range: tuple[int, int],
    *,
    n_distinct: int | None = None,
    reg_covar: float = 1e-2,
    seed: int = 0,
    threshold: float = MERGE_DISTANCE,
    resolution: float = COLOUR_RESOLUTION,
) -> Selection:
    """The number of colour classes in ``colours``, within ``auto_range``.

    Parameters
    ----------
    colours : (N, C) float ndarray
        Colour features of a pixel sample (no position columns).
    auto_range : (int, int)
        Smallest and largest number of components allowed.
    n_distinct : int, optional
        Number of distinct colours in the image (or a lower bound of it
        at least ``auto_range[1]``): the answer is at most this.
    reg_covar : float, default 1e-2
        Added to the covariance diagonals of the mixture fitted.
    seed : int, default 0
        Seed of the subsample and of EM's initialisation.
    threshold : float, default MERGE_DISTANCE
        Components closer than this (Bhattacharyya distance) are merged.
    resolution : float, default COLOUR_RESOLUTION
        Standard deviation added to every component in each colour axis
        before merging: colours closer than about this are one class.

    Returns
    -------
    Selection

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> colours = np.concatenate([rng.normal(m, 2.0, (3000, 3)) for m in (10, 40, 70)]).astype(np.float32)
    >>> choose_n_components(colours, (2, 8)).n_components
    3
    """
    low, high = auto_range
    if n_distinct is not None:
        low, high = min(low, n_distinct), min(high, n_distinct)
    rng = np.random.default_rng(seed)
    colours = colours[sampling.random_rows(len(colours), AUTO_SAMPLE, rng)]
    n_fit = min(high + EXTRA_COMPONENTS, len(np.unique(colours, axis=0)))
    if n_fit <= 1:
        return Selection(1, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = Mixture(n_fit, covariance_type="full", reg_covar=reg_covar, random_state=seed).fit(colours)
    covariances = model.covariances_ + resolution**2 * np.eye(colours.shape[1])
    steps = merge_components(model.weights_, model.means_, covariances)
    scores = {k: steps[k][0] for k in range(max(low, 2), high + 1) if k in steps}
    return Selection(count_classes(steps, threshold, (low, high)), scores)


def count_classes(steps: dict[int, tuple[float, np.ndarray]], threshold: float, auto_range: tuple[int, int]) -> int:
    """The number of groups left when merging stops (the closest two at least ``threshold`` apart), within ``auto_range``.

    ``steps`` is what :func:`merge_components` returns.

    Examples
    --------
    >>> steps = {3: (0.2, None), 2: (5.0, None), 1: (np.inf, None)}
    >>> count_classes(steps, 1.5, (1, 10)), count_classes(steps, 1.5, (3, 10))
    (2, 3)
    """
    stop = max(k for k, (distance, _) in steps.items() if distance >= threshold)
    return int(np.clip(stop, *auto_range))


def local_colours(colours: np.ndarray, valid: np.ndarray | None, flat: np.ndarray) -> np.ndarray:
    """Mean colour around the pixels ``flat`` that lie inside a class, not on a border between two.

    Averaging a pixel's window takes most of the noise and fine texture out
    of its colour (a person sees a patch's colour, not a pixel's); windows
    whose colours vary much more than the image's typical window straddle a
    border, where blurred edges mix two classes' colours, and are left out.

    Parameters
    ----------
    colours : (H, W, C) ndarray
        Colour features of the image.
    valid : (H * W,) bool ndarray or None
        Pixels that take part; windows that reach outside them are left out.
    flat : (N,) int ndarray
        Raster indices of the pixels to describe (e.g. the fit sample).

    Returns
    -------
    (M, C) float32 ndarray
        Window means of the flat-window pixels of ``flat``, M <= N (the
        pixels' own colours when fewer than ``MIN_LOCAL_ROWS`` are flat).

    Examples
    --------
    >>> image = np.zeros((20, 20, 1)); image[:, 10:] = 50.0
    >>> local_colours(image, None, np.arange(400))[:, 0].tolist().count(25.0)
    0
    """
    from scipy import ndimage  # here: importing it costs every run 0.35 s, and only -k auto needs it

    size = (LOCAL_WINDOW, LOCAL_WINDOW, 1)
    colours = np.asarray(colours, dtype=np.float64)  # float32 loses the variance in mean(x^2) - mean(x)^2
    mean = ndimage.uniform_filter(colours, size, mode="nearest")
    spread = (ndimage.uniform_filter(colours * colours, size, mode="nearest") - mean * mean).sum(axis=-1).ravel()
    usable = np.ones(len(spread), dtype=bool)
    if valid is not None:
        inside = ndimage.uniform_filter(valid.reshape(colours.shape[:2]).astype(np.float64), size[:2], mode="nearest")
        usable = inside.ravel() > 1 - 1e-6
    typical = np.median(spread[usable]) if usable.any() else 0.0
    flat = np.asarray(flat)
    keep = flat[usable[flat] & (spread[flat] <= FLAT_FACTOR * typical + 1e-9)]
    if len(keep) < MIN_LOCAL_ROWS:  # too little of the image is flat: the pixels' own colours
        own = flat if valid is None else flat[valid[flat]]
        return colours.reshape(-1, colours.shape[-1])[own].astype(np.float32)
    return mean.reshape(-1, colours.shape[-1])[keep].astype(np.float32)


def merge_components(
    weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
) -> dict[int, tuple[float, np.ndarray]]:
    """Merge the closest pair of Gaussians until one is left; the closest distance and the weights at each count.

    Parameters
    ----------
    weights : (K,) ndarray
    means : (K, D) ndarray
    covariances : (K, D, D) ndarray

    Returns
    -------
    dict of int to (float, ndarray)
        For K = 1 .. len(weights): the Bhattacharyya distance of the closest
        pair among the K groups (the pair merged next; infinity for K = 1)
        and the K groups' weights.

    Examples
    --------
    >>> eye = np.eye(1)[None].repeat(3, 0)
    >>> steps = merge_components(np.ones(3) / 3, np.array([[0.0], [1.0], [20.0]]), eye)
    >>> round(steps[3][0], 3), steps[2][0] > 10, steps[2][1].round(2).tolist()
    (0.125, True, [0.33, 0.67])
    """
    weights = [float(w) for w in weights]
    means = [np.asarray(m, dtype=np.float64) for m in means]
    covariances = [np.asarray(c, dtype=np.float64) for c in covariances]
    steps = {}
    while len(weights) > 1:
        pairs = [(i, j) for i in range(len(weights)) for j in range(i + 1, len(weights))]
        distances = [bhattacharyya_distance(means[i], covariances[i], means[j], covariances[j]) for i, j in pairs]
        best = int(np.argmin(distances))
        steps[len(weights)] = (float(distances[best]), np.array(weights))
        i, j = pairs[best]
        weight = weights[i] + weights[j]
        mean = (weights[i] * means[i] + weights[j] * means[j]) / weight
        spread = [np.outer(m - mean, m - mean) for m in (means[i], means[j])]
        cov = (weights[i] * (covariances[i] + spread[0]) + weights[j] * (covariances[j] + spread[1])) / weight
        for index in (j, i):
            del weights[index], means[index], covariances[index]
        weights.append(weight)
        means.append(mean)
        covariances.append(cov)
    steps[1] = (np.inf, np.array(weights))
    return steps


def bhattacharyya_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """Bhattacharyya distance between two Gaussians (0 for the same one; -ln of their overlap coefficient).

    Examples
    --------
    >>> round(bhattacharyya_distance(np.zeros(1), np.eye(1), np.full(1, 2.0), np.eye(1)), 3)
    0.5
    """
    cov = (cov1 + cov2) / 2
    delta = mean1 - mean2
    _, logdet = np.linalg.slogdet(cov)
    _, logdet1 = np.linalg.slogdet(cov1)
    _, logdet2 = np.linalg.slogdet(cov2)
    return float(delta @ np.linalg.solve(cov, delta) / 8 + (logdet - (logdet1 + logdet2) / 2) / 2)
