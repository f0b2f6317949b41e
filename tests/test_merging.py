import math

import numpy as np
import pytest

from segment import io
from segment.features import pixel_features
from segment import merging
from segment._region_kernels import pair_terms
from segment.merging import MERGE_TERMS, MERGE_WEIGHTS, coarse_edge_strength, edge_strength, merge_similar_regions


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
    graph = merging.merge_graph(labels, colours)
    assert graph.ends.tolist() == [[0, 1]]
    out = np.empty(len(MERGE_TERMS))
    pair_terms(graph.values, graph.edge_values[0], 0, 1, 3, float(labels.size), 1e-3, 0.1, out)
    terms = dict(zip(MERGE_TERMS, out))
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


def test_weights_decide_and_the_record_holds_every_merge():
    labels = np.arange(1, 7, dtype=np.int32).repeat(10)[None, :].repeat(12, axis=0)  # six stripes
    colours = lab_like(labels * 10.0)
    never = {**{name: 0.0 for name in MERGE_TERMS}, "intercept": -1.0}
    always = {**never, "intercept": 1.0}
    assert np.array_equal(merge_similar_regions(labels, colours, 1.0, weights=never), labels)
    merged, record = merge_similar_regions(labels, colours, 1.0, weights=always, record=True)
    assert len(np.unique(merged)) == 1 and len(record.sources) == 5
    assert record.terms.shape == (5, len(MERGE_TERMS)) and np.array_equal(record.regions, labels - 1)
    assert sorted(set(record.sources) | {record.targets[-1]}) == list(range(6))


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


def greedy_reference(labels: np.ndarray, colours: np.ndarray, max_cost: float) -> np.ndarray:
    """Readable greedy merging: every adjacent pair scored afresh before each merge, the best merged."""
    graph = merging.merge_graph(labels, colours)
    coefficients = np.array([MERGE_WEIGHTS[name] for name in MERGE_TERMS])
    parent = list(range(graph.n_regions))
    values = graph.values.copy()
    borders = {}
    for (u, v), row in zip(graph.ends.tolist(), graph.edge_values):
        borders[(u, v)] = row.copy()

    def root(r):
        while parent[r] != r:
            r = parent[r]
        return r

    terms = np.empty(len(MERGE_TERMS))
    while True:
        best = None
        for (u, v), row in borders.items():
            pair_terms(values, row, u, v, colours.shape[2], float(labels.size), 1e-3, 0.1, terms)
            score = coefficients @ terms + MERGE_WEIGHTS["intercept"]
            if score > -math.log(max_cost) and (best is None or score > best[0]):
                best = (score, u, v)
        if best is None:
            return graph.value_of[[root(r) for r in range(graph.n_regions)]][graph.regions]
        _, u, v = best
        source, target = (u, v) if (values[u, 0], v) < (values[v, 0], u) else (v, u)
        parent[source] = target
        values[target] += values[source]
        moved = {}
        for (a, b), row in list(borders.items()):
            if source in (a, b):
                del borders[(a, b)]
                other = b if a == source else a
                if other != target:
                    key = (min(other, target), max(other, target))
                    moved[key] = moved.get(key, 0) + row
        for key, row in moved.items():
            borders[key] = borders.get(key, 0) + row


def mosaic(seed: int, shape=(48, 60), n_seeds=40) -> tuple[np.ndarray, np.ndarray]:
    """A Voronoi mosaic of random regions, each with its own noisy colour."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_seeds, 2)) * shape
    ys, xs = np.indices(shape)
    nearest = np.argmin((ys[..., None] - centres[:, 0]) ** 2 + (xs[..., None] - centres[:, 1]) ** 2, axis=2)
    labels = (nearest % 7 + 1).astype(np.int32)
    tones = rng.normal(50, 12, (n_seeds, 3))
    colours = (tones[nearest] + rng.normal(0, 3, (*shape, 3))).astype(np.float32)
    return labels, colours


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merging_with_every_pair_rescored_equals_the_readable_greedy(monkeypatch, seed):
    labels, colours = mosaic(seed)
    monkeypatch.setattr(merging, "RESCORE_GROWTH", 1.0)
    expected = greedy_reference(labels, colours, 2.0)
    assert len(np.unique(merging.region_ids(expected))) < len(np.unique(merging.region_ids(labels)))
    assert np.array_equal(merge_similar_regions(labels, colours, 2.0), expected)


def test_bounded_rescoring_stays_close_to_the_exact_greedy():
    from segment.metrics import rand_index

    for seed in range(3):
        labels, colours = mosaic(seed, n_seeds=80)
        exact = greedy_reference(labels, colours, 2.0)
        assert rand_index(merge_similar_regions(labels, colours, 2.0), exact) > 0.97


def test_a_checkerboard_of_single_pixels_merges_in_bounded_time():
    import time

    ys, xs = np.indices((300, 300))
    labels = ((ys + xs) % 2 + 1).astype(np.int32)  # 90,000 one-pixel regions
    colours = lab_like(np.where(labels == 1, 20.0, 80.0))
    start = time.perf_counter()
    merged = merge_similar_regions(labels, colours, 1.0)
    assert time.perf_counter() - start < 30  # quadratic work took minutes; this takes well under a second
    assert len(np.unique(merging.region_ids(merged))) <= merging.MAX_REGIONS
