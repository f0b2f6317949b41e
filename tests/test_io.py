import cv2
import numpy as np
import pytest
import tifffile

from segment.io import ImageReadError, OutputError, as_image, load_image, write_json, write_png


def _bgr_write(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)


def test_png_comes_back_in_rgb_order(tmp_path):
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 250  # pure red
    _bgr_write(tmp_path / "red.png", rgb)
    loaded = load_image(tmp_path / "red.png")
    assert loaded.shape == (4, 5, 3) and loaded.dtype == np.uint8
    assert (loaded[..., 0] == 250).all() and (loaded[..., 2] == 0).all()


def test_rgba_keeps_alpha_in_rgba_order(tmp_path):
    rgba = np.zeros((3, 3, 4), np.uint8)
    rgba[..., 2] = 200  # blue
    rgba[..., 3] = 128
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    loaded = load_image(tmp_path / "a.png")
    assert loaded.shape == (3, 3, 4)
    assert (loaded[..., 2] == 200).all() and (loaded[..., 3] == 128).all()


def test_sixteen_bit_and_float_tiff_keep_precision(tmp_path):
    grey16 = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000 + 1
    tifffile.imwrite(tmp_path / "g16.tif", grey16)
    assert np.array_equal(load_image(tmp_path / "g16.tif"), grey16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    assert load_image(tmp_path / "g16.png").dtype == np.uint16
    floats = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    tifffile.imwrite(tmp_path / "f.tif", floats)
    assert np.array_equal(load_image(tmp_path / "f.tif"), floats)


def test_jpeg_bmp_webp_greyscale(tmp_path, samples):
    image = load_image(samples / "coins.png")
    assert image.ndim == 2 and image.dtype == np.uint8
    for suffix in (".jpg", ".bmp", ".webp"):
        cv2.imwrite(str(tmp_path / f"c{suffix}"), image)
        assert load_image(tmp_path / f"c{suffix}").shape[:2] == image.shape


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(2000)), "cannot decode"),
    ],
)
def test_bad_files_name_the_file_and_cause(tmp_path, make, cause):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageReadError, match=cause) as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_files_are_refused(tmp_path, samples, suffix):
    full = tmp_path / f"full{suffix}"
    cv2.imwrite(str(full), cv2.imread(str(samples / "coffee.jpg")))
    cut = tmp_path / f"cut{suffix}"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated|cannot decode"):
        load_image(cut)


def test_nan_in_float_tiff_is_refused(tmp_path):
    data = np.ones((4, 4), np.float32)
    data[1, 2] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", data)
    with pytest.raises(ImageReadError, match="NaN"):
        load_image(tmp_path / "nan.tif")


def test_pixel_limit_checked_before_decoding(tmp_path, samples):
    with pytest.raises(ImageReadError, match="above the limit"):
        load_image(samples / "coffee.jpg", max_pixels=1000)


def test_as_image_normalises_layouts_without_touching_input():
    source = np.zeros((5, 6, 1), dtype=np.int16)
    source.flags.writeable = False
    out = as_image(source)
    assert out.shape == (5, 6) and out.dtype == np.float32
    assert as_image(np.ones((2, 2), bool)).max() == 255
    assert as_image(np.zeros((2, 2, 5), np.uint16)).shape == (2, 2, 5)  # multispectral bands kept
    with pytest.raises(ValueError, match="shape"):
        as_image(np.zeros((2, 2, 3, 2)))
    with pytest.raises(ValueError, match="no pixels"):
        as_image(np.zeros((0, 3)))


def test_writes_are_atomic_and_never_overwrite_inputs(tmp_path):
    target = tmp_path / "x.png"
    write_png(target, np.zeros((2, 2), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    with pytest.raises(OutputError, match="overwrite the input"):
        write_png(target, np.ones((2, 2), np.uint8), protect=(target,))
    assert cv2.imread(str(target), 0).max() == 0
    write_json(tmp_path / "s.json", {"a": np.float32(1.5)})
    assert (tmp_path / "s.json").read_text().strip().endswith("}")
