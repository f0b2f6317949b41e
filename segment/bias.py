"""A smooth multiplicative bias field, estimated inside EM (Wells et al. 1996; Zhang et al. 2001).

An image seen under uneven light (or coil sensitivity, vignetting) is the
true image times a smooth field per band. In the log domain the field is
additive: ``log I = log J + log b``. :func:`fit_bias_field` alternates

1. the E-step of the mixture on the corrected sample ``I / b``;
2. each class's mean (and variance) of the corrected log-intensities, per
   band, weighted by the posteriors;
3. a weighted least-squares fit of the residual (log-intensity minus the
   posterior-weighted class mean) by a polynomial in (x, y), or (x, y, z)
   for a volume, each pixel
   weighted by its posterior-weighted inverse class variance, so that
   steady classes (paper, white matter) say more about the light than noisy
   ones;
4. a few EM iterations of the mixture on the newly corrected sample,

until the field stops changing. When the mixture is refitted this runs from
two starts, flat light and the polynomial nearest the log-intensities
themselves (with the classes fitted afresh under it), and the one whose
corrected sample the mixture explains better is kept: a field stronger than
the contrast between two classes traps the classes of the flat start. The field is fitted on a sample of pixels
and is a polynomial in coordinates scaled to [-1, 1], so it can be evaluated
on any grid: the working copy it was fitted on, the full image, a band of
rows of it (:meth:`BiasField.rows`) or a plane of a volume (:meth:`BiasField.plane`).

References
----------
W. M. Wells, W. E. L. Grimson, R. Kikinis, F. A. Jolesz, "Adaptive
segmentation of MRI data", IEEE TMI 15(4), 1996.
Y. Zhang, M. Brady, S. Smith, "Segmentation of brain MR images through a
hidden Markov random field model and the expectation-maximization
algorithm", IEEE TMI 20(1), 2001.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass

import numpy as np

from segment import sampling
from segment.features import FeatureSpec
from segment.gmm import ConvergenceWarning, Mixture

# Degree of the polynomial in (x, y): 3 (10 terms) follows the smooth falloff
# of a lamp or a lens across a page without bending around the content.
DEGREE = 3
# Outer rounds (E-step, field, EM) at most, and EM iterations per round.
MAX_ROUNDS = 8
EM_ITER_PER_ROUND = 5
# Stop when the log-field moves less than this anywhere in the sample (0.1 %).
FIELD_TOL = 1e-3
# Pixels in the sample the field is fitted on.
FIT_PIXELS = 50_000
# Unit intensities are floored here before the log (an 8-bit half step).
FLOOR = 0.5 / 255


@dataclass(frozen=True)
class BiasField:
    """A multiplicative field per band: ``exp(polynomial(x, y))``, or ``exp(polynomial(x, y, z))`` in a volume.

    Attributes
    ----------
    coefficients : (C, P) float64 ndarray
        Polynomial coefficients per band, terms in :func:`polynomial_terms` order.
    degree : int
        Total degree of the polynomial.
    shape : (int, int) or (int, int, int)
        (H, W) of the grid the field spans, or (Z, H, W) for a volume (any
        grid of the same extent can evaluate it: coordinates are scaled to
        [-1, 1]).
    """

    coefficients: np.ndarray
    degree: int
    shape: tuple[int, int]

    @classmethod
    def flat(cls, n_bands: int, shape: tuple[int, ...], degree: int = DEGREE) -> "BiasField":
        """The field of even light (1 everywhere)."""
        return cls(np.zeros((n_bands, n_terms(degree, len(shape)))), degree, tuple(shape))

    @property
    def n_bands(self) -> int:
        return self.coefficients.shape[0]

    def resized(self, shape: tuple[int, int]) -> "BiasField":
        """The same field over a grid of ``shape`` (the same image at another size)."""
        return BiasField(self.coefficients, self.degree, tuple(shape))

    def rows(self, start: int, stop: int, plane: int | None = None) -> np.ndarray:
        """The field on rows ``start:stop`` of its grid (of ``plane`` in a volume), ((stop - start), W, C) float32."""
        height, width = self.shape[-2:]
        x = _unit_coordinate(np.arange(width), width)[None, :]
        y = _unit_coordinate(np.arange(start, stop), height)[:, None]
        z = None if plane is None else _unit_coordinate(np.array([plane]), self.shape[0])[:, None]
        terms = polynomial_terms(x, y, self.degree, z)
        log_field = np.tensordot(terms, self.coefficients.T, axes=([0], [0]))
        return np.exp(log_field).astype(np.float32)

    def plane(self, z: int) -> np.ndarray:
        """The field on plane ``z`` of a volume's grid, (H, W, C) float32."""
        return self.rows(0, self.shape[1], plane=z)

    def image(self) -> np.ndarray:
        """The field on its whole grid, (H, W, C) float32, or (Z, H, W, C) for a volume."""
        if len(self.shape) == 3:
            return np.stack([self.plane(z) for z in range(self.shape[0])])
        return self.rows(0, self.shape[0])

    def correct(self, unit: np.ndarray) -> np.ndarray:
        """``unit / field`` clipped to [0, 1], float32, the shape of ``unit``.

        ``unit`` is (H, W) or (H, W, C) for an image; for a volume, (Z, H, W)
        or (Z, H, W, C), or its planes stacked, (Z * H, W[, C]). A volume is
        corrected plane by plane, so the whole field is never held.
        """
        if len(self.shape) == 2:
            out = np.divide(_as_bands(unit), self.image(), dtype=np.float32)
            np.clip(out, 0.0, 1.0, out=out)
            return out.reshape(unit.shape)
        depth, height, width = self.shape
        planes = unit.reshape(depth, height, width, -1)
        out = np.empty(planes.shape, dtype=np.float32)
        for z in range(depth):
            np.divide(planes[z], self.plane(z), out=out[z], dtype=np.float32)
        np.clip(out, 0.0, 1.0, out=out)
        return out.reshape(unit.shape)

    def summary(self) -> dict:
        """Degree and the field's range per band, for the JSON summary."""
        if len(self.shape) == 3:
            planes = [self.plane(z) for z in range(self.shape[0])]
            low = np.min([plane.min(axis=(0, 1)) for plane in planes], axis=0)
            high = np.max([plane.max(axis=(0, 1)) for plane in planes], axis=0)
        else:
            field = self.image()
            low, high = field.min(axis=(0, 1)), field.max(axis=(0, 1))
        return {
            "degree": self.degree,
            "min": [round(float(v), 4) for v in low],
            "max": [round(float(v), 4) for v in high],
        }


def n_terms(degree: int, n_coordinates: int = 2) -> int:
    """Number of monomials x^i y^j (z^l) with i + j (+ l) <= ``degree``."""
    return math.comb(degree + n_coordinates, n_coordinates)


def polynomial_terms(x: np.ndarray, y: np.ndarray, degree: int, z: np.ndarray | None = None) -> np.ndarray:
    """Monomials x^i y^j (i + j <= degree), or x^i y^j z^l with ``z``, by total degree, at the given points.

    Parameters
    ----------
    x, y : ndarray
        Coordinates in [-1, 1], broadcast together: (N,) and (N,) for
        points, (1, W) and (H, 1) for a grid.
    degree : int
        Total degree.
    z : ndarray, optional
        A third coordinate (a volume's plane), broadcast with ``x`` and ``y``.

    Returns
    -------
    (P, *broadcast shape) float64 ndarray

    Examples
    --------
    >>> polynomial_terms(np.array([0.5]), np.array([-1.0]), 1).ravel().tolist()
    [1.0, 0.5, -1.0]
    >>> polynomial_terms(np.array([0.5]), np.array([-1.0]), 1, np.array([2.0])).ravel().tolist()
    [1.0, 0.5, -1.0, 2.0]
    """
    shapes = (x.shape, y.shape) if z is None else (x.shape, y.shape, z.shape)
    out = np.empty((n_terms(degree, len(shapes)), *np.broadcast_shapes(*shapes)))
    term = 0
    for total in range(degree + 1):
        for power_z in range(total + 1 if z is not None else 1):
            for power_y in range(total - power_z + 1):
                out[term] = x ** (total - power_z - power_y) * y**power_y
                if power_z:
                    out[term] *= z**power_z
                term += 1
    return out


def _unit_coordinate(index: np.ndarray, size: int) -> np.ndarray:
    """Pixel centres scaled to [-1, 1] across ``size`` pixels."""
    return (np.asarray(index, dtype=np.float64) + 0.5) * (2.0 / size) - 1.0


def _as_bands(unit: np.ndarray) -> np.ndarray:
    return unit[:, :, None] if unit.ndim == 2 else unit


def fit_bias_field(
    model: Mixture,
    unit: np.ndarray,
    spec: FeatureSpec,
    valid: np.ndarray | None,
    *,
    refit: bool = True,
    degree: int = DEGREE,
    seed: int = 0,
    shape: tuple[int, int, int] | None = None,
) -> tuple[BiasField, Mixture]:
    """Estimate the bias field of ``unit`` inside EM, alternating with the mixture's fit.

    Parameters
    ----------
    model : Mixture
        A mixture fitted on the uncorrected image's features. With
        ``refit`` it is refitted (a few EM iterations per round, from its
        own parameters) on every corrected sample and returned; otherwise
        it is left as is (a shared model whose classes are fixed).
    unit : (H, W) or (H, W, C) float32 ndarray
        The image's feature bands in [0, 1] (:meth:`FeatureSpec.unit`).
    spec : FeatureSpec
        Features of ``unit`` (``stretch`` None, as for a working copy).
    valid : (H * W,) bool ndarray or None
        Pixels that take part; None for all.
    refit : bool
        Refit the mixture between field updates (EM with the field).
    degree : int
        Total degree of the polynomial.
    seed : int
        Seed of the pixel sample.
    shape : (Z, H, W), optional
        The grid of a volume whose planes ``unit`` stacks, (Z * H, W[, C]):
        the field is then a polynomial in (x, y, z). None: ``spec.shape``.

    Returns
    -------
    field : BiasField
        Normalised so that its log has mean 0 over the sample.
    model : Mixture
        The mixture fitted on the corrected sample (``model`` itself without ``refit``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth = np.where(np.arange(64)[None, :] % 8 < 3, 0.3, 0.8) * np.ones((64, 1))
    >>> light = np.linspace(0.8, 1.2, 64)[:, None]
    >>> unit = (truth * light + rng.normal(0, 0.01, (64, 64))).astype(np.float32)
    >>> spec = FeatureSpec.for_image(unit, "gray", 0.0)
    >>> model = Mixture(2, random_state=0).fit(spec.image_features(unit))
    >>> field, model = fit_bias_field(model, unit, spec, None)
    >>> bool(abs(field.image()[-1, 0, 0] / field.image()[0, 0, 0] - 1.5) < 0.05)
    True
    """
    bands = _as_bands(unit)
    rng = np.random.default_rng(seed)
    pixels = sampling.fit_sample(spec.shape, valid, FIT_PIXELS, rng)
    observed = np.log(np.maximum(bands.reshape(-1, bands.shape[2])[pixels], FLOOR).astype(np.float64))
    grid = tuple(spec.shape if shape is None else shape)
    x, y, *z = _sample_coordinates(pixels, grid)
    terms = polynomial_terms(x, y, degree, *z).T  # (N, P)
    starts = [(np.zeros_like(observed), model)]
    if refit:
        starts.append(_smooth_start(model, observed, pixels, spec, terms))
    fits = [_alternate(start, observed, log_field, pixels, spec, terms, degree, grid, refit) for log_field, start in starts]

    def likelihood(fit: tuple[BiasField, Mixture, np.ndarray]) -> float:
        # Every field's log has mean 0 over the sample, so the corrected samples' likelihoods compare.
        return fit[1].score(_sample_features(np.exp(observed - fit[2]), pixels, spec))

    field, model, _ = fits[0] if len(fits) == 1 else max(fits, key=likelihood)  # ties keep the flat start
    return field, model


def _alternate(
    model: Mixture, observed: np.ndarray, log_field: np.ndarray, pixels: np.ndarray, spec: FeatureSpec,
    terms: np.ndarray, degree: int, grid: tuple[int, ...], refit: bool,
) -> tuple[BiasField, Mixture, np.ndarray]:
    """The E-step / field / EM rounds of :func:`fit_bias_field` from ``log_field`` and ``model``: the field,
    the mixture and the log-field at the sample."""
    for _ in range(MAX_ROUNDS):
        corrected = np.exp(observed - log_field)
        posteriors = model.predict_proba(_sample_features(corrected, pixels, spec))
        coefficients = _fit_residual(observed, observed - log_field, posteriors, terms)
        new_log_field = terms @ coefficients.T
        shift = new_log_field.mean(axis=0)
        coefficients[:, 0] -= shift
        new_log_field -= shift
        change = float(np.abs(new_log_field - log_field).max())
        log_field = new_log_field
        field = BiasField(coefficients, degree, grid)
        if refit:
            model = _continue_em(model, _sample_features(np.exp(observed - log_field), pixels, spec))
        if change < FIELD_TOL:
            break
    return field, model, log_field


def _smooth_start(
    model: Mixture, observed: np.ndarray, pixels: np.ndarray, spec: FeatureSpec, terms: np.ndarray
) -> tuple[np.ndarray, Mixture]:
    """A second start: the polynomial nearest the sample's log-intensities, with the classes fitted afresh under it.

    Under a strong field (±40 %) the classes fitted on the uncorrected image
    follow the light, and the alternation cannot leave them: brain MRI lost
    its white matter (docs/mri.md).
    """
    log_field = terms @ np.linalg.lstsq(terms, observed - observed.mean(axis=0), rcond=None)[0]
    fresh = copy.copy(model)  # fit replaces the fitted arrays, so ``model`` is left as it was
    fresh.weights_init = fresh.means_init = fresh.precisions_init = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fresh.fit(_sample_features(np.exp(observed - log_field), pixels, spec))
    return log_field, fresh


def _continue_em(model: Mixture, features: np.ndarray) -> Mixture:
    """``model`` refitted on ``features`` by ``EM_ITER_PER_ROUND`` EM iterations from its own parameters."""
    refit = copy.copy(model)  # fit replaces the fitted arrays, so ``model`` is left as it was
    refit.max_iter, refit.n_init, refit.warm_start = EM_ITER_PER_ROUND, 1, False
    refit.weights_init, refit.means_init, refit.precisions_init = model.weights_, model.means_, model.precisions_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        refit.fit(features)
    refit.max_iter, refit.n_init, refit.warm_start = model.max_iter, model.n_init, model.warm_start
    refit.weights_init, refit.means_init, refit.precisions_init = model.weights_init, model.means_init, model.precisions_init
    return refit


def _sample_coordinates(pixels: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """(x, y) of flat pixel indices into an (H, W) grid, or (x, y, z) into a (Z, H, W) one, scaled to [-1, 1]."""
    rows, cols = np.divmod(np.asarray(pixels, dtype=np.int64), shape[-1])
    x = _unit_coordinate(cols, shape[-1])
    if len(shape) == 2:
        return x, _unit_coordinate(rows, shape[0])
    planes, rows = np.divmod(rows, shape[1])
    return x, _unit_coordinate(rows, shape[1]), _unit_coordinate(planes, shape[0])


def _sample_features(corrected: np.ndarray, pixels: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Features of the sampled pixels from their corrected unit values, (N, D) float32."""
    values = np.clip(corrected, 0.0, 1.0).astype(np.float32)
    block = values[None, :, :] if spec.n_bands > 1 else values[None, :, 0]
    colours = spec.colours(block)[0]
    if spec.position_weight <= 0:
        return np.ascontiguousarray(colours)
    rows, cols = np.divmod(np.asarray(pixels, dtype=np.int64), spec.shape[1])
    scale = spec.position_scale
    position = np.stack([(cols + 0.5) * scale, (rows + 0.5) * scale], axis=1).astype(np.float32)
    return np.ascontiguousarray(np.concatenate([colours, position], axis=1))


def _fit_residual(observed: np.ndarray, corrected: np.ndarray, posteriors: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """Weighted least-squares polynomial of the residual log-intensity, (C, P) coefficients.

    ``observed`` and ``corrected`` are (N, C) log-intensities, ``posteriors``
    (N, K), ``terms`` (N, P).
    """
    mass = posteriors.sum(axis=0) + 1e-10  # (K,)
    class_mean = (posteriors.T @ corrected) / mass[:, None]  # (K, C)
    spread = (posteriors.T @ corrected**2) / mass[:, None] - class_mean**2
    inverse_variance = 1.0 / np.maximum(spread, 1e-4)
    predicted = posteriors @ class_mean  # (N, C)
    weights = posteriors @ inverse_variance  # (N, C)
    residual = observed - predicted
    coefficients = np.empty((observed.shape[1], terms.shape[1]))
    for band in range(observed.shape[1]):
        # Normal equations: P (at most 20) unknowns over [-1, 1] monomials are well conditioned, and
        # solving them is several times faster than lstsq's SVD of the (N, P) matrix.
        weighted = terms * weights[:, band, None]
        coefficients[band] = np.linalg.solve(weighted.T @ terms, weighted.T @ residual[:, band])
    return coefficients
