"""Segmenting large images on a working copy: full-resolution boundaries, same regions."""

import json

import numpy as np
import pytest

from segment import segment_image, upscale
from segment.metrics import rand_index

HEIGHT, WIDTH = 900, 1200


@pytest.fixture(scope="module")
def curved_scene() -> tuple[np.ndarray, np.ndarray]:
    """A 1200x900 noisy scene of four colour regions with curved boundaries, and its true labels."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    truth = np.ones((HEIGHT, WIDTH), np.int32)
    truth[(yy - 350) ** 2 + (xx - 400) ** 2 < 225**2] = 2
    truth[(yy - 550) ** 2 / 250**2 + (xx - 850) ** 2 / 175**2 < 1] = 3
    truth[yy > 725 + 40 * np.sin(xx / 75)] = 4
    colours = np.array([[0, 0, 0], [40, 90, 170], [200, 60, 50], [230, 210, 90], [60, 150, 70]], np.float64)
    noise = np.random.default_rng(0).normal(0, 12, (HEIGHT, WIDTH, 3))
    return np.clip(colours[truth] + noise, 0, 255).astype(np.uint8), truth


def mislabelled_fraction(labels: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of pixels outside the true region that their label mostly covers."""
    table = np.zeros((labels.max() + 1, truth.max() + 1), np.int64)
    np.add.at(table, (labels.ravel(), truth.ravel()), 1)
    return 1 - table.max(axis=1).sum() / truth.size


def test_working_shape_keeps_aspect_and_budget():
    for height, width, budget in [(3000, 4000, 1_000_000), (481, 321, 20_000), (10, 100_000, 10_000)]:
        h, w = upscale.working_shape(height, width, budget)
        assert h * w <= budget
        assert abs(h / w - height / width) < 0.02 * height / width + 1 / min(h, w)


def test_nearest_cells_cover_every_working_pixel():
    cells = upscale.nearest_cells(1000, 333)
    assert cells.min() == 0 and cells.max() == 332 and (np.diff(cells) >= 0).all()
    assert upscale.cell_sizes(1000, 333).sum() == 1000 and upscale.cell_sizes(1000, 333).min() >= 3


def test_boundaries_are_placed_at_full_resolution(curved_scene):
    image, truth = curved_scene
    result = segment_image(image, work_pixels=40_000)
    assert result.working_shape is not None and result.working_shape[0] * result.working_shape[1] <= 40_000
    assert result.labels.shape == truth.shape and result.n_labels == 4
    work_h, work_w = result.working_shape
    cells = np.ix_(upscale.nearest_cells(HEIGHT, work_h), upscale.nearest_cells(WIDTH, work_w))
    nearest = _working_labels(image, result)[cells]
    refined_error, nearest_error = mislabelled_fraction(result.labels, truth), mislabelled_fraction(nearest, truth)
    # One working pixel stands for ~27 pixels: enlarging alone leaves staircase boundaries.
    assert nearest_error > 0.002
    assert refined_error < min(nearest_error / 10, 0.0005)
    assert rand_index(result.labels, truth) > 0.999


def _working_labels(image: np.ndarray, result) -> np.ndarray:
    """The final labels of the working copy, as the pipeline computed them before enlarging."""
    from segment import pipeline
    from segment.features import FeatureSpec

    spec = FeatureSpec.for_image(image, result.config.color_space, result.config.position_weight)
    return pipeline.segment_working_copy(image, spec, result.working_shape, result.config, None, lambda stage: None).regions


def test_small_images_and_zero_stay_at_full_resolution(curved_scene):
    image, _ = curved_scene
    small = image[:200, :300]
    assert segment_image(small, work_pixels=1_000_000).working_shape is None
    off = segment_image(small, work_pixels=0)
    assert np.array_equal(off.labels, segment_image(small).labels)


def test_transparent_and_plain_mixture_images_stay_at_full_resolution(curved_scene):
    image, _ = curved_scene
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    assert segment_image(rgba, work_pixels=40_000).working_shape is None
    plain = dict(smoothing=0.0, merge_cost=0.0, min_fraction=0.0, relabel=False)
    assert segment_image(image, work_pixels=40_000, **plain).working_shape is None


def test_summary_counts_every_original_pixel(curved_scene, tmp_path):
    image, _ = curved_scene
    result = segment_image(image, work_pixels=40_000, save=("labels", "confidence", "json"))
    paths = result.save(tmp_path, stem="scene")
    summary = json.loads(paths["json"].read_text())
    assert summary["working_shape"] == list(result.working_shape)
    assert sum(c["pixel_count"] for c in summary["components"]) == HEIGHT * WIDTH
    confidence = np.load(paths["confidence"])
    assert confidence.shape == (HEIGHT, WIDTH) and 0 < confidence.min() and confidence.max() <= 1


def test_pixel_sizes_are_scaled_to_the_working_copy(curved_scene):
    image, truth = curved_scene
    # 30 000 original pixels: the ellipse (~137 000) stays, a blob of ~20 000 goes.
    blob = image.copy()
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    blob[(yy - 150) ** 2 + (xx - 1000) ** 2 < 80**2] = (250, 250, 250)
    result = segment_image(blob, work_pixels=40_000, min_size=30_000, min_fraction=0.0)
    assert result.n_labels == 4
    assert mislabelled_fraction(result.labels, truth) < 0.001


def test_greyscale_16_bit_and_float_images_give_the_same_regions(curved_scene):
    _, truth = curved_scene
    levels = np.array([0, 30, 90, 150, 220], np.float64)
    noise = np.random.default_rng(1).normal(0, 8, truth.shape)
    grey = np.clip(levels[truth] + noise, 0, 255).astype(np.uint8)
    results = [
        segment_image(variant, work_pixels=40_000)
        for variant in (grey, grey.astype(np.uint16) * 257, grey.astype(np.float32) * 3.5 - 7.0)
    ]
    assert all(r.working_shape is not None for r in results)
    for result in results:
        assert mislabelled_fraction(result.labels, truth) < 0.002
        assert np.mean(result.labels == results[0].labels) > 0.999


def test_working_copy_is_the_area_average_whatever_the_bands(curved_scene):
    import cv2

    from segment.features import FeatureSpec

    image, _ = curved_scene
    spec = FeatureSpec.for_image(image, "lab", 0.5)
    whole = upscale.working_copy(image, spec, (150, 200))  # 6 x 6 blocks
    means = image.reshape(150, 6, 200, 6, 3).astype(np.float64).mean(axis=(1, 3))
    levels = whole.astype(np.float64) * 255  # the block means, rounded to the image's own levels
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
    assert np.abs(levels - means).max() <= 0.5 + 1e-4
    np.testing.assert_array_equal(upscale.working_copy(image, spec, (150, 200), rows_per_band=37), whole)
    odd = upscale.working_copy(image, spec, (333, 451), rows_per_band=100)  # fractional cells
    reference = cv2.resize(image, (451, 333), interpolation=cv2.INTER_AREA)
    assert np.mean(np.round(odd * 255) == reference) > 0.999  # OpenCV's integer resize, to its rounding
    floats = image.astype(np.float32) * 3.5
    exact = upscale.working_copy(floats, FeatureSpec.for_image(floats), (333, 451))
    unit = (floats - floats.min()) / (floats.max() - floats.min())
    np.testing.assert_allclose(exact, cv2.resize(unit, (451, 333), interpolation=cv2.INTER_AREA), atol=1e-5)


def test_refined_bands_equal_the_whole_image_refined_at_once(curved_scene):
    from segment import pipeline
    from segment.features import FeatureSpec

    image, _ = curved_scene
    spec = FeatureSpec.for_image(image, "lab", 0.5)
    cfg = segment_image(image[:8, :8]).config
    part = pipeline.segment_working_copy(image, spec, (173, 231), cfg, None, lambda stage: None)
    whole = upscale.refine_labels(part.regions, part.colours, image, spec, 2.0, rows_per_band=HEIGHT)
    for rows in (41, 2 * upscale.MARGIN + 1):
        np.testing.assert_array_equal(upscale.refine_labels(part.regions, part.colours, image, spec, 2.0, rows_per_band=rows), whole)
    assert (whole != part.regions[np.ix_(upscale.nearest_cells(HEIGHT, 173), upscale.nearest_cells(WIDTH, 231))]).any()


def test_enlarged_confidence_matches_bilinear_resizing():
    import cv2

    small = np.random.default_rng(0).random((30, 40)).astype(np.float32)
    rows = np.concatenate([upscale.enlarge_rows(small, (95, 130), start, min(95, start + 20)) for start in range(0, 95, 20)])
    np.testing.assert_allclose(rows, cv2.resize(small, (130, 95), interpolation=cv2.INTER_LINEAR), atol=1e-4)
