import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from segment import segment_image, smoothing, threads
from segment.gmm import GaussianMixture
from segment.postprocess import relabel_regions
from conftest import PLAIN


def noisy_scene(seed=0, shape=(48, 64), sigma=45.0):
    """Three colour blocks with heavy noise: per-pixel classes are speckled, the truth is not."""
    rng = np.random.default_rng(seed)
    truth = np.ones(shape, dtype=np.int32)
    truth[:, shape[1] // 3 :] = 2
    truth[shape[0] // 2 :, 2 * shape[1] // 3 :] = 3
    colours = np.array([[60, 60, 60], [150, 110, 90], [110, 160, 190]], dtype=np.float64)
    image = colours[truth - 1] + rng.normal(0, sigma, (*shape, 3))
    return np.clip(image, 0, 255).astype(np.uint8), truth


def fitted_problem(seed=0):
    image, truth = noisy_scene(seed)
    X = image.reshape(-1, 3).astype(np.float32)
    model = GaussianMixture(3, random_state=0).fit(X)
    labels, confidence = model.label(X)
    return model, X, (labels + 1).reshape(truth.shape), confidence.reshape(truth.shape), truth


def reference_icm(model, X, labels, beta, sweeps=50):
    """Readable ICM: sweeps over the four parity phases, every pixel examined, ties keep the label."""
    labels = labels.copy()
    H, W = labels.shape
    with np.errstate(divide="ignore"):
        log_post = np.log(model.predict_proba(X)).reshape(H, W, -1)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    for _ in range(sweeps):
        changed = 0
        for py, px in ((0, 0), (0, 1), (1, 0), (1, 1)):
            for y in range(py, H, 2):
                for x in range(px, W, 2):
                    score = log_post[y, x].copy()
                    for dy, dx in offsets:
                        if 0 <= y + dy < H and 0 <= x + dx < W:
                            score[labels[y + dy, x + dx] - 1] += beta * (1 if dy == 0 or dx == 0 else 1 / math.sqrt(2))
                    best = int(np.argmax(score))
                    if score[best] > score[labels[y, x] - 1] + 1e-4:
                        labels[y, x] = best + 1
                        changed += 1
        if not changed:
            break
    return labels


@pytest.mark.parametrize("beta", [0.7, 2.0])
def test_icm_matches_a_readable_reference(beta):
    model, X, labels, confidence, _ = fitted_problem()
    expected = reference_icm(model, X, labels, beta)
    info = smoothing.smooth_labels(model, X, labels, confidence, beta)
    assert info.converged and info.changed > 0
    assert np.array_equal(labels, expected)


def test_icm_same_result_serial_parallel_and_any_thread_count(monkeypatch):
    model, X, start, confidence, _ = fitted_problem(seed=1)
    monkeypatch.setattr(threads, "available", lambda: 3)  # three parts even on a one-core machine
    results = []
    for pixels_per_thread, n_threads in ((10**9, 3), (1, 1), (1, 2), (1, 3)):
        monkeypatch.setattr(smoothing, "PIXELS_PER_THREAD", pixels_per_thread)
        labels, conf = start.copy(), confidence.copy()
        with threads.limited(n_threads):
            smoothing.smooth_labels(model, X, labels, conf, 1.5)
        results.append((labels, conf))
    for labels, conf in results[1:]:
        assert np.array_equal(labels, results[0][0]) and np.array_equal(conf, results[0][1])


def test_smoothing_confidence_is_the_posterior_under_the_prior():
    model, X, labels, confidence, _ = fitted_problem()
    before = confidence.copy()
    smoothing.smooth_labels(model, X, labels, confidence, 2.0)
    assert ((confidence > 0) & (confidence <= 1)).all()
    # Speckle pixels that joined their neighbours are now more certain than the mixture alone was.
    assert confidence.mean() > before.mean()


def test_zero_beta_changes_nothing_and_bad_arguments_are_refused():
    model, X, labels, confidence, _ = fitted_problem()
    frozen = labels.copy()
    info = smoothing.smooth_labels(model, X, labels, confidence, 0.0)
    assert info.sweeps == 0 and np.array_equal(labels, frozen)
    with pytest.raises(ValueError, match="beta"):
        smoothing.smooth_labels(model, X, labels, confidence, -1.0)
    with pytest.raises(TypeError, match="int32"):
        smoothing.smooth_labels(model, X, labels.astype(np.int64), confidence, 1.0)


def test_unlabelled_pixels_are_left_alone_and_cast_no_vote():
    model, X, labels, confidence, _ = fitted_problem()
    valid = np.ones(labels.size, dtype=bool)
    valid[: labels.shape[1] * 5] = False  # top five rows transparent
    labels.reshape(-1)[~valid] = 0
    info = smoothing.smooth_labels(model, X[valid], labels, confidence, 2.0, valid=valid)
    assert info.changed > 0
    assert (labels[:5] == 0).all() and (labels[5:] > 0).all()


def test_pipeline_smoothing_removes_speckle_and_raises_agreement():
    image, truth = noisy_scene(seed=2, shape=(60, 90))
    plain = segment_image(image, n_components=3, position_weight=0, **PLAIN)
    smooth = segment_image(image, n_components=3, position_weight=0, **{**PLAIN, "smoothing": 1.5})
    assert "smooth" in smooth.timings and "smooth" not in plain.timings
    regions = lambda labels: relabel_regions(labels).max()
    assert regions(smooth.labels) < regions(plain.labels) / 5
    ari = lambda result: adjusted_rand_score(truth.ravel(), result.labels.ravel())
    assert ari(plain) < 0.5 and ari(smooth) > 0.95


def test_refitting_under_the_prior_beats_smoothing_a_plain_fit():
    image, truth = noisy_scene(seed=2, shape=(60, 90))
    plain = segment_image(image, n_components=3, position_weight=0, smoothing=0.0)
    # With a given model there is no refit: ICM only, on the speckle-fitted mixture.
    icm_only = segment_image(image, model=plain.model, smoothing=1.5)
    hmrf = segment_image(image, n_components=3, position_weight=0, smoothing=1.5)
    ari = lambda result: adjusted_rand_score(truth.ravel(), result.labels.ravel())
    assert ari(hmrf) > ari(icm_only) + 0.05


def test_potts_log_prior_counts_agreeing_neighbours():
    labels = np.array([[1, 1, 2], [1, 2, 2], [3, 3, 2]], dtype=np.int32)
    prior = smoothing.potts_log_prior(labels, np.array([4, 0]), 2.0, 3)
    d = 2.0 / math.sqrt(2)
    # centre: edge neighbours 1 (up), 1 (left), 2 (right), 3 (down); diagonals 1, 2, 3, 2
    assert prior[0] == pytest.approx([2 * 2.0 + d, 2.0 + 2 * d, 2.0 + d])
    # corner (0, 0): right 1, down 1, diagonal 2
    assert prior[1] == pytest.approx([4.0, d, 0.0])


def test_icm_with_options_never_takes_a_label_a_pixel_may_not_have():
    # A 3 x 3 patch of label 7 with a centre that may only become 2 or 3: the
    # neighbours' votes for 7 must not count, and the data term decides.
    labels = np.full((3, 3), 7, dtype=np.int32)
    labels[1, 1] = 2
    candidate = np.full((3, 3), -1, dtype=np.int32)
    candidate[1, 1] = 0
    options = np.array([[2, 3, 0]], dtype=np.int32)  # 0 pads the row
    data = np.array([[-5.0, -1.0, -np.inf]], dtype=np.float32)
    smoothing.run_icm(labels, candidate, data, 10.0, 5, options, np.zeros(1, dtype=np.int32))
    assert labels[1, 1] == 3
    # The same when the neighbours carry one of the options: their votes now decide.
    labels[:] = 2
    labels[1, 1] = 3
    smoothing.run_icm(labels, candidate, data, 10.0, 5, options, np.zeros(1, dtype=np.int32))
    assert labels[1, 1] == 2
