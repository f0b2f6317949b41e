"""A model shared by many images: `segment fit`, --model, and label ids that mean one class everywhere."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from segment import segment_image
from segment.batch import BatchError, run_batch
from segment.cli import app
from segment.config import SegmentConfig
from segment.fit_collection import fit_shared_model
from conftest import PLAIN
from segment.gmm import GaussianMixture

runner = CliRunner()
# Four materials; every image shows them in other proportions and places.
MATERIALS = np.array([[205, 45, 40], [45, 175, 70], [50, 60, 200], [230, 215, 90]], dtype=np.float64)


def _material_image(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(50, 80)), int(rng.integers(60, 100))
    rows, cols = np.mgrid[:height, :width]
    truth = np.full((height, width), int(rng.integers(4)))
    for material in rng.permutation(4)[: int(rng.integers(2, 5))]:
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        radius = rng.uniform(0.15, 0.6) * min(height, width)
        truth[(rows - cy) ** 2 + (cols - cx) ** 2 < radius**2] = material
    image = MATERIALS[truth] + rng.normal(0, 9, (height, width, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8), truth


@pytest.fixture
def materials(tmp_path):
    folder = tmp_path / "materials"
    folder.mkdir()
    truths = {}
    for seed in range(6):
        image, truth = _material_image(seed)
        cv2.imwrite(str(folder / f"m{seed}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        truths[f"m{seed}"] = truth
    return folder, truths


COLOUR_ONLY = SegmentConfig(n_components=4, position_weight=0, max_iter=50, **PLAIN)


def _label_of_each_material(labels: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    """Majority label of each material present, checking that the labelling is pure."""
    mapping = {}
    for material in np.unique(truth):
        values, counts = np.unique(labels[truth == material], return_counts=True)
        assert counts.max() / counts.sum() > 0.99
        mapping[int(material)] = int(values[counts.argmax()])
    return mapping


def test_shared_model_gives_each_material_one_label_in_every_image(materials):
    folder, truths = materials
    fitted = fit_shared_model([folder], COLOUR_ONLY)
    assert fitted.images == 6 and not fitted.failed
    assert abs(fitted.pixels - COLOUR_ONLY.fit_sample) < 0.05 * COLOUR_ONLY.fit_sample or fitted.pixels == sum(
        t.size for t in truths.values()
    )
    seen: dict[int, int] = {}
    for name, truth in truths.items():
        result = segment_image(folder / f"{name}.png", COLOUR_ONLY.replace(n_components=2), model=fitted.model)
        assert result.model is fitted.model and result.config.n_components == 4
        for material, label in _label_of_each_material(result.labels, truth).items():
            assert seen.setdefault(material, label) == label, f"material {material} changed label in {name}"
    assert sorted(seen.values()) == [1, 2, 3, 4]


def test_models_fitted_per_image_do_not_agree_but_the_shared_one_does(materials):
    """The reason for `segment fit`: label ids of separate fits depend on each image's content."""
    folder, truths = materials
    per_image = {}
    for name, truth in truths.items():
        result = segment_image(folder / f"{name}.png", COLOUR_ONLY.replace(n_components=int(len(np.unique(truth)))))
        per_image[name] = _label_of_each_material(result.labels, truth)
    labels_of_material = {m: {mapping[m] for mapping in per_image.values() if m in mapping} for m in range(4)}
    assert any(len(labels) > 1 for labels in labels_of_material.values())


def test_cli_fit_then_batch_and_image_with_the_model(materials, tmp_path):
    folder, truths = materials
    model_path = tmp_path / "model.npz"
    fitted = runner.invoke(app, ["fit", str(folder), "-o", str(model_path), "-k", "4", "--position-weight", "0"])
    assert fitted.exit_code == 0, fitted.output
    assert "4 components" in fitted.stdout
    model = GaussianMixture.load(model_path)
    assert model.metadata_["position_weight"] == 0 and model.metadata_["fitted_on"]["images"] == 6

    out = tmp_path / "out"
    batch = runner.invoke(app, ["batch", str(folder), "-o", str(out), "--model", str(model_path), "--workers", "1", "-q"])
    assert batch.exit_code == 0, batch.output
    seen: dict[int, int] = {}
    for name, truth in truths.items():
        labels = cv2.imread(str(out / f"{name}_labels.png"), cv2.IMREAD_UNCHANGED)
        for material, label in _label_of_each_material(labels, truth).items():
            assert seen.setdefault(material, label) == label
    single = runner.invoke(app, ["image", str(folder / "m3.png"), "-o", str(tmp_path / "one"), "--model", str(model_path)])
    assert single.exit_code == 0, single.output
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / "one" / "m3_labels.png"), cv2.IMREAD_UNCHANGED),
        cv2.imread(str(out / "m3_labels.png"), cv2.IMREAD_UNCHANGED),
    )
    # a new model is new settings: the batch redoes every image
    refit = runner.invoke(app, ["fit", str(folder), "-o", str(model_path), "-k", "3", "--position-weight", "0", "-q"])
    assert refit.exit_code == 0 and refit.stdout == ""
    again = run_batch(folder, out, model=GaussianMixture.load(model_path), workers=1)
    assert again.counts["done"] == 6


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"not a zip file at all", "not a segment model file"),
        (None, "not a segment model file"),
        ("version", "version 99 is not supported"),
    ],
)
def test_wrong_or_corrupt_model_file_is_a_clear_usage_error(materials, tmp_path, content, cause):
    folder, _ = materials
    path = tmp_path / "model.npz"
    if content is None:
        np.savez(path, weights=np.ones(2))
    elif content == "version":
        model = fit_shared_model([folder / "m0.png"], COLOUR_ONLY.replace(n_components=2)).model
        model.save(path)
        with np.load(path) as data:
            arrays = dict(data)
        header = json.loads(str(arrays["header"]))
        header["version"] = 99
        arrays["header"] = np.array(json.dumps(header))
        np.savez(path, **arrays)
    else:
        path.write_bytes(content)
    for command in (["image", str(folder / "m0.png")], ["batch", str(folder)]):
        result = runner.invoke(app, [*command, "-o", str(tmp_path / "out"), "--model", str(path)])
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.replace("│", " ").split())  # the error box wraps long lines
        assert cause in text and "--model" in text and "Traceback" not in text
    assert not (tmp_path / "out").exists()


def test_a_model_for_other_features_fails_those_images_only(materials, tmp_path):
    folder, _ = materials
    colour_model = fit_shared_model([folder / "m0.png"], COLOUR_ONLY).model
    grey = tmp_path / "grey"
    grey.mkdir()
    cv2.imwrite(str(grey / "g.png"), np.full((20, 30), 90, np.uint8))
    cv2.imwrite(str(grey / "c.png"), cv2.imread(str(folder / "m1.png")))
    result = run_batch(grey, tmp_path / "out", model=colour_model, workers=1)
    statuses = {r.input: (r.status, r.error) for r in result.records}
    assert statuses["c.png"] == ("done", None)
    assert statuses["g.png"][0] == "failed" and "expects 3 features" in statuses["g.png"][1]


def test_fit_reports_unreadable_and_mismatched_images_and_fits_on_the_rest(materials, tmp_path):
    folder, _ = materials
    (folder / "broken.png").write_bytes(b"junk")
    cv2.imwrite(str(folder / "zgrey.png"), np.full((20, 30), 90, np.uint8))
    result = runner.invoke(app, ["fit", str(folder), "-o", str(tmp_path / "m.npz"), "-k", "4", "--position-weight", "0"])
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2 and errors[0].startswith("error: broken.png: ") and "--color-space gray" in errors[1]
    assert GaussianMixture.load(tmp_path / "m.npz").metadata_["fitted_on"]["images"] == 6
    grey_model = fit_shared_model([folder], COLOUR_ONLY.replace(color_space="gray"))
    assert grey_model.images == 7 and grey_model.model.means_.shape[1] == 1


def test_fit_samples_every_page_of_a_multipage_tiff(tmp_path):
    pages = np.stack([_material_image(s)[0][:50, :60].mean(axis=2) for s in range(3)]).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    result = fit_shared_model([tmp_path / "stack.tif"], COLOUR_ONLY.replace(n_components=3, fit_sample=900))
    assert result.images == 3 and abs(result.pixels - 900) < 90  # about 300 per page, on a jittered grid


def test_fit_needs_existing_inputs(tmp_path):
    with pytest.raises(BatchError, match="no such file"):
        fit_shared_model([tmp_path / "missing.png"])
    with pytest.raises(BatchError, match="no image"):
        fit_shared_model([tmp_path])
    result = runner.invoke(app, ["fit", str(tmp_path / "missing.png"), "-o", str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "no such file" in result.output
