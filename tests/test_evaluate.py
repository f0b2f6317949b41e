import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from segment.cli import app
from segment.evaluate import evaluate_files, load_prediction_labels

runner = CliRunner()
SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def write_mat(path, segmentations):
    """A BSDS500-style ground-truth file: a 1 x M cell array of structs with Segmentation and Boundaries."""
    cells = np.empty((1, len(segmentations)), dtype=object)
    for m, seg in enumerate(segmentations):
        entry = np.empty((1, 1), dtype=[("Segmentation", object), ("Boundaries", object)])
        entry[0, 0] = (seg.astype(np.uint16), np.zeros(seg.shape, np.uint8))
        cells[0, m] = entry
    scipy.io.savemat(str(path), {"groundTruth": cells})


def halves(shape=(4, 4)):
    labels = np.ones(shape, dtype=np.uint16)
    labels[:, shape[1] // 2 :] = 2
    return labels


def test_label_images_against_a_bsds_mat_file_hand_computed(tmp_path):
    truth = tmp_path / "truth"
    truth.mkdir()
    # Two annotations: the same halves as the prediction, and one region for everything.
    write_mat(truth / "img.mat", [halves(), np.ones((4, 4), np.uint16)])
    cv2.imwrite(str(tmp_path / "img_labels.png"), halves().astype(np.uint8))
    result = run("evaluate", tmp_path / "img_labels.png", "--truth", truth, "--json", tmp_path / "scores.json")
    assert result.exit_code == 0, result.output
    # RI vs one region: 1 - (64 + 128 - 128) / 120; VoI: 0 and 1 bit; covering: (16 + 16 * 0.5) / 32
    summary = json.loads((tmp_path / "scores.json").read_text())["summary"]
    assert summary["pri"] == pytest.approx((1 + (1 - 64 / 120)) / 2)
    assert summary["voi"] == pytest.approx(0.5)
    assert summary["covering"] == pytest.approx(0.75)
    assert summary["n_segments"] == 2 and summary["seconds_per_image"] is None
    assert "1 image: PRI 0.7333  VoI 0.5000  Covering 0.7500" in result.stdout


def test_label_image_folders_as_truth_and_npy_predictions(tmp_path):
    truth = tmp_path / "truth" / "scene"
    truth.mkdir(parents=True)
    labels = halves((6, 8))
    cv2.imwrite(str(truth / "a.png"), labels)  # 16-bit PNG
    cv2.imwrite(str(truth / "b.png"), labels * 3)  # the same partition with other ids
    np.save(tmp_path / "scene.npy", labels.astype(np.int64) + 40)
    evaluation = evaluate_files([tmp_path / "scene.npy"], tmp_path / "truth")
    assert not evaluation.failures
    summary = evaluation.summary
    assert (summary.pri, summary.voi, summary.covering) == (1.0, 0.0, 1.0)


def test_images_are_segmented_on_the_fly(samples, tmp_path):
    truth = tmp_path / "truth"
    truth.mkdir()
    shutil.copy(samples / "synthetic_truth.png", truth / "synthetic.png")
    assert load_prediction_labels(samples / "synthetic.png") is None  # an 8-bit RGB photograph
    result = run("evaluate", samples / "synthetic.png", "--truth", truth, "-k", "4", "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["summary"]["pri"] > 0.95 and scores["summary"]["covering"] > 0.9
    assert scores["images"][0]["seconds"] > 0


def test_failures_are_one_line_each_and_the_rest_is_scored(tmp_path):
    truth = tmp_path / "truth"
    truth.mkdir()
    cv2.imwrite(str(truth / "good.png"), halves().astype(np.uint16))
    cv2.imwrite(str(truth / "small.png"), halves((2, 2)).astype(np.uint16))
    cv2.imwrite(str(truth / "junk.png"), halves().astype(np.uint16))
    preds = tmp_path / "preds"
    preds.mkdir()
    cv2.imwrite(str(preds / "good_labels.png"), halves().astype(np.uint8))
    cv2.imwrite(str(preds / "small_labels.png"), halves().astype(np.uint8))  # 4x4 against a 2x2 truth
    cv2.imwrite(str(preds / "orphan_labels.png"), halves().astype(np.uint8))  # no ground truth
    (preds / "junk_labels.png").write_bytes(b"not a png")
    result = run("evaluate", preds, tmp_path / "missing_labels.png", "--truth", truth)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    by_file = {name: next(line for line in errors if name in line) for name in ("junk", "orphan", "small", "missing")}
    assert by_file["junk"].startswith(f"error: {preds / 'junk_labels.png'}: ") and "cannot be read" in by_file["junk"]
    assert "no ground truth" in by_file["orphan"]
    assert "shape mismatch" in by_file["small"]
    assert by_file["missing"] == f"error: {tmp_path / 'missing_labels.png'}: no such file"
    assert "1 image: PRI 1.0000" in result.stdout


def test_usage_errors_exit_2_with_one_line(tmp_path):
    result = run("evaluate", tmp_path, "--truth", tmp_path / "nowhere")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nowhere'}: ground-truth folder not found"
    result = run("evaluate", tmp_path, "--truth", tmp_path, "--min-fraction", "2")
    assert result.exit_code == 2 and "--min-fraction" in result.output


def test_evaluate_bsds_script_scores_a_small_split(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for split in ("train",):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "groundTruth" / split).mkdir(parents=True)
        for name in ("a", "b"):
            truth = halves((24, 32))
            image = np.where(truth[..., None] == 1, 40, 200) + rng.normal(0, 5, (24, 32, 3))
            cv2.imwrite(str(tmp_path / "images" / split / f"{name}.jpg"), np.clip(image, 0, 255).astype(np.uint8))
            write_mat(tmp_path / "groundTruth" / split / f"{name}.mat", [truth])
    spec = importlib.util.spec_from_file_location("evaluate_bsds", SCRIPTS / "evaluate_bsds.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    code = script.main(["--root", str(tmp_path), "--split", "train", "--limit", "1", "--set", "smoothing=1.0", "--set", "n_components=2", "--set", "position_weight=0",
                        "--json", str(tmp_path / "out.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "train: 1 images" in out
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert set(rows) == {"segment", "segment, smoothing 0", "sklearn GMM, 4 comps, RGB"}
    assert rows["segment"]["summary"]["pri"] > 0.9 and rows["segment"]["summary"]["n_images"] == 1


def test_hierarchies_get_ods_and_ois_and_label_maps_boundary_f(tmp_path):
    from segment.hierarchy import Hierarchy

    truth_dir, predictions = tmp_path / "truth", tmp_path / "pred"
    truth_dir.mkdir()
    predictions.mkdir()
    truth = halves((20, 30))
    write_mat(truth_dir / "a.mat", [truth, truth])
    # Leaves: the two halves, joined at merge cost 1 (scale 0.5).
    tree = Hierarchy.from_merges(truth.astype(np.int32) - 1, [1], [0], [1.0])
    np.save(predictions / "a_ucm2.npy", tree.ucm2())
    cv2.imwrite(str(predictions / "a_labels.png"), truth)
    done = run("evaluate", predictions, "--truth", truth_dir, "--boundary", "--scales", "9", "--json", tmp_path / "e.json")
    assert done.exit_code == 0, done.output
    assert "boundaries: F 1.0000  precision 1.0000  recall 1.0000" in done.output
    # Cut at 0.1 .. 0.4 the halves are exact; at 0.5 and above, one region.
    assert "PRI ODS 1.0000 (scale 0.10) OIS 1.0000" in done.output
    assert "hierarchy boundaries: F ODS 1.0000" in done.output and "OIS 1.0000" in done.output
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["hierarchies"][0]["n_segments"] == [2, 2, 2, 2, 1, 1, 1, 1, 1]
    assert saved["hierarchy_boundary"]["ap"] > 0.4  # precision 1 from recall 0 to 1 where it is defined


def test_a_ucm2_of_the_wrong_size_is_one_failure_line(tmp_path):
    truth_dir, predictions = tmp_path / "truth", tmp_path / "pred"
    truth_dir.mkdir()
    predictions.mkdir()
    write_mat(truth_dir / "a.mat", [halves((20, 30))])
    np.save(predictions / "a_ucm2.npy", np.zeros((21, 31)))
    done = run("evaluate", predictions, "--truth", truth_dir)
    assert done.exit_code == 1 and "does not fit the ground truth" in done.output
