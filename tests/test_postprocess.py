import numpy as np

from segment.postprocess import merge_small_regions, morphology, relabel_regions


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
