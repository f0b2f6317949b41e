"""`segment fit --all-pixels`: exact EM over every pixel of a collection, here and on a Dask cluster."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from segment.cli import app
from segment.config import SegmentConfig
from segment.features import FeatureSpec
from segment.fit_collection import fit_shared_model
from segment.gmm import GaussianMixture

runner = CliRunner()
CONFIG = SegmentConfig(n_components=3, fit_sample=300, max_iter=200, tol=1e-6, seed=1)
CENTRES = np.array([[200, 40, 40], [40, 170, 60], [60, 60, 210]], dtype=np.float64)


def _image(seed: int, shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    classes = (rows * 3 // shape[0] + cols * 2 // shape[1] + seed) % 3
    return np.clip(CENTRES[classes] + rng.normal(0, 12, (*shape, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def collection(tmp_path):
    """Three RGB(A) PNGs of other sizes on disk (one with transparent pixels) and their features, concatenated."""
    folder = tmp_path / "scans"
    folder.mkdir()
    images = [_image(0, (40, 60)), _image(1, (55, 35)), _image(2, (30, 45))]
    alpha = np.full(images[2].shape[:2], 255, np.uint8)
    alpha[:10, :20] = 0
    images[2] = np.dstack([images[2], alpha])
    features = []
    for number, image in enumerate(images):
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        cv2.imwrite(str(folder / f"scan{number}.png"), cv2.cvtColor(image, code))
        spec = FeatureSpec.for_image(image, CONFIG.color_space, CONFIG.position_weight)
        rows = spec.image_features(image)
        features.append(rows if image.shape[2] == 3 else rows[image[:, :, 3].ravel() > 0])
    return folder, np.concatenate(features)


def _in_memory_fit(start: GaussianMixture, features: np.ndarray) -> GaussianMixture:
    model = GaussianMixture(
        start.n_components, tol=CONFIG.tol, reg_covar=CONFIG.reg_covar, max_iter=CONFIG.max_iter,
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_,
    ).fit(features)
    return model.permute_components(np.lexsort(model.means_.T[::-1]))


def _assert_same(model: GaussianMixture, reference: GaussianMixture) -> None:
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(model, name), getattr(reference, name), rtol=1e-6, atol=1e-6, err_msg=name)


def test_all_pixels_equals_the_in_memory_fit_of_every_pixel(collection):
    folder, features = collection
    start = fit_shared_model([folder], CONFIG).model
    result = fit_shared_model([folder], CONFIG, all_pixels=True)
    reference = _in_memory_fit(start, features)
    assert result.pixels == len(features) == 40 * 60 + 55 * 35 + 30 * 45 - 200
    assert result.passes == reference.n_iter_ > 1
    _assert_same(result.model, reference)
    # EM moved the sample's model: the parity above is not the start compared with itself.
    assert np.abs(result.model.means_ - start.means_).max() > 1e-3
    assert result.model.metadata_["fitted_on"] == {"images": 3, "pixels": len(features), "all_pixels": True, "passes": result.passes}


def test_cli_all_pixels_on_a_local_dask_cluster_of_a_worker_process(collection, tmp_path):
    folder, features = collection
    out = tmp_path / "model.npz"
    options = ["-k", "3", "--fit-sample", "300", "--max-iter", "200", "--tol", "1e-6", "--seed", "1"]
    result = runner.invoke(app, ["fit", str(folder), "-o", str(out), *options, "--all-pixels", "--executor", "dask", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"fitted on {len(features)} pixels from 3 image(s)" in result.output
    start = fit_shared_model([folder], CONFIG).model
    _assert_same(GaussianMixture.load(out), _in_memory_fit(start, features))


def test_cli_dask_needs_all_pixels(collection, tmp_path):
    folder, _ = collection
    result = runner.invoke(app, ["fit", str(folder), "-o", str(tmp_path / "m.npz"), "--executor", "dask"])
    assert result.exit_code == 2
    assert "needs --all-pixels" in result.output
    assert not (tmp_path / "m.npz").exists()
