import math

import numpy as np
import pytest

from segment import io
from segment.features import pixel_features
from segment.merging import MERGE_TERMS, _Regions, coarse_edge_strength, edge_strength, merge_similar_regions


def halves(height: int = 80, width: int = 120) -> np.ndarray:
    return np.where(np.arange(width) < width // 2, 1, 2).astype(np.int32)[None, :].repeat(height, axis=0)


def lab_like(grey: np.ndarray) -> np.ndarray:
    """A colour image whose first channel is ``grey`` and whose other two are 0."""
    grey = grey.astype(np.float32)
    return np.stack([grey, np.zeros_like(grey), np.zeros_like(grey)], axis=2)


def test_edge_strength_of_a_sharp_step_is_its_height():
    colours = np.zeros((5, 8, 3), np.float32)
    colours[:, 4:] = (30.0, 40.0, 0.0)  # a step of 50 between columns 3 and 4
    strength = edge_strength(colours)
    assert np.allclose(strength[:, 3:5], 50.0)
    assert np.allclose(strength[:, :2], 0.0) and np.allclose(strength[:, 6:], 0.0)
    coarse = coarse_edge_strength(colours, sigma=2.0)
    assert 0 < coarse[2, 4] < 50.0  # the blur spreads the step over several pixels


def test_merge_terms_of_two_flat_halves_by_hand():
    labels = halves()
    colours = lab_like(np.where(labels == 1, 40.0, 80.0))
    regions = _Regions(labels, colours)
    us, vs, border = regions.adjacent_pairs()
    terms = dict(zip(MERGE_TERMS, regions.terms(us, vs, border)[0]))
    assert terms["colour_distance"] == pytest.approx(math.log(40 + 1e-3))
    assert terms["edge"] == pytest.approx(math.log(40 + 1e-3), rel=1e-6)  # both border pixels see the full step
    assert terms["coarse_edge"] < terms["edge"]
    assert terms["histogram_distance"] == pytest.approx(math.log(1 + 1e-3))  # disjoint histograms: chi-squared 1
    assert terms["small_share"] == terms["large_share"] == pytest.approx(math.log(0.5))
    assert terms["contact"] == pytest.approx(math.log(80 / math.sqrt(80 * 60)))
    # Each half's texture: its column next to the step has strength 40, the rest 0.
    assert terms["small_texture"] == terms["large_texture"] == pytest.approx(math.log(40 * 80 / 4800 + 0.1), rel=1e-6)
    assert terms["texture_ratio"] == 0


def test_a_shading_gradient_split_in_two_joins_and_a_sharp_step_does_not():
    rng = np.random.default_rng(0)
    labels = halves()
    ramp = lab_like(np.repeat(np.linspace(30, 70, 120)[None, :], 80, axis=0))
    assert set(np.unique(merge_similar_regions(labels, ramp, 1.0))) == {1}
    step = lab_like(np.where(labels == 1, 40.0, 80.0) + rng.normal(0, 3, labels.shape))
    for max_cost in (0.3, 1.0, 10.0):
        assert np.array_equal(merge_similar_regions(labels, step, max_cost), labels)
    # An unbounded cost merges everything.
    assert set(np.unique(merge_similar_regions(labels, step, np.inf))) == {1}
    assert np.array_equal(merge_similar_regions(labels, ramp, 0), labels)


def test_merged_regions_keep_the_larger_ones_label_and_background_stays():
    labels = halves(width=140)
    labels[:, 130:] = 3  # 1: 70 columns, 2: 60, 3: 10
    labels[0, -1] = 0  # so 2 and 3 together are one pixel smaller than 1
    colours = lab_like(np.full(labels.shape, 50.0))
    merged = merge_similar_regions(labels, colours, np.inf)
    assert merged[0, -1] == 0
    assert set(np.unique(merged)) == {0, 1}
    assert not np.shares_memory(merged, labels) and labels[5, 135] == 3  # the input is untouched


def test_weights_decide_and_on_merge_sees_every_merge():
    labels = np.arange(1, 7, dtype=np.int32).repeat(10)[None, :].repeat(12, axis=0)  # six stripes
    colours = lab_like(labels * 10.0)
    never = {**{name: 0.0 for name in MERGE_TERMS}, "intercept": -1.0}
    always = {**never, "intercept": 1.0}
    assert np.array_equal(merge_similar_regions(labels, colours, 1.0, weights=never), labels)
    seen = []
    merged = merge_similar_regions(labels, colours, 1.0, weights=always, on_merge=lambda s, t, terms: seen.append((s, t, terms)))
    assert len(np.unique(merged)) == 1 and len(seen) == 5
    assert all(terms.shape == (len(MERGE_TERMS),) for _, _, terms in seen)


def test_higher_cost_threshold_never_gives_more_regions(samples):
    image = io.load_image(samples / "coffee.jpg")[::4, ::4]
    colours = pixel_features(image, "lab", 0).reshape(*image.shape[:2], 3)
    labels = (np.digitize(colours[:, :, 0], [30, 45, 60, 75]) * 3 + np.digitize(colours[:, :, 1], [0, 15])).astype(np.int32) + 1
    counts = [len(np.unique(merge_similar_regions(labels, colours, cost))) for cost in (0, 0.5, 1, 2, 8)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]


@pytest.mark.parametrize("value", [0, 4])
def test_an_image_of_one_region_or_all_background_is_left_as_is(value):
    labels = np.full((9, 7), value, np.int32)
    colours = lab_like(np.random.default_rng(1).normal(50, 5, labels.shape))
    assert np.array_equal(merge_similar_regions(labels, colours, np.inf), labels)
