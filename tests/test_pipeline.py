import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import segment
from segment import SegmentConfig, pipeline, segment_image
from conftest import PLAIN


def test_synthetic_scene_matches_truth(synthetic):
    image, truth = synthetic
    result = segment_image(image, n_components=4)
    assert result.labels.shape == truth.shape and result.labels.dtype == np.int32
    assert adjusted_rand_score(truth.ravel(), result.labels.ravel()) >= 0.95


def test_quadrants_get_one_label_each(quadrants):
    result = segment_image(quadrants, n_components=4, position_weight=0)
    quads = [result.labels[:10, :10], result.labels[:10, 10:], result.labels[10:, :10], result.labels[10:, 10:]]
    assert all(len(np.unique(q)) == 1 for q in quads)
    assert len({int(q[0, 0]) for q in quads}) == 4


def test_labels_ordered_by_luminance(quadrants):
    result = segment_image(quadrants, n_components=4, position_weight=0, **PLAIN)
    # blue (30, 30, 200) is the darkest quadrant, yellow (220, 220, 40) the lightest
    assert result.labels[15, 5] == 1 and result.labels[15, 15] == 4


def test_uint8_uint16_and_float_images_segment_identically(quadrants):
    as8 = segment_image(quadrants, n_components=4).labels
    as16 = segment_image(quadrants.astype(np.uint16) * 257, n_components=4).labels
    asfloat = segment_image(quadrants / 255.0, n_components=4).labels
    assert np.array_equal(as8, as16) and np.array_equal(as8, asfloat)


def test_same_seed_same_labels_and_input_untouched(synthetic):
    image, _ = synthetic
    frozen = image.copy()
    frozen.flags.writeable = False
    a = segment_image(frozen, seed=3).labels
    b = segment_image(np.asfortranarray(frozen), seed=3).labels
    assert np.array_equal(a, b)
    assert np.array_equal(frozen, image)


def test_transparent_pixels_get_background_label(quadrants):
    rgba = np.dstack([quadrants, np.full(quadrants.shape[:2], 255, np.uint8)])
    rgba[:5, :, 3] = 0
    result = segment_image(rgba, n_components=4, position_weight=0)
    assert (result.labels[:5] == 0).all()
    assert (result.labels[5:] > 0).all()
    assert (result.confidence[:5] == 0).all()


def test_fit_sample_labels_every_pixel(synthetic):
    image, truth = synthetic
    result = segment_image(image, n_components=4, fit_sample=3000)
    assert adjusted_rand_score(truth.ravel(), result.labels.ravel()) >= 0.95


def test_coarse_fit_leaves_few_iterations_on_the_whole_sample():
    rng = np.random.default_rng(0)
    means = np.array([[20.0, 0, 0, 0.1, 0.1], [60, 20, -10, 0.5, 0.5], [80, -30, 40, 0.9, 0.2], [40, 5, 5, 0.2, 0.8]])
    truth = rng.choice(4, size=200_000, p=[0.4, 0.3, 0.2, 0.1])
    sample = (means[truth] + rng.normal(size=(len(truth), 5)) * [8, 6, 6, 0.2, 0.2]).astype(np.float32)
    cfg = SegmentConfig(n_components=4)
    model = pipeline._fit_coarse_to_fine(4, sample, cfg, np.random.default_rng(0))
    plain = pipeline._new_model(4, cfg).fit(sample)  # EM on everything from k-means++
    assert adjusted_rand_score(truth, model.predict(sample)) > 0.97
    assert model.score(sample) == pytest.approx(plain.score(sample), abs=1e-3)
    assert model.n_iter_ <= 3 and plain.n_iter_ >= 10


def test_auto_components_finds_four_classes(synthetic):
    image, _ = synthetic
    result = segment_image(image, n_components="auto", color_space="rgb", position_weight=0, auto_range=(2, 7))
    assert result.model.n_components == 4
    scores = result.summary()["auto_components"]["scores"]
    # The score of K: how far apart the closest two of K merged groups are; 4 separated classes, then overlap.
    assert sorted(map(int, scores)) == list(range(2, 8)) and scores["4"] > 1 > scores["5"]
    assert "auto_components" not in segment_image(image, n_components=4, position_weight=0).summary()


def test_postprocessing_options_are_applied(synthetic):
    image, _ = synthetic
    plain = segment_image(image, n_components=8, **PLAIN)
    merged = segment_image(image, n_components=8, **{**PLAIN, "min_size": 200})
    regions = segment_image(image, n_components=4, **{**PLAIN, "min_size": 200, "relabel": True})
    count = lambda labels: len(np.unique(segment.postprocess.relabel_regions(labels)))
    assert count(merged.labels) < count(plain.labels)
    assert regions.labels.max() == len(np.unique(regions.labels))


def test_downscale_and_denoise(synthetic):
    image, _ = synthetic
    for method in ("gaussian", "median", "bilateral"):
        result = segment_image(image, n_components=4, max_side=100, denoise=method)
        assert result.labels.shape == (75, 100)


def test_save_writes_outputs_and_summary(synthetic, tmp_path):
    image, _ = synthetic
    result = segment_image(image, n_components=4, save=("labels", "color", "overlay", "confidence", "json"))
    paths = result.save(tmp_path, stem="scene")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
    summary = json.loads(paths["json"].read_text())
    assert summary["n_components"] == 4
    assert summary["settings"]["n_components"] == 4
    assert sum(c["pixel_count"] for c in summary["components"]) == image.shape[0] * image.shape[1]
    assert summary["iterations"] == len(summary["log_likelihood_history"])
    assert set(summary["timings"]) >= {"fit", "label", "total"}
    assert np.load(paths["confidence"]).shape == image.shape[:2]


def test_bad_settings_raise_value_error_naming_the_field(quadrants):
    with pytest.raises(ValueError, match="position_weight"):
        segment_image(quadrants, position_weight=-1)
    with pytest.raises(TypeError, match="unknown SegmentConfig field"):
        segment_image(quadrants, colour="lab")


def test_config_object_and_overrides(quadrants):
    config = SegmentConfig(n_components=2)
    assert segment_image(quadrants, config).model.n_components == 2
    assert segment_image(quadrants, config, n_components=3).model.n_components == 3


def test_greyscale_and_sixteen_bit_paths(samples):
    result = segment_image(samples / "coins.png", n_components=3)
    assert result.labels.shape == (303, 384)
    assert result.feature_names == ["I", "x", "y"]
    assert result.source.endswith("coins.png")


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (1, 3)])
def test_tiny_images_get_fewer_components_with_a_warning(shape):
    image = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape) * 60
    with pytest.warns(UserWarning, match="n_components reduced from 8"):
        result = segment_image(image)
    assert result.labels.shape == shape and result.labels.min() >= 1
    assert result.model.n_components == len(np.unique(image))


def test_n_jobs_limits_the_kernel_threads(monkeypatch, samples):
    from segment import threads

    counts = []
    run_parts = threads.run_parts

    def counting(*args, **kwargs):
        counts.append(threads.count())
        return run_parts(*args, **kwargs)

    monkeypatch.setattr(threads, "available", lambda: 4)
    monkeypatch.setattr(threads, "run_parts", counting)
    segment_image(str(samples / "coffee.jpg"), n_jobs=1)
    assert counts and set(counts) == {1}
    counts.clear()
    segment_image(str(samples / "coffee.jpg"))
    assert set(counts) == {4}
