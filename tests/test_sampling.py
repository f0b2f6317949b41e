"""Pixel samples: stratified grids over an image (with or without a mask) and random subsets."""

import numpy as np
import pytest

from segment import sampling


def test_grid_covers_the_image_evenly_and_is_deterministic():
    picked = sampling.grid_pixels((300, 400), 1200, np.random.default_rng(5))
    assert picked.dtype == np.int64 and len(np.unique(picked)) == len(picked)
    assert 1000 <= len(picked) <= 1400
    rows, cols = np.divmod(picked, 400)
    # One pixel per 10 x 10 cell: every cell of a coarser 50 x 50 grid holds about 25.
    counts = np.histogram2d(rows, cols, bins=(6, 8), range=((0, 300), (0, 400)))[0]
    assert counts.min() >= 20 and counts.max() <= 30
    np.testing.assert_array_equal(picked, sampling.grid_pixels((300, 400), 1200, np.random.default_rng(5)))
    assert not np.array_equal(picked, sampling.grid_pixels((300, 400), 1200, np.random.default_rng(6)))


def test_grid_without_jitter_takes_cell_centres():
    assert sampling.grid_pixels((4, 6), 6).tolist() == [7, 9, 11, 19, 21, 23]


@pytest.mark.parametrize("shape", [(2, 1), (2, 40, 50)])
def test_masked_grid_keeps_its_density_and_never_picks_masked_pixels(shape):
    mask = np.zeros((40, 50), bool)
    mask[:, :25] = True
    mask = mask.reshape(-1) if len(shape) == 2 else mask
    picked = sampling.grid_pixels((40, 50), 100, np.random.default_rng(0), mask)
    assert np.asarray(mask).reshape(-1)[picked].all()
    assert 80 <= len(picked) <= 120  # about 100 of the 1000 unmasked pixels, not 50
    positions = sampling.within_mask(picked, mask)
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(mask).reshape(-1))[positions], picked)


def test_small_images_give_every_pixel():
    assert sampling.grid_pixels((3, 4), 100, np.random.default_rng(0)).tolist() == list(range(12))
    alpha = np.array([[0, 255], [255, 0]], np.uint8)
    assert sampling.fit_sample((2, 2), alpha, 0, np.random.default_rng(0)).tolist() == [1, 2]


def test_random_rows_are_a_sorted_subset_drawn_only_when_needed():
    rng = np.random.default_rng(0)
    assert sampling.random_rows(10, 10, rng) == slice(None)
    assert rng.random() == np.random.default_rng(0).random()  # nothing drawn
    rows = sampling.random_rows(1000, 50, np.random.default_rng(1))
    assert len(np.unique(rows)) == 50 and (np.diff(rows) > 0).all() and rows.max() < 1000
    np.testing.assert_array_equal(rows, sampling.random_rows(1000, 50, np.random.default_rng(1)))
