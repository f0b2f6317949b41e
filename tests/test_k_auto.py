"""n_components="auto": the number of classes of synthetic images with known K, and a photo kept off the range's edge."""

import doctest
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import segment
from segment import model_selection, synthetic
from segment.cli import app
from segment.synthetic import ClassImageSettings, class_image

SHAPE = (120, 160)


@pytest.mark.parametrize("module", [model_selection, synthetic])
def test_examples_run(module):
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


@pytest.mark.parametrize(
    ("n_classes", "seed", "settings"),
    [
        (2, 1, ClassImageSettings(layout="fields", noise=5.0, shading=0.06, small_class=False)),
        (3, 2, ClassImageSettings(layout="voronoi", noise=8.0, colour=False)),
        (4, 3, ClassImageSettings(layout="ellipses", noise=3.0, texture=4.0)),
        (6, 4, ClassImageSettings(layout="voronoi", noise=4.0, shading=0.04)),
    ],
)
def test_auto_finds_the_number_of_classes(n_classes, seed, settings):
    image, truth = class_image(n_classes, SHAPE, np.random.default_rng(seed), settings)
    assert len(np.unique(truth)) == n_classes
    result = segment.segment_image(image, n_components="auto")
    assert result.model.n_components == n_classes
    auto = result.summary()["auto_components"]
    assert auto["criterion"] == model_selection.CRITERION
    assert sorted(map(int, auto["scores"])) == list(range(2, 11))


@pytest.mark.parametrize(("n_classes", "seed", "layout"), [(5, 19, "fields"), (6, 15, "ellipses")])
def test_auto_counts_colour_classes_under_uneven_light(n_classes, seed, layout):
    # +-20 % light: counted on the colours as they are, these give 9 and 7 classes.
    settings = ClassImageSettings(layout=layout, noise=4.0, shading=0.2)
    image, _ = class_image(n_classes, SHAPE, np.random.default_rng(seed), settings)
    assert segment.segment_image(image, n_components="auto").model.n_components == n_classes


def test_auto_in_classes_mode():
    image, truth = class_image(3, SHAPE, np.random.default_rng(5), ClassImageSettings(noise=4.0, colour=False))
    result = segment.segment_image(image, mode="classes", n_components="auto")
    assert result.model.n_components == 3
    assert sorted(np.unique(result.labels).tolist()) == [1, 2, 3]


def test_photo_is_not_given_the_top_of_the_range(samples):
    result = segment.segment_image(samples / "coffee.jpg", n_components="auto", max_side=320)
    low, high = result.config.auto_range
    assert low < result.model.n_components < high


def test_merging_counts_separated_groups():
    # Two pairs of heavily overlapping Gaussians far apart, and a light one on its own.
    means = np.array([[0.0, 0.0], [1.0, 0.0], [30.0, 0.0], [31.0, 0.5], [0.0, 40.0]])
    weights = np.array([0.3, 0.3, 0.2, 0.19, 0.01])
    steps = model_selection.merge_components(weights, means, np.eye(2)[None].repeat(5, 0))
    assert [round(float(w), 2) for w in sorted(steps[3][1])] == [0.01, 0.39, 0.6]
    assert steps[5][0] == pytest.approx(1 / 8) and steps[3][0] > 50
    assert model_selection.count_classes(steps, 1.5, (1, 10)) == 3
    assert model_selection.count_classes(steps, 1.5, (4, 10)) == 4  # never below the range
    assert model_selection.count_classes(steps, 1.5, (1, 2)) == 2  # nor above


def test_local_colours_drop_borders_and_noise():
    rng = np.random.default_rng(0)
    image = np.where(np.arange(60) < 30, 20.0, 60.0)[None, :, None].repeat(40, 0) + rng.normal(0, 3, (40, 60, 1))
    local = model_selection.local_colours(image, None, np.arange(40 * 60))
    assert local.std(where=local < 40) < 1.0  # a 5 x 5 mean: noise / 5
    assert not ((local > 30) & (local < 50)).any()  # no window across the border kept
    valid = np.ones(40 * 60, bool)
    valid[:600] = False  # the top 10 rows take no part
    assert len(model_selection.local_colours(image, valid, np.arange(600))) == 0


def test_bhattacharyya_distance_of_unequal_covariances():
    # Closed form in one dimension: (m1 - m2)^2 / (4 (s1 + s2)) + ln((s1 + s2) / (2 sqrt(s1 s2))) / 2, s = variances.
    d = model_selection.bhattacharyya_distance(np.array([0.0]), np.array([[1.0]]), np.array([3.0]), np.array([[4.0]]))
    assert d == pytest.approx(9 / 20 + np.log(5 / 4) / 2)


def test_cli_k_auto_writes_the_scores(tmp_path):
    image, _ = class_image(3, SHAPE, np.random.default_rng(7), ClassImageSettings(noise=3.0))
    path = tmp_path / "three.png"
    cv2.imwrite(str(path), image[..., ::-1])  # RGB -> OpenCV's BGR
    result = CliRunner().invoke(app, ["image", str(path), "-o", str(tmp_path / "out"), "-k", "auto", "--save", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "three.json").read_text())
    assert summary["n_components"] == 3
    assert set(summary["auto_components"]["scores"]) == {str(k) for k in range(2, 11)}
