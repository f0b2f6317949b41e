import numpy as np
import pytest

from segment.features import FeatureSpec, color_features, pixel_features, to_unit_float


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


def test_feature_names_and_counts():
    colour = FeatureSpec.for_image(np.zeros((4, 5, 3), np.uint8), "lab", 1)
    assert colour.names == ["L", "a", "b", "x", "y"] and (colour.n_colour, colour.n_features) == (3, 5)
    grey = FeatureSpec.for_image(np.zeros((4, 5), np.uint16), "lab", 0)
    assert grey.names == ["I"] and (grey.n_colour, grey.n_features) == (1, 1)
    rgba_gray = FeatureSpec.for_image(np.zeros((4, 5, 4), np.uint8), "gray", 0.5)
    assert rgba_gray.names == ["I", "x", "y"] and rgba_gray.n_bands == 3


def _images():
    rng = np.random.default_rng(3)
    return {
        "rgb8": rng.integers(0, 256, (37, 29, 3)).astype(np.uint8),
        "rgba16": rng.integers(0, 65536, (37, 29, 4)).astype(np.uint16),
        "grey_float": (rng.normal(0, 40, (37, 29)) + 7).astype(np.float32),
        "five_bands": rng.random((37, 29, 5)).astype(np.float32) * 3,
    }


@pytest.mark.parametrize("name", ["rgb8", "rgba16", "grey_float", "five_bands"])
@pytest.mark.parametrize(("color_space", "weight"), [("lab", 0.5), ("hsv", 1.0), ("rgb", 0.0), ("gray", 2.0)])
def test_whole_image_pixels_and_bands_are_bit_identical(name, color_space, weight):
    image = _images()[name]
    alpha = False if name == "five_bands" else None
    spec = FeatureSpec.for_image(image, color_space, weight, alpha=alpha)
    whole = spec.image_features(image)
    assert whole.shape == (37 * 29, spec.n_features) and whole.dtype == np.float32
    picked = np.random.default_rng(0).choice(37 * 29, 200, replace=False)
    np.testing.assert_array_equal(spec.pixel_features(image, picked), whole[picked])
    bands = np.concatenate([spec.band_features(image, start, min(37, start + 8)) for start in range(0, 37, 8)])
    np.testing.assert_array_equal(bands, whole)


def test_any_number_of_bands_is_scaled_like_colour():
    image = np.zeros((2, 3, 5), np.float32)
    image[..., 4] = 2.0  # outside [0, 1]: every band is stretched by the same whole-image range
    image[0, 0, 1] = 1.0
    spec = FeatureSpec.for_image(image, "lab", 0, alpha=False)
    assert spec.n_colour == 5 and spec.names == ["band1", "band2", "band3", "band4", "band5"]
    feats = spec.image_features(image)
    assert feats[0].tolist() == [0.0, 50.0, 0.0, 0.0, 100.0]
    with_alpha = FeatureSpec.for_image(np.zeros((2, 3, 4), np.uint8), "lab", 0)
    assert with_alpha.n_bands == 3  # four channels are RGBA unless told otherwise


def test_bands_of_a_float_image_share_the_whole_image_stretch():
    image = np.linspace(-5, 20, 40 * 10, dtype=np.float32).reshape(40, 10)
    spec = FeatureSpec.for_image(image, "lab", 0)
    top = spec.band_features(image, 0, 4)
    assert top.min() == pytest.approx(0) and top.max() < 10  # not stretched to the band's own range
    with pytest.raises(ValueError, match="does not match"):
        spec.image_features(image[:20])

