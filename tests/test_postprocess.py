import numpy as np

from segment.postprocess import MERGE_REGION_EXPONENTS, edge_strength, merge_similar_regions, merge_small_regions, morphology, relabel_regions


def test_small_speck_merges_into_surrounding_region():
    labels = np.ones((20, 20), np.int32)
    labels[:, 10:] = 2
    labels[4:6, 3:5] = 3  # a 4-pixel speck inside region 1
    out = merge_small_regions(labels, min_size=10)
    assert set(np.unique(out)) == {1, 2}
    assert (out[4:6, 3:5] == 1).all()
    assert np.array_equal(out[:, 10:], labels[:, 10:])


def test_speck_goes_to_the_neighbour_with_the_longest_border():
    labels = np.ones((10, 10), np.int32)
    labels[:, 5:] = 2
    labels[2:5, 4:7] = 3  # 3x3: one column touches region 1, two touch region 2
    out = merge_small_regions(labels, min_size=10)
    assert (out[2:5, 4:7] == 2).all()


def test_regions_at_least_min_size_stay_and_no_zero_appears():
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 4, size=(40, 40)).astype(np.int32)
    out = merge_small_regions(labels, min_size=25)
    assert out.min() >= 1
    regions = relabel_regions(out)
    sizes = np.bincount(regions.ravel())[1:]
    assert sizes.min() >= 25


def test_background_is_never_merged_nor_merged_into():
    labels = np.full((10, 10), 2, np.int32)
    labels[:, :3] = 0
    labels[5, 3] = 1  # speck touching background and region 2
    out = merge_small_regions(labels, min_size=5)
    assert (out[:, :3] == 0).all()
    assert out[5, 3] == 2


def test_hole_filling_only_fills_enclosed_small_regions():
    labels = np.ones((12, 12), np.int32)
    labels[5:7, 5:7] = 2  # enclosed hole of 4 pixels
    labels[0:2, 0:2] = 3  # same size but touches the border
    out = merge_small_regions(labels, hole_size=5)
    assert (out[5:7, 5:7] == 1).all()
    assert (out[0:2, 0:2] == 3).all()


def test_opening_removes_thin_lines_and_refills_from_neighbours():
    labels = np.ones((15, 15), np.int32)
    labels[:, 8:] = 2
    labels[7, :8] = 2  # a one-pixel line of label 2 reaching into region 1
    out = morphology(labels, opening_radius=1)
    assert (out[7, :6] == 1).all()
    assert out.min() >= 1


def test_closing_fills_narrow_gaps():
    labels = np.ones((15, 15), np.int32)
    labels[4:11, 4:11] = 2
    labels[7, 4:11] = 1  # a one-pixel slit through the square
    out = morphology(labels, closing_radius=1)
    assert (out[7, 5:10] == 2).all()


def test_relabel_counts_connected_regions():
    labels = np.ones((6, 6), np.int32)
    labels[:, 2] = 2
    labels[:, 4] = 2
    out = relabel_regions(labels)
    assert out.max() == 5  # three strips of 1, two of 2


def test_relabel_matches_scikit_image_numbering():
    from skimage.measure import label

    rng = np.random.default_rng(3)
    for shape, n_labels in [((40, 57), 3), ((1, 30), 2), ((25, 1), 2), ((64, 64), 6)]:
        labels = rng.integers(0, n_labels, shape).astype(np.int32)
        labels = np.repeat(np.repeat(labels, 2, axis=0), 3, axis=1)  # some larger blobs
        expected = label(labels, background=0, connectivity=1)
        assert np.array_equal(relabel_regions(labels), expected)


def test_merge_similar_regions_joins_close_colours_closest_first():
    # Three vertical stripes: grey 50 | grey 56 | grey 90, labelled 1 | 2 | 3, with a background corner.
    labels = np.repeat(np.array([[1] * 4 + [2] * 3 + [3] * 5]), 6, axis=0).astype(np.int32)
    labels[0, 0] = 0
    colours = np.choose(labels, [0.0, 50.0, 56.0, 90.0]).astype(np.float32)
    merged = merge_similar_regions(labels, colours, max_distance=10)
    assert merged[0, 0] == 0  # background is never merged
    assert set(np.unique(merged[:, 4:7])) == {1}  # the smaller stripe takes the larger one's label
    assert set(np.unique(merged[:, 7:])) == {3}  # 90 is 35 and 37 away from the others
    # After 1 and 2 merge (41 pixels), their mean 52.6 is 37.4 from 3: a threshold of 37 keeps 3 apart ...
    assert set(np.unique(merge_similar_regions(labels, colours, max_distance=37)[:, 7:])) == {3}
    # ... and 38 merges 3 (30 pixels) into the larger region, label 1.
    assert set(np.unique(merge_similar_regions(labels, colours, max_distance=38))) == {0, 1}
    assert np.array_equal(merge_similar_regions(labels, colours, max_distance=0), labels)


def test_edge_strength_of_a_sharp_step_is_its_height():
    colours = np.zeros((5, 8, 3), np.float32)
    colours[:, 4:] = (30.0, 40.0, 0.0)  # a step of 50 between columns 3 and 4
    strength = edge_strength(colours)
    assert np.allclose(strength[:, 3:5], 50.0)
    assert np.allclose(strength[:, :2], 0.0) and np.allclose(strength[:, 6:], 0.0)


def test_merge_edge_weight_joins_a_shading_gradient_split_in_two():
    # A smooth ramp (1 unit per pixel) cut in the middle: the means are 20 apart, the edge between them is weak.
    colours = np.repeat(np.arange(30.0, 70.0, dtype=np.float32)[None, :], 6, axis=0)
    labels = np.where(np.arange(40) < 20, 1, 2).astype(np.int32)[None, :].repeat(6, axis=0)
    assert set(np.unique(merge_similar_regions(labels, colours, max_distance=10))) == {1, 2}
    assert set(np.unique(merge_similar_regions(labels, colours, max_distance=10, edge_weight=0.5))) == {1}


def test_merge_edge_weight_keeps_similar_colours_apart_across_a_strong_edge():
    # Two grey-50 regions parted by a dark outline (grey 20) along the border of the left one.
    colours = np.full((6, 20), 50.0, np.float32)
    colours[:, 9] = 20.0
    labels = np.where(np.arange(20) < 10, 1, 2).astype(np.int32)[None, :].repeat(6, axis=0)
    assert set(np.unique(merge_similar_regions(labels, colours, max_distance=10))) == {1}
    assert set(np.unique(merge_similar_regions(labels, colours, max_distance=10, edge_weight=1.0))) == {1, 2}


def test_region_terms_merge_a_small_patch_but_keep_two_halves_apart():
    # Left and right halves 8 Delta E apart; a 5x5 patch inside the left half, also 8 from it.
    colours = np.full((100, 100), 50.0, np.float32)
    colours[:, 50:] = 58.0
    colours[20:25, 20:25] = 42.0
    labels = np.where(np.arange(100) < 50, 1, 2).astype(np.int32)[None, :].repeat(100, axis=0)
    labels[20:25, 20:25] = 3
    plain = merge_similar_regions(labels, colours, max_distance=3)
    assert np.array_equal(plain, labels)  # 8 > 3: nothing merges on colour alone
    merged = merge_similar_regions(labels, colours, max_distance=3, region_exponents=MERGE_REGION_EXPONENTS)
    assert set(np.unique(merged)) == {1, 2} and np.all(merged[20:25, 20:25] == 1)
    # The same colour step between the two halves costs more than the threshold even with the terms.
    assert np.array_equal(merged[:, 50:], labels[:, 50:])
