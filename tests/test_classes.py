"""Classes mode (mode="classes"): per-pixel classes ordered by luminance, thin strokes kept, no regions."""

import json

import cv2
import numpy as np
from typer.testing import CliRunner

import segment
from segment.cli import app

runner = CliRunner()


def strokes_page(rng: np.random.Generator, shape=(120, 120)) -> tuple[np.ndarray, np.ndarray]:
    """Light paper with one-pixel-wide dark strokes (lines at several angles), noise; and the stroke mask."""
    ink = np.zeros(shape, np.uint8)
    for k in range(8):
        y = 10 + 13 * k
        cv2.line(ink, (5, y), (shape[1] - 5, y + int(rng.integers(-8, 9))), 1, 1, cv2.LINE_8)
    cv2.line(ink, (60, 5), (60, shape[0] - 5), 1, 1, cv2.LINE_8)
    page = np.where(ink > 0, 60.0, 200.0) + rng.normal(0, 8, shape)
    return np.clip(page, 0, 255).astype(np.uint8), ink > 0


def test_thin_strokes_survive_in_classes_mode():
    page, ink = strokes_page(np.random.default_rng(0))
    classes = segment.segment_image(page, mode="classes", n_components=2)
    found = classes.labels == 1
    assert (found & ink).sum() / ink.sum() > 0.97 and (found & ~ink).sum() / ink.sum() < 0.03
    regions = segment.segment_image(page, n_components=2)  # the photo defaults merge strokes away
    assert (regions.classes == 1)[ink].mean() < 0.5


def test_class_ids_ordered_by_luminance_in_every_image():
    """Three grey levels in different proportions: label 1 is always the darkest, 3 the lightest."""
    rng = np.random.default_rng(1)
    for shares in ((0.6, 0.3, 0.1), (0.1, 0.2, 0.7)):
        truth = rng.choice(3, size=(60, 60), p=shares)
        image = np.clip(np.array([40.0, 120.0, 210.0])[truth] + rng.normal(0, 5, truth.shape), 0, 255).astype(np.uint8)
        result = segment.segment_image(image, mode="classes", n_components=3, smoothing=0.0)
        assert (result.labels == truth + 1).mean() > 0.99
        assert result.labels.max() == 3  # class ids, no connected-region relabelling


def test_cli_mode_in_json_and_conflicts(tmp_path):
    page, _ = strokes_page(np.random.default_rng(2), (60, 60))
    path = tmp_path / "page.png"
    cv2.imwrite(str(path), page)
    result = runner.invoke(app, ["image", str(path), "-o", str(tmp_path / "out"), "--mode", "classes", "-k", "2",
                                 "--save", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "page.json").read_text())
    assert summary["mode"] == "classes" and summary["settings"]["relabel"] is False
    assert summary["bias_field"]["degree"] == 3
    result = runner.invoke(app, ["image", str(path), "-o", str(tmp_path / "bad"), "--mode", "classes", "--merge-cost", "1"])
    assert result.exit_code == 2 and "mode 'classes' labels pixels by class" in result.output
    assert not (tmp_path / "bad").exists()
    result = runner.invoke(app, ["image", str(path), "-o", str(tmp_path / "bad"), "--save", "labels,bias"])
    assert result.exit_code == 2 and "needs bias correction on" in result.output


def test_transparent_pixels_take_no_part_in_the_bias_fit():
    """Pixels outside the mask keep label 0, and a field fitted on the others still corrects them."""
    rng = np.random.default_rng(3)
    truth = (np.arange(60)[None, :] // 6 + np.arange(60)[:, None] // 6) % 2
    light = np.linspace(0.75, 1.25, 60)[None, :]
    image = np.clip(np.array([50.0, 170.0])[truth] * light + rng.normal(0, 3, truth.shape), 0, 255).astype(np.uint8)
    mask = np.ones(truth.shape, bool)
    mask[:20, :20] = False
    result = segment.segment_image(image, mode="classes", n_components=2, mask=mask)
    assert (result.labels[~mask] == 0).all()
    assert (result.labels[mask] == truth[mask] + 1).mean() > 0.99
    field = result.bias_field.image()[30, :, 0]
    assert 1.5 < field[-1] / field[0] < 1.8  # the light's ratio, 1.25 / 0.75 = 1.67, at the pixel centres
