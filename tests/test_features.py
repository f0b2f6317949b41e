import numpy as np
import pytest

from segment.features import color_features, feature_names, pixel_features, to_unit_float


def test_shape_dtype_layout(quadrants):
    feats = pixel_features(quadrants, "lab", 0.5)
    assert feats.shape == (20 * 21, 5)
    assert feats.dtype == np.float32 and feats.flags.c_contiguous


def test_position_weight_zero_drops_position(quadrants):
    assert pixel_features(quadrants, "rgb", 0).shape == (20 * 21, 3)


@pytest.mark.parametrize("size", [(30, 40), (300, 400)])
def test_position_scale_is_independent_of_image_size(size):
    feats = pixel_features(np.zeros(size, np.uint8), "gray", 1.0).reshape(*size, 3)
    x, y = feats[..., 1], feats[..., 2]
    assert x.max() == pytest.approx(100 * (size[1] - 0.5) / max(size), rel=1e-5)
    assert y.max() == pytest.approx(100 * (size[0] - 0.5) / max(size), rel=1e-5)


def test_lab_lightness_spans_zero_to_hundred():
    image = np.zeros((1, 2, 3), np.uint8)
    image[0, 1] = 255
    lab = color_features(image, "lab")
    assert lab[0, 0, 0] == pytest.approx(0, abs=1e-3)
    assert lab[0, 1, 0] == pytest.approx(100, abs=1e-2)


def test_hsv_has_no_seam_at_red():
    import cv2

    hues = np.array([[[359, 1, 1], [1, 1, 1], [180, 1, 1]]], np.float32)
    rgb = cv2.cvtColor(hues, cv2.COLOR_HSV2RGB)
    feats = color_features(rgb, "hsv")[0]
    assert np.linalg.norm(feats[0] - feats[1]) < 5
    assert np.linalg.norm(feats[0] - feats[2]) > 150


def test_greyscale_gives_one_colour_feature_with_sixteen_bit_precision():
    image = np.array([[1000, 1001]], dtype=np.uint16)
    feats = color_features(image, "lab")
    assert feats.shape == (1, 2, 1)
    assert feats[0, 1, 0] > feats[0, 0, 0]


def test_unit_float_stretches_out_of_range_floats_only():
    assert to_unit_float(np.array([[0.2, 0.4]], np.float32)).max() == pytest.approx(0.4)
    assert to_unit_float(np.array([[10.0, 30.0]], np.float32)).tolist() == [[0.0, 1.0]]


def test_feature_names():
    assert feature_names(3, "lab", 1) == ["L", "a", "b", "x", "y"]
    assert feature_names(1, "lab", 0) == ["I"]

