"""Region table, polygons and probabilities, checked against scikit-image, shapely and rasterio."""

import csv
import json

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.features import rasterize
from shapely.geometry import shape
from skimage.measure import regionprops

from segment.io import (
    GeoReference,
    ImageInfo,
    read_image,
    region_polygons,
    region_table,
    write_polygons,
    write_probabilities,
    write_regions,
)


def _tricky_labels():
    """A ring with a hole (holding another region), a label in two pieces, diagonal contacts."""
    labels = np.zeros((30, 40), np.int32)
    labels[2:18, 2:18] = 1
    labels[6:12, 6:12] = 2            # hole in region 1
    labels[20:26, 3:9] = 3
    labels[20:26, 30:36] = 3          # second piece of label 3
    labels[2:6, 25:29] = 4
    labels[6:10, 29:33] = 4           # touches itself only at a corner
    rng = np.random.default_rng(1)
    labels[12:30, 20:28] = rng.integers(5, 8, (18, 8))  # noisy patch: many small parts
    return labels


def test_region_table_matches_regionprops():
    labels = _tricky_labels()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, labels.shape + (3,), dtype=np.uint8)
    confidence = rng.random(labels.shape).astype(np.float32)
    table = region_table(labels, image=image, confidence=confidence)
    props = regionprops(labels, intensity_image=image)
    assert table["label"].tolist() == [p.label for p in props]
    for i, p in enumerate(props):
        assert table["area_px"][i] == p.area
        assert (table["centroid_y"][i], table["centroid_x"][i]) == pytest.approx(np.add(p.centroid, 0.5))
        assert (table["y_min"][i], table["x_min"][i], table["y_max"][i], table["x_max"][i]) == p.bbox
        for band, name in enumerate(("mean_band1", "mean_band2", "mean_band3")):
            assert table[name][i] == pytest.approx(p.intensity_mean[band])
        assert table["mean_confidence"][i] == pytest.approx(confidence[labels == p.label].mean())


def test_region_class_is_majority_component_and_physical_area():
    labels = np.array([[1, 1, 1, 2], [1, 1, 2, 2]])
    components = np.array([[3, 3, 0, 1], [3, 0, 1, 1]])
    info = ImageInfo((2, 4), pixel_size=(0.5, 0.25), pixel_unit="millimeter", band_names=("Red", "NIR 1"))
    table = region_table(labels, components=components, info=info, image=np.ones((2, 4, 2)))
    assert table["class"].tolist() == [3, 1]
    assert table["area_mm2"].tolist() == [5 * 0.125, 3 * 0.125]
    assert "mean_red" in table and "mean_nir_1" in table


def test_regions_csv(tmp_path):
    labels = _tricky_labels()
    write_regions(tmp_path / "r.csv", labels, image=labels.astype(np.float32))
    with open(tmp_path / "r.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["label"]) for r in rows] == sorted(set(labels.ravel()) - {0})
    assert sum(int(r["area_px"]) for r in rows) == (labels > 0).sum()
    assert all(float(r["mean"]) == int(r["label"]) for r in rows)


def test_polygons_are_valid_keep_holes_and_rasterize_back(tmp_path):
    labels = _tricky_labels()
    colors = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9], [1, 2, 3], [4, 5, 6], [7, 8, 9]])
    write_polygons(tmp_path / "p.geojson", labels, class_colors=colors, class_names={1: "tissue"})
    collection = json.loads((tmp_path / "p.geojson").read_text())
    features = collection["features"]
    assert [f["properties"]["label"] for f in features] == sorted(set(labels.ravel()) - {0})
    for feature in features:
        geometry = shape(feature["geometry"])
        label = feature["properties"]["label"]
        assert shapely.is_valid(geometry), shapely.is_valid_reason(geometry)
        assert geometry.area == (labels == label).sum()
        assert feature["properties"]["classification"]["color"] == colors[label].tolist()
    ring = shape(features[0]["geometry"])
    assert len(ring.interiors) == 1 and features[0]["properties"]["classification"]["name"] == "tissue"
    assert features[2]["geometry"]["type"] == "MultiPolygon"
    redrawn = rasterize(((f["geometry"], f["properties"]["label"]) for f in features), out_shape=labels.shape, dtype="int32")
    assert np.array_equal(redrawn, labels)


def test_polygons_of_a_geotiff_are_in_its_crs(tmp_path):
    transform = Affine(10, 0, 500000, 0, -10, 4100000)
    info = ImageInfo((30, 40), georeference=GeoReference(transform=tuple(transform)[:6], crs="EPSG:32633"))
    labels = _tricky_labels()
    collection = region_polygons(labels, info=info)
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    first = shape(collection["features"][0]["geometry"])
    assert first.bounds == (500000 + 20, 4100000 - 180, 500000 + 180, 4100000 - 20)
    assert first.area == pytest.approx(100 * (labels == 1).sum())


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # a scan has no CRS
@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_probabilities_k_h_w_float32(tmp_path, suffix):
    rng = np.random.default_rng(2)
    probabilities = rng.random((4, 6, 7))
    probabilities /= probabilities.sum(axis=0)
    info = ImageInfo((6, 7), pixel_size=(0.1, 0.1), pixel_unit="millimeter")
    write_probabilities(tmp_path / f"p{suffix}", probabilities, info)
    if suffix == ".npy":
        loaded = np.load(tmp_path / "p.npy")
    else:
        with rasterio.open(tmp_path / "p.tif") as src:
            loaded = src.read()
        assert read_image(tmp_path / "p.tif")[1].dpi == pytest.approx((254, 254))
    assert loaded.dtype == np.float32 and np.array_equal(loaded, probabilities.astype(np.float32))
