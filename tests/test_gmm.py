import warnings

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from segment.gmm import ConvergenceWarning, GaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
TRUE_MEANS = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [-4.0, 5.0, 3.0]])


@pytest.fixture(scope="module")
def blobs():
    """Samples from a known 3-component mixture, with their true components."""
    rng = np.random.default_rng(0)
    weights = [0.5, 0.3, 0.2]
    scales = [1.0, 0.6, 1.5]
    truth = rng.choice(3, size=4000, p=weights)
    X = TRUE_MEANS[truth] + rng.normal(size=(4000, 3)) * np.take(scales, truth)[:, None]
    return X, truth


def _initial(covariance_type, X):
    K, D = 3, X.shape[1]
    precisions = {
        "full": np.stack([np.eye(D) * (k + 1) for k in range(K)]),
        "tied": np.eye(D) * 0.5,
        "diag": np.ones((K, D)) * [[1.0], [2.0], [0.5]],
        "spherical": np.array([1.0, 0.5, 2.0]),
    }[covariance_type]
    return dict(weights_init=np.array([0.2, 0.3, 0.5]), means_init=X[[0, 1, 2]], precisions_init=precisions)


def _rel(a, b):
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_matches_scikit_learn_from_the_same_start(blobs, covariance_type):
    X, _ = blobs
    kwargs = dict(n_components=3, covariance_type=covariance_type, max_iter=8, tol=0, reg_covar=1e-6)
    kwargs.update(_initial(covariance_type, X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neither converges within 8 iterations with tol=0
        ours = GaussianMixture(**kwargs).fit(X)
        ref = SkGaussianMixture(**kwargs).fit(X)
    assert _rel(ours.weights_, ref.weights_) < 1e-6
    assert _rel(ours.means_, ref.means_) < 1e-6
    assert _rel(ours.covariances_, ref.covariances_) < 1e-6
    assert _rel(ours.precisions_cholesky_, ref.precisions_cholesky_) < 1e-6
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-6)
    assert _rel(ours.score_samples(X), ref.score_samples(X)) < 1e-6
    assert np.abs(ours.predict_proba(X) - ref.predict_proba(X)).max() < 1e-6
    # log(weight * density) minus log p(x) is the log-posterior
    log_posteriors = ours.weighted_log_prob(X) - ref.score_samples(X)[:, None]
    assert np.abs(np.exp(log_posteriors) - ref.predict_proba(X)).max() < 1e-6
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-6)
    assert ours.aic(X) == pytest.approx(ref.aic(X), rel=1e-6)
    assert ours.n_iter_ == ref.n_iter_ == 8


def test_float32_features_agree_with_float64(blobs):
    X, _ = blobs
    kwargs = dict(n_components=3, max_iter=10, tol=0, **_initial("full", X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        single = GaussianMixture(**kwargs).fit(X.astype(np.float32))
        double = GaussianMixture(**kwargs).fit(X)
    assert np.abs(single.means_ - double.means_).max() < 1e-3
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-5)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans++", "random_from_data"])
def test_recovers_known_components(blobs, covariance_type, init_params):
    X, truth = blobs
    # Random points land in separate clusters only sometimes: more restarts for that method.
    n_init = 2 if init_params == "kmeans++" else 10
    model = GaussianMixture(3, covariance_type=covariance_type, init_params=init_params, n_init=n_init, random_state=0)
    labels = model.fit_predict(X)
    assert adjusted_rand_score(truth, labels) > 0.95
    assert model.converged_
    history = np.array(model.log_likelihood_history_)
    assert np.all(np.diff(history) > -1e-9), "EM log-likelihood decreased"
    assert np.allclose(model.predict_proba(X).sum(axis=1), 1.0)
    assert np.array_equal(model.predict(X), model.predict_proba(X).argmax(axis=1))
    order = np.argsort(model.means_[:, 0])
    assert np.allclose(model.means_[order][:, 0], np.sort(TRUE_MEANS[:, 0]), atol=0.15)


def test_weighted_log_prob_keeps_float32(blobs):
    X, _ = blobs
    model = GaussianMixture(3, random_state=0).fit(X)
    single = model.weighted_log_prob(X.astype(np.float32))
    assert single.dtype == np.float32 and single.shape == (len(X), 3)
    assert np.abs(single - model.weighted_log_prob(X)).max() < 1e-3


def test_label_gives_argmax_and_its_posterior(blobs):
    X, _ = blobs
    model = GaussianMixture(3, random_state=0).fit(X)
    labels, confidence = model.label(X)
    proba = model.predict_proba(X)
    assert labels.dtype == np.int32 and confidence.dtype == np.float32
    assert np.array_equal(labels, proba.argmax(axis=1))
    assert np.allclose(confidence, proba.max(axis=1), atol=1e-6)


def test_same_seed_same_fit_and_different_seed_runs(blobs):
    X, _ = blobs
    a = GaussianMixture(3, random_state=7).fit(X)
    b = GaussianMixture(3, random_state=7).fit(X)
    assert np.array_equal(a.means_, b.means_)


def test_convergence_warning_when_max_iter_too_small(blobs):
    X, _ = blobs
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = GaussianMixture(3, max_iter=1, random_state=0).fit(X)
    assert not model.converged_ and model.n_iter_ == 1


def test_permute_components(blobs):
    X, _ = blobs
    model = GaussianMixture(3, random_state=0).fit(X)
    proba = model.predict_proba(X)
    model.permute_components([2, 0, 1])
    assert np.allclose(model.predict_proba(X), proba[:, [2, 0, 1]])


def test_errors_explain_themselves(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(X[:3])
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(2, covariance_type="banded").fit(X)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).fit(np.array([[0.0], [np.nan], [1.0]]))
    with pytest.raises(AttributeError, match="not fitted"):
        GaussianMixture(2).predict(X)
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :2])


def test_save_load_roundtrip_and_corrupt_files(blobs, tmp_path):
    X, _ = blobs
    model = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    model.save(tmp_path / "m.npz", metadata={"color_space": "lab"})
    loaded = GaussianMixture.load(tmp_path / "m.npz")
    assert loaded.metadata_ == {"color_space": "lab"}
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert np.allclose(loaded.score_samples(X), model.score_samples(X))
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a segment model file"):
        GaussianMixture.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", weights=np.ones(2))
    with pytest.raises(ValueError, match="not a segment model file"):
        GaussianMixture.load(tmp_path / "other.npz")


@pytest.mark.parametrize("n_points, n_features, n_centres", [(1, 1, 1), (700, 3, 5), (5000, 5, 8)])
def test_kmeans_assignment_matches_a_direct_computation(n_points, n_features, n_centres):
    """The k-means kernels give every point its nearest centre (ties: the lower index) and the exact weighted sums."""
    from segment.gmm import init

    rng = np.random.default_rng(n_points)
    points = np.round(rng.normal(size=(n_points, n_features)) * 3)  # integer coordinates: many ties
    weights = rng.uniform(0.5, 2.0, n_points)
    centres = points[rng.choice(n_points, n_centres)] + np.where(np.arange(n_centres)[:, None] % 2, 0.0, 0.5)
    counts, sums, inertia = init._assign(np.ascontiguousarray(points.T), weights, centres)

    distance = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2)
    nearest = distance.argmin(axis=1)  # argmin keeps the first of equal values
    expected_counts = np.bincount(nearest, weights=weights, minlength=n_centres)
    expected_sums = np.stack([np.bincount(nearest, weights=weights * points[:, d], minlength=n_centres)
                              for d in range(n_features)], axis=1)
    np.testing.assert_allclose(counts, expected_counts, rtol=1e-12)
    np.testing.assert_allclose(sums, expected_sums, rtol=1e-12, atol=1e-9)
    assert inertia == pytest.approx(float((weights * distance.min(axis=1)).sum()), rel=1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_a_warm_start_is_the_given_parameters_without_seeding(blobs, covariance_type):
    from segment.gmm.init import SEEDING_SAMPLE, initial_parameters

    X = np.tile(blobs[0], (SEEDING_SAMPLE // len(blobs[0]) + 1, 1))  # more rows than seeding would keep
    start = GaussianMixture(3, covariance_type=covariance_type, random_state=0, max_iter=5).fit(blobs[0])
    rng = np.random.default_rng(4)
    params = initial_parameters(
        X, 3, rng, covariance_type=covariance_type,
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_,
    )
    np.testing.assert_array_equal(params.weights, start.weights_)
    np.testing.assert_array_equal(params.means, start.means_)
    np.testing.assert_allclose(params.covariances, start.covariances_, rtol=1e-10)
    assert rng.random() == np.random.default_rng(4).random()  # nothing was drawn


def test_kmeans_centres_do_not_depend_on_the_thread_count(monkeypatch):
    from segment import threads
    from segment.gmm.init import kmeans_centres

    rng = np.random.default_rng(3)
    points = np.concatenate([rng.normal(c, 1.0, size=(3000, 4)) for c in (0.0, 3.0, 6.0, 9.0, 12.0)])
    weights = rng.uniform(0.5, 2.0, size=len(points))
    monkeypatch.setattr(threads, "available", lambda: 4)
    with threads.limited(1):
        one = kmeans_centres(points, weights, 6, np.random.default_rng(0))
    several = kmeans_centres(points, weights, 6, np.random.default_rng(0))
    np.testing.assert_array_equal(one, several)
