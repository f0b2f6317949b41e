"""Bias field inside EM (segment.bias): a known smooth field is recovered and the classes come out as under flat light."""

import json

import cv2
import numpy as np
import pytest
import tifffile
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

import segment
from segment import tiles
from segment.bias import BiasField, n_terms, polynomial_terms
from segment.cli import app

LEVELS = (0.25, 0.5, 0.75)  # three classes of grey


def checkerboard(height: int, width: int, n_classes: int, cell: int = 12) -> np.ndarray:
    """Class ids 0..n_classes-1 in diagonal stripes of square cells."""
    y, x = np.mgrid[0:height, 0:width]
    return (y // cell + x // cell) % n_classes


def quadratic_field(height: int, width: int, a: float, b: float, c: float) -> np.ndarray:
    """1 + a x^2 + b y + c x y on [-1, 1]^2, normalised to geometric mean 1."""
    y, x = np.mgrid[0:height, 0:width]
    x = (x + 0.5) * 2 / width - 1
    y = (y + 0.5) * 2 / height - 1
    field = 1 + a * x * x + b * y + c * x * y
    return field / np.exp(np.log(field).mean())


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    estimate = estimate / np.exp(np.log(estimate).mean())
    return np.abs(estimate / truth - 1)


def test_polynomial_terms_by_total_degree():
    x, y = np.array([2.0, -1.0]), np.array([3.0, 0.5])
    terms = polynomial_terms(x, y, 2)
    expected = [np.ones(2), x, y, x * x, x * y, y * y]
    assert terms.shape == (n_terms(2), 2) == (6, 2)
    np.testing.assert_allclose(terms, expected)
    grid = polynomial_terms(np.array([[0.0, 1.0, 2.0]]), np.array([[-1.0], [1.0]]), 2)
    assert grid.shape == (6, 2, 3)
    np.testing.assert_allclose(grid[4], [[0, -1, -2], [0, 1, 2]])  # x * y


def test_field_rows_match_the_whole_field():
    field = BiasField(np.array([[0.1, 0.2, -0.3, 0.05, 0.0, 0.1]]), 2, (30, 20))
    whole = field.image()
    assert whole.shape == (30, 20, 1) and whole.dtype == np.float32
    assert BiasField(field.coefficients, 2, (20, 20)).image().shape == (20, 20, 1)
    np.testing.assert_array_equal(field.rows(7, 19), whole[7:19])


def test_grey_field_recovered_and_classes_as_under_flat_light():
    """Three classes under a quadratic field of about +-30 % with 2 % noise."""
    rng = np.random.default_rng(0)
    truth = checkerboard(100, 100, 3, cell=8)
    field = quadratic_field(100, 100, 0.3, -0.2, 0.15)
    assert field.min() < 0.75 and field.max() > 1.45
    image = np.clip(np.asarray(LEVELS)[truth] * field + rng.normal(0, 0.02, truth.shape), 0, 1).astype(np.float32)

    result = segment.segment_image(image, mode="classes", n_components=3)
    error = relative_error(result.bias_field.image()[:, :, 0], field)
    assert error.max() < 0.03 and np.median(error) < 0.01
    assert (result.labels == truth + 1).mean() >= 0.98

    flat = segment.segment_image(image, mode="classes", n_components=3, bias=False)
    assert flat.bias_field is None
    assert (flat.labels == truth + 1).mean() < 0.95


def test_colour_field_recovered_per_band():
    """Ink and paper in colour, each band under its own field."""
    rng = np.random.default_rng(1)
    truth = checkerboard(80, 80, 2, cell=6)
    colours = np.array([[40, 35, 60], [170, 160, 150]], np.float64)  # no band clipped under the field
    fields = np.stack(
        [quadratic_field(80, 80, 0.3, 0.2, 0.0), quadratic_field(80, 80, 0.2, 0.25, 0.1),
         quadratic_field(80, 80, 0.1, 0.3, -0.1)], axis=2,
    )
    image = np.clip(colours[truth] * fields + rng.normal(0, 3, fields.shape), 0, 255).astype(np.uint8)

    result = segment.segment_image(image, mode="classes", n_components=2)
    estimate = result.bias_field.image()
    for band in range(3):
        error = relative_error(estimate[:, :, band].astype(np.float64), fields[:, :, band])
        assert error.max() < 0.04 and np.median(error) < 0.015, band
    assert (result.labels == truth + 1).mean() >= 0.99


def test_bias_on_working_copy_saved_at_full_size(tmp_path):
    """A field fitted on the working copy is written over the full grid, and the JSON names the mode."""
    rng = np.random.default_rng(2)
    truth = checkerboard(110, 100, 2)
    field = quadratic_field(110, 100, 0.3, 0.3, 0.0)
    image = np.clip(np.array([60.0, 160.0])[truth] * field + rng.normal(0, 3, truth.shape), 0, 255).astype(np.uint8)
    path = tmp_path / "page.png"
    cv2.imwrite(str(path), image)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["image", str(path), "-o", str(out), "--mode", "classes", "-k", "2", "--work-pixels", "10000",
              "--save", "labels,bias,json"],
    )
    assert result.exit_code == 0, result.output
    saved = tifffile.imread(out / "page_bias.tif")
    assert saved.shape == (110, 100) and saved.dtype == np.float32
    assert relative_error(saved.astype(np.float64), field).max() < 0.04
    summary = json.loads((out / "page.json").read_text())
    assert summary["mode"] == "classes" and summary["settings"]["bias"] is True
    assert summary["working_shape"] is not None and summary["bias_field"]["degree"] == 3


@pytest.mark.parametrize("steps", [{}, {"smoothing": 0.0, "min_size": 0}], ids=["spatial", "per-pixel"])
def test_bias_band_by_band_as_in_memory(tmp_path, steps):
    """Forced tiling fits the field on the working copy and labels bands of the corrected image, as in memory.

    With spatial steps the working copy is the in-memory pipeline's; without
    them the in-memory pipeline fits the field on the full image, the band
    path on a working copy.
    """
    rng = np.random.default_rng(3)
    truth = checkerboard(240, 200, 3, cell=10)
    field = quadratic_field(240, 200, 0.3, -0.25, 0.15)
    image = np.clip(np.array([60.0, 120.0, 180.0])[truth] * field + rng.normal(0, 4, truth.shape), 0, 255)
    image = image.astype(np.uint8)
    cfg = segment.SegmentConfig(mode="classes", n_components=3, work_pixels=12_000, save=("labels", "bias", "json"), **steps)
    budget = 200 * 2**20 + 2**19  # half a MB above the baseline: bands of 26 rows
    tiled = tiles.segment_tiled(image, cfg, tmp_path, "scan", budget=budget)
    memory = segment.segment_image(image, cfg)
    assert tiled.summary["tiling"]["bands"] >= 4
    assert tiled.summary["working_shape"] == (None if steps else list(memory.working_shape))
    saved = tifffile.imread(tmp_path / "scan_bias.tif")
    assert saved.shape == (240, 200) and saved.dtype == np.float32
    in_memory = memory.bias_field.image()[:, :, 0]
    assert np.abs(saved / in_memory - 1).max() < 0.01
    assert relative_error(saved.astype(np.float64), field).max() < 0.04
    labels = cv2.imread(str(tmp_path / "scan_labels.png"), cv2.IMREAD_UNCHANGED).astype(np.int32)
    assert adjusted_rand_score(memory.labels.ravel(), labels.ravel()) >= 0.95
    assert (labels == truth + 1).mean() >= 0.98
    summary = json.loads((tmp_path / "scan.json").read_text())
    assert summary["bias_field"]["degree"] == 3 and summary["settings"]["bias"] is True


def test_colour_bias_band_by_band_saved_per_band(tmp_path):
    """An RGB scan under a different field per band: the tiled path writes (H, W, 3), as in memory."""
    rng = np.random.default_rng(4)
    truth = checkerboard(200, 150, 2)
    fields = np.stack([quadratic_field(200, 150, *abc) for abc in ((0.3, 0.2, 0.0), (0.2, -0.2, 0.1), (0.1, 0.3, -0.1))], axis=2)
    image = np.clip(np.array([[70, 60, 50], [230, 220, 190]], float)[truth] * fields + rng.normal(0, 3, fields.shape), 0, 255)
    cfg = segment.SegmentConfig(mode="classes", n_components=2, work_pixels=10_000, save=("labels", "bias"))
    tiled = tiles.segment_tiled(image.astype(np.uint8), cfg, tmp_path, "page", budget=200 * 2**20 + 2**19)
    memory = segment.segment_image(image.astype(np.uint8), cfg)
    saved = tifffile.imread(tmp_path / "page_bias.tif")
    assert tiled.summary["tiling"]["bands"] >= 4 and saved.shape == (200, 150, 3) and saved.dtype == np.float32
    assert np.abs(saved / memory.bias_field.image() - 1).max() < 0.01
    labels = cv2.imread(str(tmp_path / "page_labels.png"), cv2.IMREAD_UNCHANGED).astype(np.int32)
    assert (labels == truth + 1).mean() >= 0.99


def test_bias_refused_band_by_band_only_with_transparent_pixels(tmp_path):
    image = np.full((64, 64, 4), 128, np.uint8)
    image[:8, :8, 3] = 0
    with pytest.raises(ValueError, match="bias correction of an image with transparent pixels is not available for an image above"):
        tiles.segment_tiled(image, segment.SegmentConfig(mode="classes"), tmp_path, "scan", budget=2**24)
    assert list(tmp_path.iterdir()) == []
