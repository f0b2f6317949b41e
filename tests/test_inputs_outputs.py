"""End to end through the CLI: real scan, camera, GIS and microscopy files in, metadata-carrying outputs out."""

import json

import cv2
import numpy as np
import pytest
import rasterio
import shapely.geometry
import tifffile
from affine import Affine
from PIL import Image
from typer.testing import CliRunner

from segment.cli import app

runner = CliRunner()
TRANSFORM = Affine(10, 0, 500000, 0, -10, 4100000)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def two_tone(height=48, width=64, channels=3, dtype=np.uint8) -> np.ndarray:
    """Left half dark, right half bright, a little noise: two obvious classes."""
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    image = np.where(np.arange(width) < width // 2, 0.2, 0.8)[None, :, None] * top
    image = image + rng.normal(0, 0.02 * top, (height, width, channels))
    return np.clip(image, 0, top).astype(dtype)


def test_geotiff_in_geotiff_labels_out_with_crs_transform_and_nodata(tmp_path):
    data = np.moveaxis(two_tone(40, 60, 4, np.uint16), 2, 0)
    data[:, :5, :] = 0  # nodata rows at the top
    with rasterio.open(tmp_path / "field.tif", "w", driver="GTiff", height=40, width=60, count=4, dtype="uint16",
                       crs="EPSG:32633", transform=TRANSFORM, nodata=0) as dst:
        dst.write(data)
    result = run("image", tmp_path / "field.tif", "-o", tmp_path / "out", "-k", "2",
                 "--save", "labels,overlay,json,polygons")  # the label map of a GeoTIFF is a GeoTIFF by default
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "out" / "field_labels.tif") as labels:
        assert labels.crs.to_string() == "EPSG:32633" and labels.transform == TRANSFORM and labels.nodata == 0
        band = labels.read(1)
    assert (band[:5] == 0).all() and (band[5:] > 0).all()
    assert len(np.unique(band[5:])) == 2
    summary = json.loads((tmp_path / "out" / "field.json").read_text())
    assert summary["input"]["crs"] == "EPSG:32633" and summary["input"]["nodata"] == 0
    polygons = json.loads((tmp_path / "out" / "field_polygons.geojson").read_text())
    xs = [x for feature in polygons["features"] for x, _ in shapely.geometry.shape(feature["geometry"]).exterior.coords]
    assert min(xs) == pytest.approx(500000) and max(xs) == pytest.approx(500600)  # CRS coordinates


def test_phone_photo_with_exif_orientation_6_is_segmented_upright(tmp_path):
    upright = two_tone(30, 50)
    stored = np.ascontiguousarray(np.rot90(upright, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    result = run("image", tmp_path / "phone.jpg", "-o", tmp_path, "-k", "2", "--save", "labels,json")
    assert result.exit_code == 0, result.output
    labels = cv2.imread(str(tmp_path / "phone_labels.png"), cv2.IMREAD_UNCHANGED)
    assert labels.shape == upright.shape[:2]
    assert (labels[:, :20] == labels[0, 0]).all() and (labels[:, 30:] != labels[0, 0]).all()  # halves left/right
    assert json.loads((tmp_path / "phone.json").read_text())["input"]["orientation"] == 6


def test_scan_resolution_survives_into_every_picture(tmp_path):
    Image.fromarray(two_tone()).save(tmp_path / "page.png", dpi=(300, 300))
    result = run("image", tmp_path / "page.png", "-o", tmp_path / "out", "-k", "2")
    assert result.exit_code == 0, result.output
    for kind in ("labels", "color", "overlay"):
        with Image.open(tmp_path / "out" / f"page_{kind}.png") as picture:
            assert picture.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_five_band_sixteen_bit_tiff_with_band_choice_and_display_bands(tmp_path):
    image = two_tone(40, 50, 5, np.uint16)
    image[:, :, 4] = 1000  # a flat band
    tifffile.imwrite(tmp_path / "ms.tif", image, compression="lzw", photometric="minisblack", planarconfig="contig")
    result = run("image", tmp_path / "ms.tif", "-o", tmp_path, "-k", "2", "--bands", "1,3,5", "--display-bands", "3,2,1")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "ms.json").read_text())
    assert summary["n_labels"] == 2 and len(summary["features"]) == 3 + 2  # three bands and x, y
    assert cv2.imread(str(tmp_path / "ms_overlay.png")).shape == (40, 50, 3)
    bad = run("image", tmp_path / "ms.tif", "-o", tmp_path, "--bands", "7")
    assert bad.exit_code == 1 and "band 7" in bad.output and "Traceback" not in bad.output


def test_mask_file_excludes_pixels_and_they_get_label_zero(tmp_path):
    cv2.imwrite(str(tmp_path / "photo.png"), two_tone())
    mask = np.full((48, 64), 255, np.uint8)
    mask[:10] = 0
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    result = run("image", tmp_path / "photo.png", "-o", tmp_path / "out", "-k", "2", "--mask", tmp_path / "mask.png")
    assert result.exit_code == 0, result.output
    labels = cv2.imread(str(tmp_path / "out" / "photo_labels.png"), cv2.IMREAD_UNCHANGED)
    assert (labels[:10] == 0).all() and (labels[10:] > 0).all()
    cv2.imwrite(str(tmp_path / "small.png"), mask[:20])
    wrong = run("image", tmp_path / "photo.png", "-o", tmp_path / "out", "--mask", tmp_path / "small.png")
    assert wrong.exit_code == 1 and "small.png" in wrong.output


def test_region_table_polygons_and_probabilities(tmp_path):
    cv2.imwrite(str(tmp_path / "cells.png"), two_tone())
    result = run("image", tmp_path / "cells.png", "-o", tmp_path, "-k", "2", "--save",
                 "labels,regions,polygons,probabilities", "--confidence-format", "tif")
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "cells_regions.csv").read_text().splitlines()
    assert rows[0].startswith("label,class,area_px") and len(rows) == 3
    assert sum(int(row.split(",")[2]) for row in rows[1:]) == 48 * 64
    features = json.loads((tmp_path / "cells_polygons.geojson").read_text())["features"]
    assert len(features) == 2 and all(shapely.geometry.shape(f["geometry"]).is_valid for f in features)
    assert all({"name", "color"} <= set(f["properties"]["classification"]) for f in features)
    probabilities = tifffile.imread(tmp_path / "cells_probabilities.tif")
    assert probabilities.shape == (2, 48, 64) and np.allclose(probabilities.sum(axis=0), 1, atol=1e-4)


def test_ome_zarr_label_map(tmp_path):
    pytest.importorskip("zarr")
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    cv2.imwrite(str(tmp_path / "slide.png"), two_tone())
    result = run("image", tmp_path / "slide.png", "-o", tmp_path, "-k", "2", "--label-format", "zarr", "--save", "labels")
    assert result.exit_code == 0, result.output
    nodes = list(Reader(parse_url(str(tmp_path / "slide_labels.zarr")))())
    assert nodes and nodes[0].data[0].shape[-2:] == (48, 64)


def test_batch_over_a_folder_of_every_kind_of_scan(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    page = two_tone()
    tifffile.imwrite(scans / "lzw.tif", page, compression="lzw")
    tifffile.imwrite(scans / "jpeg.tif", page, compression="jpeg")
    Image.fromarray(page[:, :, 0] > 100).save(scans / "g4.tif", compression="group4")
    Image.fromarray(page).save(scans / "pillow_lzw.tif", compression="tiff_lzw", dpi=(300, 300))
    Image.fromarray(page).save(scans / "doc.pdf", save_all=True, append_images=[Image.fromarray(page[::-1])])
    Image.fromarray(page).convert("P").save(scans / "anim.gif", save_all=True, append_images=[Image.fromarray(page[::-1]).convert("P")])
    Image.fromarray(page).save(scans / "photo.webp")
    (scans / "broken.tif").write_bytes(b"II*\x00garbage")
    with rasterio.open(scans / "geo.tif", "w", driver="GTiff", height=48, width=64, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=TRANSFORM) as dst:
        dst.write(np.moveaxis(page, 2, 0))
    result = run("batch", scans, "-o", tmp_path / "out", "-k", "2", "--dpi", "72", "-q")
    assert result.exit_code == 1, result.output  # only the broken file fails
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.tif" in errors[0]
    done = sorted(p.name for p in (tmp_path / "out").glob("*.json") if p.name != "summary.json")
    assert done == sorted(["lzw.json", "jpeg.json", "g4.json", "pillow_lzw.json", "doc_p001.json", "doc_p002.json",
                           "anim_p001.json", "anim_p002.json", "photo.json", "geo.json"])
    with Image.open(tmp_path / "out" / "pillow_lzw_labels.png") as labels:
        assert labels.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    with rasterio.open(tmp_path / "out" / "geo_labels.tif") as labels:
        assert labels.crs.to_string() == "EPSG:32633" and labels.transform == TRANSFORM
    rerun = run("batch", scans, "-o", tmp_path / "out", "-k", "2", "--dpi", "72", "-q")
    assert rerun.exit_code == 1, rerun.output
    statuses = {row["input"]: row["status"] for row in json.loads((tmp_path / "out" / "summary.json").read_text())["images"]}
    assert statuses.pop("broken.tif") == "failed" and set(statuses.values()) == {"skipped"}
