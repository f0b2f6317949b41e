"""Tests for segment.metrics (BSDS500 region benchmarks)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from segment.metrics import (
    DatasetScores,
    ImageScores,
    contingency_table,
    covering_terms,
    evaluate,
    load_ground_truth,
    rand_index,
    summarize,
    variation_of_information,
)

BSDS_VAL = Path("/work/shared/bsds500/groundTruth/val")

# Hand-computed 2x2 case. Pixels a b / c d.
#   pred  = [[0, 0], [1, 1]]  -> P0 = {a, b}, P1 = {c, d}
#   truth = [[0, 0], [0, 1]]  -> T0 = {a, b, c}, T1 = {d}
# Contingency table [[2, 0], [1, 1]], N = 4, 6 pixel pairs.
# RI: pairs ab (same/same), ad, bd (diff/diff) agree; ac, bc, cd disagree -> 3/6 = 0.5.
#     Formula: (8/2 + 10/2 - 6) / 6 = 3/6 disagreeing -> RI = 0.5.
# VoI: H(S) = 1, H(G) = 2 - 0.75 log2 3, H(S, G) over (1/2, 1/4, 1/4) = 1.5,
#      VoI = 2 H(S, G) - H(S) - H(G) = 3 - 1 - 2 + 0.75 log2 3 = 0.75 log2 3.
# Covering: T0 (|3|) best IoU with P0 = 2/3 -> 2; T1 (|1|) best IoU with P1 = 1/2 -> 0.5;
#           sum 2.5 over 4 pixels -> 0.625.
PRED_2X2 = np.array([[0, 0], [1, 1]])
TRUTH_2X2 = np.array([[0, 0], [0, 1]])

# One segment against a two-region 3x3 truth: top row label 1 (3 px), rest label 2 (6 px).
# RI: agreeing pairs are those inside one truth region: C(3,2) + C(6,2) = 18 of 36 -> 0.5.
# VoI: H(S) = 0, I = 0, so VoI = H(G) = log2(3) - 2/3.
# Covering: 3 * (3/9) + 6 * (6/9) = 5 over 9 pixels -> 5/9.
ONE_SEGMENT = np.zeros((3, 3), dtype=np.int64)
TWO_REGIONS = np.array([[1, 1, 1], [2, 2, 2], [2, 2, 2]])


def brute_force_rand_index(pred: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of pixel pairs grouped the same way by both images."""
    p, t = pred.ravel(), truth.ravel()
    pairs = list(itertools.combinations(range(p.size), 2))
    agree = sum((p[i] == p[j]) == (t[i] == t[j]) for i, j in pairs)
    return agree / len(pairs)


def entropy_bits(labels: np.ndarray) -> float:
    _, counts = np.unique(labels, return_counts=True)
    prob = counts / counts.sum()
    return float(-np.sum(prob * np.log2(prob)))


def test_contingency_table_hand_case():
    table = contingency_table(PRED_2X2, TRUTH_2X2)
    assert table.dtype == np.int64
    np.testing.assert_array_equal(table, [[2, 0], [1, 1]])


def test_contingency_table_sparse_labels_are_compacted():
    pred = np.array([[5, 5, 100_000], [7_000_000, 5, 100_000]])
    truth = np.array([[3, 9, 9], [3, 3, 9]])
    table = contingency_table(pred, truth)
    np.testing.assert_array_equal(table, [[2, 1], [0, 2], [1, 0]])
    assert table.sum() == pred.size


def test_hand_computed_2x2():
    assert abs(rand_index(PRED_2X2, TRUTH_2X2) - 0.5) < 1e-12
    assert abs(variation_of_information(PRED_2X2, TRUTH_2X2) - 0.75 * math.log2(3)) < 1e-12
    weighted, total = covering_terms(PRED_2X2, TRUTH_2X2)
    assert abs(weighted - 2.5) < 1e-12
    assert total == 4


def test_one_segment_against_two_regions():
    assert abs(rand_index(ONE_SEGMENT, TWO_REGIONS) - 0.5) < 1e-12
    expected_voi = math.log2(3) - 2 / 3
    assert abs(variation_of_information(ONE_SEGMENT, TWO_REGIONS) - expected_voi) < 1e-12
    weighted, total = covering_terms(ONE_SEGMENT, TWO_REGIONS)
    assert abs(weighted - 5.0) < 1e-12
    assert total == 9
    scores = evaluate(ONE_SEGMENT, [TWO_REGIONS])
    assert abs(scores.covering - 5 / 9) < 1e-12
    assert scores.n_segments == 1


def test_identical_segmentations_are_perfect():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(8, 9))
    assert rand_index(labels, labels) == pytest.approx(1.0, abs=1e-12)
    assert variation_of_information(labels, labels) == pytest.approx(0.0, abs=1e-12)
    weighted, total = covering_terms(labels, labels)
    assert weighted / total == pytest.approx(1.0, abs=1e-12)


def test_label_permutation_invariance():
    rng = np.random.default_rng(1)
    pred = rng.integers(0, 4, size=(10, 12))
    truth = rng.integers(0, 3, size=(10, 12))
    relabel = np.array([900, 3, 41, 12])  # a permutation onto sparse values
    relabelled = relabel[pred]
    assert rand_index(relabelled, truth) == pytest.approx(rand_index(pred, truth), abs=1e-12)
    assert variation_of_information(relabelled, truth) == pytest.approx(
        variation_of_information(pred, truth), abs=1e-12
    )
    assert covering_terms(relabelled, truth)[0] == pytest.approx(
        covering_terms(pred, truth)[0], abs=1e-12
    )
    # The measures must actually depend on the data, not only on the label sets.
    assert rand_index(pred, truth) < 0.99


def test_rand_index_matches_brute_force_pair_counting():
    rng = np.random.default_rng(2)
    pred = rng.integers(0, 4, size=(6, 7))
    truth = rng.integers(10, 13, size=(6, 7))
    expected = brute_force_rand_index(pred, truth)
    assert 0.0 < expected < 1.0
    assert abs(rand_index(pred, truth) - expected) < 1e-12


def test_voi_matches_entropy_definition():
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 5, size=(6, 7))
    truth = rng.integers(0, 3, size=(6, 7))
    joint = entropy_bits(pred.ravel() * 10 + truth.ravel())
    h_pred, h_truth = entropy_bits(pred), entropy_bits(truth)
    mutual = h_pred + h_truth - joint
    expected = h_pred + h_truth - 2 * mutual
    assert abs(variation_of_information(pred, truth) - expected) < 1e-12


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        rand_index(np.zeros((2, 3), dtype=int), np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(3, 3\)"):
        evaluate(PRED_2X2, [ONE_SEGMENT])


def test_evaluate_averages_over_annotations():
    scores = evaluate(PRED_2X2, [TRUTH_2X2, PRED_2X2])
    assert isinstance(scores, ImageScores)
    assert abs(scores.pri - (0.5 + 1.0) / 2) < 1e-12
    assert abs(scores.voi - 0.75 * math.log2(3) / 2) < 1e-12
    assert abs(scores.covering_sum - (2.5 + 4.0)) < 1e-12
    assert scores.covering_total == 8
    assert abs(scores.covering - 6.5 / 8) < 1e-12
    assert scores.n_segments == 2
    with pytest.raises(AttributeError):
        scores.pri = 0.0  # frozen


def test_summarize_pools_covering():
    small = evaluate(PRED_2X2, [TRUTH_2X2])  # covering 2.5 / 4
    large = evaluate(ONE_SEGMENT, [TWO_REGIONS])  # covering 5 / 9
    summary = summarize([small, large])
    assert isinstance(summary, DatasetScores)
    pooled = (2.5 + 5.0) / (4 + 9)
    mean_of_means = (2.5 / 4 + 5 / 9) / 2
    assert abs(summary.covering - pooled) < 1e-12
    assert abs(summary.covering - mean_of_means) > 1e-3
    assert abs(summary.pri - 0.5) < 1e-12
    assert abs(summary.voi - (0.75 * math.log2(3) + math.log2(3) - 2 / 3) / 2) < 1e-12
    assert summary.n_segments == pytest.approx(1.5)
    assert summary.n_images == 2


def test_load_ground_truth_bsds_mat():
    if not BSDS_VAL.is_dir():
        pytest.skip(f"{BSDS_VAL} not available")
    mat_file = sorted(BSDS_VAL.glob("*.mat"))[0]
    truths = load_ground_truth(mat_file)
    assert len(truths) >= 4
    for truth in truths:
        assert truth.shape in {(321, 481), (481, 321)}
        assert np.issubdtype(truth.dtype, np.integer)
        assert truth.min() == 1
    scores = evaluate(truths[0], truths)
    assert 0.0 < scores.pri <= 1.0
    assert scores.covering_total == len(truths) * truths[0].size


def test_load_ground_truth_label_images(tmp_path):
    cv2 = pytest.importorskip("cv2")
    first = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    second = np.ones((3, 4), dtype=np.uint16)
    folder = tmp_path / "annotations"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "a.png"), first)
    assert cv2.imwrite(str(folder / "b.tif"), second)
    (folder / "notes.txt").write_text("ignored")

    (single,) = load_ground_truth(folder / "a.png")
    np.testing.assert_array_equal(single, first)
    loaded = load_ground_truth(folder)
    assert len(loaded) == 2
    np.testing.assert_array_equal(loaded[1], second)


def test_load_ground_truth_rejects_unreadable_input(tmp_path):
    bad_mat = tmp_path / "broken.mat"
    bad_mat.write_bytes(b"not a matlab file")
    with pytest.raises(ValueError, match="broken.mat"):
        load_ground_truth(bad_mat)
    bad_png = tmp_path / "broken.png"
    bad_png.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        load_ground_truth(bad_png)
    with pytest.raises(ValueError, match="missing.png"):
        load_ground_truth(tmp_path / "missing.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty"):
        load_ground_truth(empty)
