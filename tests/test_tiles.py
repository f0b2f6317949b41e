"""Huge scans band by band (segment.tiles): the same segmentation as in memory, within a memory budget."""

import json

import cv2
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from segment import SegmentConfig, segment_image, tiles
from conftest import PLAIN, SAMPLES


@pytest.fixture(scope="module")
def coffee_4mp() -> np.ndarray:
    """sample_images/coffee.jpg enlarged to 1680 x 2520 (4.2 MP)."""
    image = cv2.cvtColor(cv2.imread(str(SAMPLES / "coffee.jpg")), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (2520, 1680), interpolation=cv2.INTER_CUBIC)


def _read_labels(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.int32)


def test_tiled_scan_gets_the_in_memory_segmentation(coffee_4mp, tmp_path):
    """Default settings, a budget that forces ~40-row bands: the regions of segment_image."""
    cfg = SegmentConfig(save=("labels", "overlay", "confidence", "json"))
    budget = 64 * 2**20
    assert tiles.needs_tiling(coffee_4mp.shape, coffee_4mp.dtype, cfg, budget)
    tiled = tiles.segment_tiled(coffee_4mp, cfg, tmp_path, "coffee", budget=budget)
    memory = segment_image(coffee_4mp, cfg)
    assert tiled.summary["tiling"]["bands"] > 10 and tiled.summary["tiling"]["skipped"] == []
    labels = _read_labels(tmp_path / "coffee_labels.png")
    assert adjusted_rand_score(memory.labels.ravel(), labels.ravel()) >= 0.95
    assert np.mean(labels == memory.labels) > 0.999
    assert tiled.n_labels == memory.n_labels and tiled.summary["working_shape"] == list(memory.working_shape)
    confidence = np.load(tmp_path / "coffee_confidence.npy")
    np.testing.assert_allclose(confidence, memory.confidence, atol=1e-6)
    summary = json.loads((tmp_path / "coffee.json").read_text())
    in_memory = memory.summary()
    for key in ("n_components", "n_labels", "features", "components", "iterations", "working_shape"):
        assert summary[key] == in_memory[key], key
    overlay = cv2.cvtColor(cv2.imread(str(tmp_path / "coffee_overlay.png")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(overlay, memory.overlay())


def test_small_image_forced_to_tile_runs_every_stage(tmp_path):
    rng = np.random.default_rng(0)
    image = np.zeros((150, 170, 3), np.uint8) + np.uint8(40)
    image[60:, :80] = (200, 50, 40)
    image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    cfg = SegmentConfig(n_components=3, save=("labels",))
    tiled = tiles.segment_tiled(image, cfg, tmp_path, "scene", budget=16 * 2**20)
    assert tiled.summary["tiling"]["bands"] > 2 and tiled.summary["tiling"]["skipped"] == []
    np.testing.assert_array_equal(_read_labels(tmp_path / "scene_labels.png"), segment_image(image, cfg).labels)


def test_transparent_scan_is_labelled_per_pixel_and_says_what_it_skipped(tmp_path):
    image = np.zeros((120, 90, 4), np.uint8)
    image[..., :3] = 50
    image[:, 45:, :3] = 210
    image[..., 3] = 255
    image[:10, :10, 3] = 0
    cfg = SegmentConfig(n_components=2, position_weight=0, min_size=20, **dict(PLAIN, relabel=True))
    tiled = tiles.segment_tiled(image, cfg.replace(save=("labels",)), tmp_path, "rgba", budget=16 * 2**20)
    assert tiled.summary["tiling"]["skipped"] == ["merge_small_regions", "relabel"]
    labels = _read_labels(tmp_path / "rgba_labels.png")
    assert (labels[:10, :10] == 0).all() and len(np.unique(labels[20:, :45])) == 1 and labels[50, 20] != labels[50, 70]
