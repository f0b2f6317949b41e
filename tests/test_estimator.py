"""GaussianMixture as a scikit-learn estimator: scikit-learn's own checks, composition, weights, memory."""

import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from segment.gmm import ConvergenceWarning, GaussianMixture
from segment.gmm.mixture import ROWS_PER_PASS

# Checks that GaussianMixture cannot pass, with the reason (none at present).
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks([GaussianMixture()], expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    truth = rng.integers(3, size=600)
    X = np.array([[0.0, 0.0], [8.0, 1.0], [-3.0, 7.0]])[truth] + rng.normal(size=(600, 2))
    return X, truth


def test_clone_get_params_and_repr():
    model = GaussianMixture(3, warm_start=True, covariance_type="diag")
    assert model.get_params()["warm_start"] is True
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    assert repr(model) == "GaussianMixture(covariance_type='diag', n_components=3, warm_start=True)"


def test_pipeline_and_grid_search_choose_the_true_number_of_components(blobs):
    X, _ = blobs
    pipeline = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    assert pipeline.predict(X).shape == (len(X),)
    search = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 3]}, cv=3).fit(X)
    assert search.best_params_ == {"n_components": 3}


def test_not_fitted_error_before_fit(blobs):
    X, _ = blobs
    for method in ("predict", "predict_proba", "score_samples", "label", "weighted_log_prob"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(GaussianMixture(2), method)(X)
    with pytest.raises(NotFittedError):
        GaussianMixture(2).sample(3)


def test_float32_stays_float32(blobs):
    X, _ = blobs
    model = GaussianMixture(3, random_state=0).fit(X.astype(np.float32))
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(model, name).dtype == np.float32, name
    single = X.astype(np.float32)
    assert model.predict_proba(single).dtype == np.float32
    assert model.score_samples(single).dtype == np.float32
    assert model.sample(5)[0].dtype == np.float32


def test_sample_follows_the_fitted_mixture(blobs):
    X, _ = blobs
    model = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    drawn, components = model.sample(30_000)
    assert drawn.shape == (30_000, 2)
    for k in range(3):
        assert np.mean(components == k) == pytest.approx(model.weights_[k], abs=0.01)
        assert np.allclose(drawn[components == k].mean(axis=0), model.means_[k], atol=0.05)
        assert np.allclose(np.cov(drawn[components == k].T), model.covariances_[k], atol=0.08)


def test_warm_start_continues_from_the_fitted_parameters(blobs):
    X, _ = blobs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold = GaussianMixture(3, max_iter=6, tol=0, random_state=0).fit(X)
        warm = GaussianMixture(3, max_iter=3, tol=0, random_state=0, warm_start=True).fit(X)
        warm.fit(X)
    assert warm.n_iter_ == 3
    np.testing.assert_allclose(warm.means_, cold.means_, rtol=1e-10)
    assert warm.lower_bounds_ == pytest.approx(cold.lower_bounds_[3:], rel=1e-12)


def test_verbose_reports_iterations(blobs, capsys):
    X, _ = blobs
    GaussianMixture(3, verbose=2, verbose_interval=1, random_state=0).fit(X)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Iteration 1" in out and "converged" in out


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
def test_weighted_fit_equals_fit_on_repeated_rows(blobs, init_params):
    X, _ = blobs
    counts = np.random.default_rng(1).integers(0, 5, size=len(X))
    settings = dict(n_components=3, init_params=init_params, tol=1e-10, max_iter=300, random_state=4)
    weighted = GaussianMixture(**settings).fit(X, sample_weight=counts)
    repeated = GaussianMixture(**settings).fit(np.repeat(X, counts, axis=0))
    assert weighted.n_iter_ == repeated.n_iter_ > 2
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-6, atol=1e-9)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-9)


def test_sample_weight_errors(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="shape"):
        GaussianMixture(2).fit(X, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        GaussianMixture(2).fit(X, sample_weight=-np.ones(len(X)))


def test_partial_fit_accumulates_statistics(blobs):
    X, truth = blobs
    start = GaussianMixture(3, random_state=0).fit(X[:100])
    streamed = pickle.loads(pickle.dumps(start))
    for chunk in np.array_split(X[100:], 5):
        streamed.partial_fit(chunk)
    assert streamed.n_iter_ == start.n_iter_ + 5
    assert streamed.statistics_.total_weight == len(X) - 100
    # Each step is the M-step of everything seen, so the streamed model is the full-data fit's neighbour.
    full = GaussianMixture(3, random_state=0).fit(X)
    order = [int(np.argmin(np.abs(full.means_ - m).sum(axis=1))) for m in streamed.means_]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(streamed.means_, full.means_[order], atol=0.1)
    with pytest.raises(ValueError, match="features"):
        streamed.partial_fit(X[:, :1])


def test_predict_proba_memory_is_the_output_plus_a_pass():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2_000_000, 5)).astype(np.float32)
    model = GaussianMixture(8, max_iter=2, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:20_000])
    model.predict_proba(X[:10])  # compile outside the measurement
    tracemalloc.start()
    proba = model.predict_proba(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak - proba.nbytes < ROWS_PER_PASS * 4 + 2**20
    np.testing.assert_allclose(proba[:1000], model.predict_proba(X[:1000]), rtol=1e-6)
    tracemalloc.start()
    model.score_samples(X)
    assert tracemalloc.get_traced_memory()[1] < len(X) * 4 + 2**20
    tracemalloc.stop()


def test_inference_on_no_rows(blobs):
    X, _ = blobs
    model = GaussianMixture(3, random_state=0).fit(X)
    labels, confidence = model.label(X[:0])
    assert labels.shape == confidence.shape == (0,)
    assert model.predict_proba(X[:0]).shape == (0, 3) and model.weighted_log_prob(X[:0]).shape == (0, 3)


def test_one_sample_fits_one_component():
    model = GaussianMixture(1).fit([[2.0, 3.0]])
    np.testing.assert_array_equal(model.means_, [[2.0, 3.0]])
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(2).fit([[2.0, 3.0]])
