"""The merge hierarchy: ucm2 maps, cuts at any scale, --save hierarchy and `segment cut`."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import segment
from segment.cli import app
from segment.hierarchy import Hierarchy, cost_to_scale, cut_ucm2, ucm2_from_png_values, ucm2_to_png_values
from segment.metrics import rand_index

runner = CliRunner()


def four_stripes() -> Hierarchy:
    """Leaves 0..3 as vertical stripes of a 4 x 8 image; 1 joins 0, then 3 joins 2, then 2 joins 0."""
    regions = np.repeat(np.arange(4, dtype=np.int32), 2)[None, :].repeat(4, axis=0)
    # The third cost is below the second: levels are made non-decreasing (an ultrametric).
    return Hierarchy.from_merges(regions, [1, 3, 2], [0, 2, 0], [0.25, 3.0, 1.0])


def test_levels_are_monotone_scales_of_the_costs():
    tree = four_stripes()
    assert tree.levels.tolist() == pytest.approx([0.2, 0.75, 0.75])
    assert cost_to_scale(np.array([0.0, 1.0, np.inf])).tolist() == [0.0, 0.5, 1.0]


def test_ucm2_holds_the_level_at_which_the_two_sides_join():
    ucm = four_stripes().ucm2()
    assert ucm.shape == (9, 17)
    # Boundaries between stripes sit at doubled columns 4, 8, 12 (between pixel columns 1|2, 3|4, 5|6).
    assert ucm[1, [4, 8, 12]].tolist() == pytest.approx([0.2, 0.75, 0.75])
    assert ucm[1::2, 1::2].max() == 0  # pixels carry no strength
    assert np.array_equal(ucm[0], ucm[1]) and np.array_equal(ucm[:, 0], ucm[:, 1])  # the frame repeats


@pytest.mark.parametrize(("scale", "expected"), [(0.1, 4), (0.2, 3), (0.5, 3), (0.75, 1), (1.0, 1)])
def test_a_cut_keeps_the_boundaries_above_the_scale(scale, expected):
    tree = four_stripes()
    labels = tree.cut(scale)
    assert labels.max() == expected and labels.min() == 1
    assert np.array_equal(labels, cut_ucm2(tree.ucm2(), scale))


def test_the_16_bit_form_keeps_every_boundary_above_zero():
    ucm = np.array([[0.0, 1e-7, 0.5, 1.0]])
    values = ucm2_to_png_values(ucm)
    assert values.dtype == np.uint16 and values.tolist() == [[0, 1, 32768, 65535]]
    assert ucm2_from_png_values(values)[0, 2] == pytest.approx(0.5, abs=1e-4)


def test_cut_ucm2_rejects_a_map_of_even_side():
    with pytest.raises(ValueError, match="odd sides"):
        cut_ucm2(np.zeros((4, 5)), 0.5)


def test_pipeline_hierarchy_spans_one_region_to_the_leaves(samples):
    image = cv2.cvtColor(cv2.imread(str(samples / "coffee.jpg")), cv2.COLOR_BGR2RGB)[::4, ::4]
    result = segment.segment_image(image, save=("labels", "hierarchy"))
    tree = result.hierarchy
    assert tree.regions.shape == image.shape[:2]
    assert np.all(np.diff(tree.levels) >= 0) and len(tree.levels) == tree.regions.max()  # merged down to one
    counts = [tree.cut(s).max() for s in (0.0, 0.3, 0.5, 0.7, 1.0)]
    assert counts == sorted(counts, reverse=True) and counts[-1] == 1 and counts[0] == tree.regions.max() + 1
    # The ucm2 cut is the tree cut, and the default merge cost (1) lies at scale 0.5: the default
    # segmentation (which then also merges regions under min_fraction) is coarser or equal.
    ucm = tree.ucm2()
    assert rand_index(tree.cut(0.5), cut_ucm2(ucm, 0.5)) == 1.0
    assert tree.cut(0.5).max() >= result.labels.max()
    assert segment.segment_image(image).hierarchy is None


def test_save_hierarchy_and_cut_it_from_the_command_line(samples, tmp_path):
    out = tmp_path / "out"
    done = runner.invoke(app, ["image", str(samples / "coffee.jpg"), "-o", str(out), "--save", "labels,hierarchy"])
    assert done.exit_code == 0, done.output
    ucm_png = out / "coffee_ucm2.png"
    ucm = cv2.imread(str(ucm_png), cv2.IMREAD_UNCHANGED)
    labels = cv2.imread(str(out / "coffee_labels.png"), cv2.IMREAD_UNCHANGED)
    assert ucm.dtype == np.uint16 and ucm.shape == (2 * labels.shape[0] + 1, 2 * labels.shape[1] + 1)
    tree = json.loads((out / "coffee_merge_tree.json").read_text())
    assert len(tree["merges"]) == tree["n_leaves"] - 1
    levels = [level for _, _, level in tree["merges"]]
    assert levels == sorted(levels)

    previous = None
    for scale in (0.9, 0.5, 0.2):
        cut = tmp_path / f"cut_{scale}.png"
        done = runner.invoke(app, ["cut", str(ucm_png), "--scale", str(scale), "-o", str(cut)])
        assert done.exit_code == 0, done.output
        regions = cv2.imread(str(cut), cv2.IMREAD_UNCHANGED)
        assert f"{regions.max()} regions" in done.output and regions.shape == labels.shape
        assert previous is None or regions.max() >= previous  # finer as the scale goes down
        previous = regions.max()


def test_cut_reports_bad_input_in_one_line(tmp_path):
    not_ucm = tmp_path / "x_ucm2.npy"
    np.save(not_ucm, np.zeros((4, 4)))
    done = runner.invoke(app, ["cut", str(not_ucm), "--scale", "0.5", "-o", str(tmp_path / "y.png")])
    assert done.exit_code == 1 and "odd sides" in done.output and not (tmp_path / "y.png").exists()
    done = runner.invoke(app, ["cut", str(tmp_path / "missing.png"), "--scale", "0.5", "-o", str(tmp_path / "y.png")])
    assert done.exit_code == 1 and "missing.png" in done.output
    done = runner.invoke(app, ["cut", str(not_ucm), "--scale", "2", "-o", str(tmp_path / "y.png")])
    assert done.exit_code == 2 and "--scale" in done.output
