"""Fitting on the histogram of distinct feature vectors: exact EM over every pixel, chosen when it applies."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import PLAIN
from segment import segment_image
from segment.config import SegmentConfig
from segment.features import FeatureSpec
from segment.gmm import ConvergenceWarning, GaussianMixture
from segment.histogram import feature_histogram
from segment.pipeline import fit_image_model

GREY = SegmentConfig(n_components=3, position_weight=0, seed=2, **PLAIN)


@pytest.fixture
def scan16() -> np.ndarray:
    """A 16-bit greyscale 'scan' of 60 x 70 from a 12-bit sensor: three levels with noise, ~1200 distinct values."""
    rng = np.random.default_rng(0)
    levels = np.array([9000, 30000, 52000])[(np.arange(60)[:, None] // 20 + np.arange(70)[None, :] // 35) % 3]
    return (np.clip(levels + rng.normal(0, 1500, levels.shape), 0, 65535) // 16 * 16).astype(np.uint16)


def _sorted_rows(rows: np.ndarray) -> np.ndarray:
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("kind", ["uint16", "rgb_few_colours", "float"])
def test_histogram_replicated_is_every_pixels_features(kind, scan16):
    if kind == "uint16":
        image = scan16
    elif kind == "rgb_few_colours":
        palette = np.array([[250, 10, 10], [10, 200, 30], [0, 0, 0], [255, 255, 255]], np.uint8)
        image = palette[np.random.default_rng(1).integers(4, size=(30, 40))]
    else:
        image = (scan16 // 4096).astype(np.float32) / 16
    spec = FeatureSpec.for_image(image, "lab", 0.0)
    histogram = feature_histogram(image, spec)
    replicated = np.repeat(histogram.features, histogram.counts, axis=0)
    np.testing.assert_array_equal(_sorted_rows(replicated), _sorted_rows(spec.image_features(image)))
    assert len(histogram) == len(np.unique(image.reshape(image.shape[0] * image.shape[1], -1), axis=0))


def test_histogram_fit_equals_the_fit_of_every_pixel(scan16):
    spec = FeatureSpec.for_image(scan16, "lab", 0.0)
    histogram = feature_histogram(scan16, spec)
    assert 500 < len(histogram) < scan16.size / 3
    # A poor start and a fixed number of iterations (tol=0), so that EM travels and both stop alike.
    init = dict(weights_init=[0.2, 0.3, 0.5], means_init=[[20.0], [30.0], [40.0]], precisions_init=[[[0.01]]] * 3)
    weighted = GaussianMixture(3, tol=0, max_iter=40, **init)
    every_pixel = GaussianMixture(3, tol=0, max_iter=40, **init)
    with pytest.warns(ConvergenceWarning):
        weighted.fit(histogram.features, sample_weight=histogram.counts)
    with pytest.warns(ConvergenceWarning):
        every_pixel.fit(spec.image_features(scan16))
    assert np.abs(weighted.means_.ravel() - [20.0, 30.0, 40.0]).max() > 10
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(every_pixel, name), rtol=1e-6, err_msg=name)


def test_pipeline_fits_the_histogram_of_a_16_bit_scan(scan16):
    spec = FeatureSpec.for_image(scan16, GREY.color_space, GREY.position_weight)
    model = fit_image_model(scan16, spec, None, GREY)
    histogram = feature_histogram(scan16, spec)
    assert model.metadata_["histogram_bins"] == len(histogram)
    reference = GaussianMixture(
        3, tol=GREY.tol, reg_covar=GREY.reg_covar, max_iter=GREY.max_iter, init_params=GREY.init_params, random_state=GREY.seed
    ).fit(histogram.features, sample_weight=histogram.counts)
    reference.permute_components(np.lexsort(reference.means_.T[::-1]))
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-6)
    np.testing.assert_allclose(model.covariances_, reference.covariances_, rtol=1e-6)


def test_pipeline_counts_only_the_valid_pixels(scan16):
    spec = FeatureSpec.for_image(scan16, GREY.color_space, GREY.position_weight)
    valid = np.zeros(scan16.size, bool)
    valid[::3] = True
    assert feature_histogram(scan16, spec, valid).n_pixels == valid.sum()


@pytest.mark.parametrize(
    "image, position_weight, expected",
    [
        ("scan16", 0.5, None),  # position features: pixels of one value are distinct features
        ("photo", 0.0, None),  # tens of thousands of colours in the sample alone
        ("palette", 0.0, 4),
    ],
)
def test_pipeline_chooses_the_histogram_only_when_it_applies(image, position_weight, expected, scan16):
    rng = np.random.default_rng(3)
    pixels = {
        "scan16": scan16,
        "photo": rng.integers(0, 256, size=(300, 300, 3), dtype=np.uint8),
        "palette": np.array([[250, 10, 10], [10, 200, 30], [0, 0, 0], [255, 255, 255]], np.uint8)[rng.integers(4, size=(50, 60))],
    }[image]
    cfg = SegmentConfig(n_components=3, position_weight=position_weight, seed=2, max_iter=5, **PLAIN)
    spec = FeatureSpec.for_image(pixels, cfg.color_space, cfg.position_weight)
    model = fit_image_model(pixels, spec, None, cfg)
    assert model.metadata_.get("histogram_bins") == expected


def test_working_copy_is_fitted_on_the_full_resolution_histogram(scan16):
    large = np.tile(scan16, (3, 3))  # 180 x 210
    result = segment_image(large, GREY.replace(work_pixels=10_000, smoothing=1.0))
    assert result.working_shape is not None
    assert result.model.metadata_["histogram_bins"] == len(np.unique(large))
