"""3D volumes: segment_volume, the 3D Potts prior and bias field, NIfTI / TIFF stack files, CLI and batch."""

import json
import math

import nibabel
import numpy as np
import pytest
import tifffile
from scipy import ndimage
from typer.testing import CliRunner

import segment
from segment import smoothing
from segment.cli import app
from segment.gmm import GaussianMixture
from segment.volume import remove_specks

runner = CliRunner()
LEVELS = np.array([60.0, 120.0, 180.0])


def spheres(shape=(32, 40, 40)) -> np.ndarray:
    """Class ids 1..3: background, a shell and a core, centred (the core about 10 %, the shell 25 %)."""
    z, y, x = np.indices(shape)
    centre = [(s - 1) / 2 for s in shape]
    r = np.sqrt(((z - centre[0]) / shape[0]) ** 2 + ((y - centre[1]) / shape[1]) ** 2 + ((x - centre[2]) / shape[2]) ** 2)
    return 1 + (r < 0.42).astype(np.int32) + (r < 0.29)


def volume_field(shape, a=0.25, b=-0.15, c=0.2) -> np.ndarray:
    """1 + a x + b y^2 + c z (coordinates in [-1, 1]), normalised to geometric mean 1: about +-25 %."""
    z, y, x = (((np.indices(shape)[i] + 0.5) * 2 / shape[i] - 1) for i in range(3))
    field = 1 + a * x + b * y * y + c * z
    return field / np.exp(np.log(field).mean())


def scan(seed=0, shape=(32, 40, 40), noise=5.0, field=True):
    truth = spheres(shape)
    rng = np.random.default_rng(seed)
    gain = volume_field(shape) if field else 1.0
    volume = np.clip(LEVELS[truth - 1] * gain + rng.normal(0, noise, shape), 0, None)
    return volume.astype(np.int16), truth


def write_nifti(path, volume_zyx, affine, qform_code=1, sform_code=2):
    image = nibabel.Nifti1Image(volume_zyx.transpose(2, 1, 0), affine)
    image.header.set_qform(affine, code=qform_code)
    image.header.set_sform(affine, code=sform_code)
    nibabel.save(image, str(path))


AFFINE = np.array([[0.9, 0, 0, 10.0], [0, 1.1, 0, -5.0], [0, 0, 2.0, 3.0], [0, 0, 0, 1]])


# ------------------------------------------------------------------ the 3D prior
def reference_icm_3d(log_post, labels, weights, sweeps=50):
    """Readable ICM over a volume: the 8 parity phases (z, y, x), face neighbours only, ties keep the label."""
    labels = labels.copy()
    Z, H, W = labels.shape
    edge, through = weights
    offsets = [((0, -1, 0), edge), ((0, 1, 0), edge), ((0, 0, -1), edge), ((0, 0, 1), edge), ((-1, 0, 0), through), ((1, 0, 0), through)]
    for _ in range(sweeps):
        changed = 0
        for pz in (0, 1):
            for py in (0, 1):
                for px in (0, 1):
                    for z in range(pz, Z, 2):
                        for y in range(py, H, 2):
                            for x in range(px, W, 2):
                                score = log_post[z, y, x].copy()
                                for (dz, dy, dx), w in offsets:
                                    if 0 <= z + dz < Z and 0 <= y + dy < H and 0 <= x + dx < W:
                                        score[labels[z + dz, y + dy, x + dx] - 1] += w
                                best = int(np.argmax(score))
                                if score[best] > score[labels[z, y, x] - 1] + 1e-4:
                                    labels[z, y, x] = best + 1
                                    changed += 1
        if not changed:
            break
    return labels


def test_volume_icm_matches_a_readable_reference():
    volume, truth = scan(shape=(8, 12, 14), noise=40.0, field=False)
    X = volume.reshape(-1, 1).astype(np.float32)
    model = GaussianMixture(3, random_state=0).fit(X)
    components, confidence = model.label(X)
    labels = (components + 1).reshape(truth.shape).astype(np.int32)
    beta, neighbourhood = 0.8, smoothing.volume_neighbourhood((2.0, 1.0, 1.0))
    with np.errstate(divide="ignore"):
        log_post = np.log(model.predict_proba(X)).reshape(*truth.shape, 3)
    expected = reference_icm_3d(log_post, labels, (beta, beta * 0.5))
    info = smoothing.smooth_labels(model, X, labels, confidence.reshape(truth.shape), beta, neighbourhood=neighbourhood)
    assert info.converged and info.changed > 0
    assert np.array_equal(labels, expected)


def test_volume_neighbourhood_weighs_planes_by_spacing():
    assert smoothing.volume_neighbourhood(None) == smoothing.Neighbourhood(1.0, 0.0, 1.0)
    assert smoothing.volume_neighbourhood((3.0, 1.0, 1.0)).through == pytest.approx(1 / 3)
    assert smoothing.volume_neighbourhood((0.5, 1.0, 1.0)).through == 1.0  # thin slices count as much, not more
    assert smoothing.PLANE.total == pytest.approx(4 + 4 / math.sqrt(2))
    with pytest.raises(ValueError, match="spacing"):
        smoothing.volume_neighbourhood((0.0, 1.0, 1.0))


def test_potts_log_prior_counts_face_neighbours_in_3d():
    labels = np.ones((3, 3, 3), dtype=np.int32)
    labels[0, 1, 1], labels[2, 1, 1], labels[1, 0, 1] = 2, 3, 2
    centre = 13  # (1, 1, 1)
    prior = smoothing.potts_log_prior(labels, np.array([centre]), 2.0, 3, smoothing.volume_neighbourhood((4.0, 1.0, 1.0)))
    # in-plane: 3 of label 1, 1 of label 2 (weight 2 each); planes above and below: labels 2 and 3 (weight 0.5 each)
    assert prior[0] == pytest.approx([6.0, 2.5, 0.5])


# ------------------------------------------------------------------ the 3D bias field
def test_volume_bias_field_recovered_and_classes_as_under_flat_light():
    volume, truth = scan()
    result = segment.segment_volume(volume, n_components=3)
    estimate = np.stack([result.bias_field.plane(z)[:, :, 0] for z in range(truth.shape[0])])
    estimate /= np.exp(np.log(estimate).mean())
    error = np.abs(estimate / volume_field(truth.shape) - 1)
    assert error.max() < 0.05 and np.median(error) < 0.01
    accuracy = (result.labels == truth).mean()
    flat_light = segment.segment_volume(scan(field=False)[0], n_components=3)
    assert accuracy >= 0.98 and accuracy >= (flat_light.labels == truth).mean() - 0.005
    uncorrected = segment.segment_volume(volume, n_components=3, bias=False)
    assert (uncorrected.labels == truth).mean() < accuracy


def test_a_field_stronger_than_the_contrast_does_not_swallow_a_class():
    """Three close classes (0.45, 0.62, 0.80) in a fine random layout under a field of 0.59..1.69.

    Started from flat light, the classes follow the light and the alternation keeps them there
    (accuracy 0.35: one class swallowed); the second start from the image's own smooth part finds them.
    """
    rng = np.random.default_rng(0)
    shape = (40, 48, 48)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    truth = np.digitize(texture, np.quantile(texture, [0.3, 0.65])) + 1
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    field = np.exp(0.25 * (x + 0.6 * y * z - 0.5 * y))
    volume = np.array([0.0, 0.45, 0.62, 0.80])[truth] * field + rng.normal(0, 0.03, shape)
    result = segment.segment_volume(np.clip(volume * 1000, 0, None).astype(np.uint16), n_components=3)
    assert (result.labels == truth).mean() > 0.85


def test_segment_volume_classes_ordered_by_intensity_with_mask_and_channels():
    volume, truth = scan(field=False)
    mask = np.ones(truth.shape, dtype=bool)
    mask[:, :, :5] = False
    result = segment.segment_volume(volume, n_components=3, mask=mask, spacing=(2.0, 1.0, 1.0))
    assert result.labels.shape == truth.shape and result.labels.dtype == np.int32
    assert (result.labels[~mask] == 0).all()
    assert (result.labels[mask] == truth[mask]).mean() >= 0.98
    means = [c["mean_intensity"][0] for c in result.components]
    assert means == sorted(means)
    summary = result.summary()
    assert summary["mode"] == "classes" and summary["volume"]["spacing"] == [2.0, 1.0, 1.0]
    assert sum(c["voxel_count"] for c in summary["components"]) == mask.sum()
    assert sum(c["fraction"] for c in summary["components"]) == pytest.approx(1.0, abs=1e-4)
    channels = np.stack([volume, 255 - volume], axis=0)  # (C, Z, H, W)
    two_bands = segment.segment_volume(channels, channel_axis=0, n_components=3, bias=False)
    assert (two_bands.labels == truth).mean() >= 0.98


def test_segment_volume_refuses_regions_mode_and_bad_shapes():
    volume, _ = scan(shape=(4, 8, 8))
    with pytest.raises(ValueError, match="not available for volumes"):
        segment.segment_volume(volume, mode="regions")
    with pytest.raises(ValueError, match="channel_axis"):
        segment.segment_volume(volume[..., None])
    with pytest.raises(ValueError, match="mask has shape"):
        segment.segment_volume(volume, mask=np.ones((4, 8, 7)))


def test_specks_removed_only_by_min_size_with_3d_connectivity():
    labels = np.ones((5, 9, 9), dtype=np.int32)
    labels[2, 4, 4] = 2  # an isolated voxel
    labels[0:3, 1, 1] = 3  # three voxels joined through the planes
    kept = remove_specks(labels, 3)
    assert kept[2, 4, 4] == 1 and (kept[0:3, 1, 1] == 3).all()
    assert (remove_specks(labels, 4)[0:3, 1, 1] == 1).all()
    assert remove_specks(labels, 0) is labels


# ------------------------------------------------------------------ files and the CLI
def test_nifti_in_nifti_labels_out_with_affine_codes_and_zooms(tmp_path):
    volume, truth = scan()
    write_nifti(tmp_path / "t1.nii.gz", volume, AFFINE)
    result = runner.invoke(app, ["image", str(tmp_path / "t1.nii.gz"), "-k", "3", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    labels = nibabel.load(str(tmp_path / "out" / "t1_labels.nii.gz"))
    assert labels.get_data_dtype() == np.uint8
    np.testing.assert_allclose(labels.affine, AFFINE)
    assert int(labels.header["qform_code"]) == 1 and int(labels.header["sform_code"]) == 2
    np.testing.assert_allclose(labels.header.get_zooms(), (0.9, 1.1, 2.0), rtol=1e-6)
    assert (np.asarray(labels.dataobj).transpose(2, 1, 0) == truth).mean() >= 0.98
    summary = json.loads((tmp_path / "out" / "t1.json").read_text())
    assert summary["mode"] == "classes" and summary["volume"]["shape"] == list(truth.shape)
    assert summary["volume"]["spacing"] == pytest.approx([2.0, 1.1, 0.9])
    assert sorted(summary["outputs"]) == ["json", "labels"]  # the default pictures are skipped silently
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["t1.json", "t1_labels.nii.gz"]


def test_tiff_stack_with_volume_flag_keeps_resolution_and_spacing(tmp_path):
    volume, truth = scan(field=False)
    tifffile.imwrite(tmp_path / "stack.tif", np.clip(volume, 0, 255).astype(np.uint8), imagej=True, resolution=(2.0, 2.0),
                     metadata={"spacing": 1.5, "unit": "um", "axes": "ZYX"})
    kinds = "labels,confidence,bias,overlay,json"
    args = ["image", str(tmp_path / "stack.tif"), "--volume", "-k", "3", "--save", kinds, "-o", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "outputs overlay are not written for a volume" in result.output
    with tifffile.TiffFile(tmp_path / "out" / "stack_labels.tif") as tif:
        labels = tif.asarray()
        assert tif.imagej_metadata["spacing"] == 1.5 and tif.imagej_metadata["unit"] == "um"
        assert tif.pages[0].tags["XResolution"].value == (2, 1)
    assert labels.shape == truth.shape and labels.dtype == np.uint8
    assert (labels == truth).mean() >= 0.98
    summary = json.loads((tmp_path / "out" / "stack.json").read_text())
    assert summary["volume"]["spacing"] == [1.5, 0.5, 0.5]
    assert sorted(summary["outputs"]) == ["bias", "confidence", "json", "labels"]
    for kind in ("confidence", "bias"):
        values = tifffile.imread(tmp_path / "out" / f"stack_{kind}.tif")
        assert values.shape == truth.shape and values.dtype == np.float32
    confidence = tifffile.imread(tmp_path / "out" / "stack_confidence.tif")
    assert 0 < confidence.min() and confidence.max() <= 1 and np.median(confidence) > 0.9


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: path.write_bytes(b"\x1f\x8b\x08\x00garbage"), "cannot read NIfTI"),
        (lambda path: nibabel.save(nibabel.Nifti1Image(np.zeros((6, 6, 4, 3), np.int16), np.eye(4)), str(path)), "4-D time series of 3 volumes"),
    ],
    ids=["corrupt", "time-series"],
)
def test_bad_nifti_is_one_line_and_no_output(tmp_path, make, message):
    make(tmp_path / "bad.nii.gz")
    result = runner.invoke(app, ["image", str(tmp_path / "bad.nii.gz"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'bad.nii.gz'}: ") and message in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_regions_mode_on_a_volume_is_refused_in_one_line(tmp_path):
    write_nifti(tmp_path / "v.nii", scan(shape=(4, 8, 8))[0], AFFINE)
    result = runner.invoke(app, ["image", str(tmp_path / "v.nii"), "--mode", "regions", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {tmp_path / 'v.nii'}: mode 'regions' is not available for volumes (no 3-D region graph); use mode 'classes'"


def test_batch_segments_a_folder_of_volumes_and_resumes(tmp_path):
    indir = tmp_path / "in"
    indir.mkdir()
    volume, truth = scan(shape=(12, 20, 20), field=False)
    write_nifti(indir / "a.nii.gz", volume, AFFINE)
    write_nifti(indir / "b.nii", volume[:, ::-1], AFFINE)
    args = ["batch", str(indir), "-o", str(tmp_path / "out"), "-k", "3", "--workers", "1", "-q"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert (tmp_path / "out" / "a_labels.nii.gz").is_file() and (tmp_path / "out" / "b_labels.nii").is_file()
    labels = np.asarray(nibabel.load(str(tmp_path / "out" / "a_labels.nii.gz")).dataobj).transpose(2, 1, 0)
    assert (labels == truth).mean() >= 0.97
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["images"]
    assert [row["status"] for row in rows] == ["done", "done"]
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    rows = json.loads((tmp_path / "out" / "summary.json").read_text())["images"]
    assert [row["status"] for row in rows] == ["skipped", "skipped"]
