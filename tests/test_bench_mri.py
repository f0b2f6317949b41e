"""The brain-MRI benchmark's own parts (scripts/bench_mri.py): truth, scoring, bias fields; no anchor needed."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_mri.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_mri", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setitem(sys.modules, "bench_mri", module)  # its dataclass looks its module up
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds scripts/ to it
    spec.loader.exec_module(module)
    yield module
    monkeypatch.undo()


def test_truth_is_the_argmax_with_csf_as_the_rest(bench):
    grey = np.array([0.2, 0.5, 0.1, 0.45, 0.9])
    white = np.array([0.1, 0.4, 0.8, 0.1, 0.05])
    mask = np.array([True, True, True, True, False])
    # CSF = 1 - GM - WM: 0.7, 0.1, 0.1, 0.45 (a tie with GM goes to CSF, the first)
    assert bench.tissue_truth(grey, white, mask).tolist() == [1, 2, 3, 1, 0]


def test_classes_are_tissues_by_mean_intensity_and_dice_counts_overlap(bench):
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 4, size=(6, 7, 8)).astype(np.uint8)
    truth[0] = 0
    mask = truth > 0
    volume = np.array([0.0, 0.3, 0.6, 0.9])[truth] + rng.normal(0, 0.01, truth.shape)
    labels = np.array([0, 7, 2, 5])[truth]  # arbitrary ids, as a tool may give
    tissues = bench.tissues_by_intensity(labels, volume, mask)
    np.testing.assert_array_equal(tissues, truth)
    wrong = truth.copy()
    wrong[1][truth[1] == 2] = 3  # one plane's grey called white
    grey, white = truth == 2, truth == 3
    expected = 2 * np.count_nonzero(grey & (wrong == 2)) / (np.count_nonzero(grey) + np.count_nonzero(wrong == 2))
    assert bench.dice(wrong == 2, grey) == pytest.approx(expected) and expected < 1
    assert bench.score(labels, volume, bench.Brain(volume, mask, truth, np.eye(4), (1.0, 1.0, 1.0))) == {"grey": 1.0, "white": 1.0}
    assert bench.dice(white, white) == 1.0


def test_bias_field_spans_the_amplitude_inside_the_brain_and_is_smooth(bench):
    mask = np.zeros((20, 24, 22), bool)
    mask[3:17, 4:20, 3:19] = True
    field = bench.smooth_field(mask.shape, 0.4, mask, np.random.default_rng(1))
    inside = field[mask]
    assert field.dtype == np.float32 and field.shape == mask.shape
    assert pytest.approx(0.4, abs=1e-5) == max(inside.max() - 1, 1 - inside.min())
    assert inside.min() >= 0.6 - 1e-5 and inside.max() <= 1.4 + 1e-5
    assert max(np.abs(np.diff(field, axis=axis)).max() for axis in range(3)) < 0.15


def test_missing_extra_is_one_line(bench, monkeypatch):
    monkeypatch.setitem(bench.BENCH_EXTRA, "not-a-package", "not_a_module_anywhere")
    with pytest.raises(SystemExit) as stop:
        bench.require_bench_extra()
    message = str(stop.value.code)
    # The anchors themselves may or may not be installed here; the made-up one never is.
    assert message.startswith("error: bench_mri.py needs the bench extra (") and "not-a-package" in message
    assert message.endswith("missing): pip install -e '.[bench]'") and "\n" not in message
