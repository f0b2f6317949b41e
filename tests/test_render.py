import numpy as np

from segment.render import boundaries, colorize, display_rgb, overlay, palette


def test_palette_colours_are_distinct_and_background_black():
    colours = palette(30)
    assert (colours[0] == 0).all()
    assert len({tuple(c) for c in colours}) == 30


def test_colorize_and_overlay_shapes():
    labels = np.ones((6, 8), np.int32)
    labels[:, 4:] = 2
    assert colorize(labels).shape == (6, 8, 3)
    picture = overlay(np.zeros((6, 8), np.uint16), labels, color=(255, 0, 0))
    assert picture.dtype == np.uint8 and picture.shape == (6, 8, 3)
    assert (picture[:, 3] == (255, 0, 0)).all()
    assert (picture[:, 0] == 0).all()


def test_boundaries_mark_label_changes_only():
    labels = np.zeros((4, 4), np.int32)
    labels[2:, :] = 1
    edge = boundaries(labels)
    assert edge[1].all() and not edge[0].any() and not edge[3].any()


def test_display_rgb_scales_sixteen_bit_and_drops_alpha():
    rgba = np.full((2, 2, 4), 65535, np.uint16)
    assert (display_rgb(rgba) == 255).all() and display_rgb(rgba).shape == (2, 2, 3)
