"""Writers: label maps as PNG/TIFF/OME-Zarr with the input's resolution and georeferencing."""

import warnings

import cv2
import numpy as np
import pytest
import rasterio
import tifffile
from affine import Affine
from PIL import Image

from segment.io import (
    ImageInfo,
    OutputError,
    read_image,
    write_array,
    write_image,
    write_label_map,
    write_png,
)


def _labels(height=40, width=60, n=5):
    rows, cols = np.mgrid[:height, :width]
    return ((rows // 10) * 7 + cols // 15) % n


def _scan_info(shape, dpi=300.0):
    size = 25.4 / dpi
    return ImageInfo(shape, pixel_size=(size, size), pixel_unit="millimeter")


def _geotiff(path, height=40, width=60, nodata=0.0):
    data = (np.arange(height * width, dtype=np.uint16).reshape(height, width) % 500) + 1
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=1, dtype="uint16",
                       crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4100000), nodata=nodata) as dst:
        dst.write(data[np.newaxis])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_label_map_keeps_resolution(tmp_path, suffix):
    labels = _labels()
    path = write_label_map(tmp_path / f"l{suffix}", labels, _scan_info(labels.shape, 300))
    with Image.open(path) as written:  # Pillow reads pHYs and TIFF resolution independently of us
        assert written.info["dpi"] == pytest.approx((300, 300), rel=1e-3)
        assert np.array_equal(np.asarray(written), labels)
    assert read_image(path)[1].dpi == pytest.approx((300, 300), rel=1e-3)


def test_label_map_at_half_resolution_has_half_the_dpi(tmp_path):
    labels = _labels(20, 30)
    write_label_map(tmp_path / "l.png", labels, _scan_info((40, 60), 300))
    with Image.open(tmp_path / "l.png") as written:
        assert written.info["dpi"] == pytest.approx((150, 150), rel=1e-3)


def test_label_dtype_grows_with_labels_and_png_refuses_32_bit(tmp_path):
    labels = _labels() * 1000
    write_label_map(tmp_path / "l.png", labels)
    assert cv2.imread(str(tmp_path / "l.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    big = labels * 100
    write_label_map(tmp_path / "l.tif", big)
    assert tifffile.imread(tmp_path / "l.tif").dtype == np.uint32
    with pytest.raises(OutputError, match="do not fit a 16-bit PNG"):
        write_label_map(tmp_path / "big.png", big)
    assert not (tmp_path / "big.png").exists()
    with pytest.raises(OutputError, match="unknown label map format"):
        write_label_map(tmp_path / "l.bmp", labels)


def test_geotiff_label_map_reads_back_identical_in_rasterio(tmp_path):
    _geotiff(tmp_path / "in.tif")
    image, info = read_image(tmp_path / "in.tif")
    labels = _labels()
    write_label_map(tmp_path / "labels.tif", labels, info)
    with rasterio.open(tmp_path / "in.tif") as src, rasterio.open(tmp_path / "labels.tif") as out:
        assert out.crs == src.crs and out.transform == src.transform
        assert out.nodata == 0 and out.read(1).tolist() == labels.tolist()
    half = labels[::2, ::2]
    write_label_map(tmp_path / "half.tif", half, info)
    with rasterio.open(tmp_path / "in.tif") as src, rasterio.open(tmp_path / "half.tif") as out:
        assert out.crs == src.crs and out.transform == src.transform @ Affine.scale(2)
        assert out.bounds == src.bounds


def test_pixel_is_point_geotiff_round_trip(tmp_path):
    data = np.ones((8, 10), np.uint8)
    with rasterio.open(tmp_path / "p.tif", "w", driver="GTiff", height=8, width=10, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=Affine(0.1, 0, 10, 0, -0.1, 50)) as dst:
        dst.write(data[np.newaxis])
        dst.update_tags(AREA_OR_POINT="Point")
    _, info = read_image(tmp_path / "p.tif")
    write_label_map(tmp_path / "l.tif", data, info)
    with rasterio.open(tmp_path / "p.tif") as src, rasterio.open(tmp_path / "l.tif") as out:
        assert out.transform.almost_equals(src.transform) and out.crs == src.crs
        assert out.tags().get("AREA_OR_POINT") == src.tags().get("AREA_OR_POINT")


def test_pictures_carry_resolution_and_georeference(tmp_path):
    _geotiff(tmp_path / "in.tif")
    _, info = read_image(tmp_path / "in.tif")
    picture = np.zeros((40, 60, 3), np.uint8)
    write_image(tmp_path / "color.tif", picture, info)
    with rasterio.open(tmp_path / "color.tif") as out:
        assert out.crs.to_epsg() == 32633 and out.count == 3
    write_image(tmp_path / "color.png", picture, _scan_info((40, 60), 600))
    with Image.open(tmp_path / "color.png") as written:
        assert written.info["dpi"] == pytest.approx((600, 600), rel=1e-3)


def test_ome_zarr_label_image_opens_in_ome_zarr_py(tmp_path):
    labels = _labels(600, 520)
    image = np.dstack([labels * 40] * 3).astype(np.uint8)
    info = ImageInfo(image.shape, pixel_size=(0.5, 0.5), pixel_unit="micrometer")
    path = write_label_map(tmp_path / "l.zarr", labels, info, image=image)
    write_label_map(path, labels, info, image=image)  # replaced atomically
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.zarr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ome-zarr-py's own deprecations
        from ome_zarr.io import parse_url
        from ome_zarr.reader import Label, Reader

        nodes = list(Reader(parse_url(str(path)))())
        label_nodes = [node for node in nodes if any(isinstance(spec, Label) for spec in node.specs)]
        assert len(label_nodes) == 1
        data = label_nodes[0].data
        assert np.array_equal(np.asarray(data[0]), labels) and np.array_equal(np.asarray(data[1]), labels[::2, ::2])
        assert np.array_equal(np.moveaxis(np.asarray(nodes[0].data[0]), 0, 2), image)
        transforms = label_nodes[0].metadata["coordinateTransformations"]
        assert transforms[0][0]["scale"] == [0.5, 0.5] and transforms[1][0]["scale"] == [1.0, 1.0]
        assert label_nodes[0].metadata["axes"][0]["unit"] == "micrometer"


def test_write_png_pixels_unchanged_by_phys(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 255, (7, 9, 4), dtype=np.uint8)
    write_png(tmp_path / "a.png", rgba, dpi=(72, 96))
    assert np.array_equal(read_image(tmp_path / "a.png")[0], rgba)
    with Image.open(tmp_path / "a.png") as written:
        assert written.info["dpi"] == pytest.approx((72, 96), rel=1e-3)


def test_write_array_tiff_with_resolution(tmp_path):
    confidence = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    write_array(tmp_path / "c.tif", confidence, info=_scan_info((3, 4), 200))
    loaded, info = read_image(tmp_path / "c.tif")
    assert np.array_equal(loaded, confidence) and info.dpi == pytest.approx((200, 200))
