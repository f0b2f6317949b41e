"""Tests for segment.batch (discovery, resume, executors, summaries, contact sheet),
segment.segment_file, segment.tiles and segment.progress, and the `segment batch` command."""

from __future__ import annotations

import csv
import io as stdio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from segment import batch, tiles
from segment.batch import discover, run_batch
from segment.batch import task as batch_task
from segment.cli import app
from segment.config import SegmentConfig
from segment.segment_file import segment_file
from conftest import PLAIN
from segment.progress import NullProgress, RichProgress, make_progress

runner = CliRunner()
# Small and quick: 3 components, a few EM iterations are enough for these images.
FAST = SegmentConfig(n_components=3, max_iter=30, **PLAIN)


def _scene(height: int, width: int, seed: int) -> np.ndarray:
    """An RGB picture of three flat colour regions with noise."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3))
    image[:] = (40, 60, 160)
    image[height // 2 :, : width // 2] = (200, 50, 40)
    image[: height // 3, width // 2 :] = (230, 210, 60)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def _write_rgb(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    """A small folder tree: colour PNG and JPEG, greyscale JPEG, 16-bit grey TIFF,
    a 2-page TIFF, two corrupt files, and files that are not images."""
    root = tmp_path / "scans"
    _write_rgb(root / "a.png", _scene(40, 50, 0))
    _write_rgb(root / "sub" / "b.jpg", _scene(36, 44, 1))
    cv2.imwrite(str(root / "sub" / "grey.jpg"), cv2.cvtColor(_scene(30, 40, 2), cv2.COLOR_RGB2GRAY))
    (root / "sub" / "deep").mkdir(parents=True)
    tifffile.imwrite(root / "sub" / "deep" / "scan16.tif", _scene(32, 40, 3).mean(axis=2).astype(np.uint16) * 257)
    pages = np.stack([_scene(30, 36, 4).mean(axis=2), _scene(30, 36, 5).mean(axis=2)]).astype(np.uint8)
    tifffile.imwrite(root / "stack.tif", pages, photometric="minisblack")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 this is not a JPEG")
    (root / "sub" / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 40)
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"")
    return root


def _names(items):
    return [(item.relative, item.page, item.stem) for item in items]


# ------------------------------------------------------------------ discovery
def test_discover_mirrors_the_tree_and_splits_pages(tree, tmp_path):
    out = tmp_path / "out"
    flat = discover(tree, out)
    assert _names(flat) == [
        ("a.png", None, "a"),
        ("broken.jpg", None, "broken"),
        ("stack.tif", 0, "stack_p001"),
        ("stack.tif", 1, "stack_p002"),
    ]
    deep = discover(tree, out, recursive=True)
    assert [n[0] for n in _names(deep)][-4:] == ["sub/b.jpg", "sub/broken.tif", "sub/deep/scan16.tif", "sub/grey.jpg"]
    scan = next(item for item in deep if item.relative == "sub/deep/scan16.tif")
    assert scan.outdir == out.absolute() / "sub" / "deep" and scan.stem == "scan16"
    only_tiffs = discover(tree, out, recursive=True, patterns=["*.TIF"])
    assert {item.relative for item in only_tiffs} == {"stack.tif", "sub/broken.tif", "sub/deep/scan16.tif"}
    by_path = discover(tree, out, recursive=True, patterns=["sub/*.jpg"])
    assert [item.relative for item in by_path] == ["sub/b.jpg", "sub/grey.jpg"]


def test_discover_skips_an_output_folder_inside_the_input_and_separates_same_stems(tree):
    _write_rgb(tree / "a.jpg", _scene(20, 20, 9))
    _write_rgb(tree / "out" / "old_color.png", _scene(20, 20, 9))
    items = discover(tree, tree / "out", recursive=True)
    assert not any(item.relative.startswith("out/") for item in items)
    stems = {item.relative: item.stem for item in items}
    assert stems["a.png"] == "a.png" and stems["a.jpg"] == "a.jpg" and stems["sub/b.jpg"] == "b"


def test_missing_input_folder_is_a_batch_error(tmp_path):
    with pytest.raises(batch.BatchError, match="no such folder"):
        run_batch(tmp_path / "nope", tmp_path / "out")
    with pytest.raises(batch.BatchError, match="differ"):
        run_batch(tmp_path, tmp_path)


# ------------------------------------------------------------- a whole batch
def test_batch_outputs_summaries_failures_and_resume(tree, tmp_path):
    out = tmp_path / "out"
    seen = []
    result = run_batch(tree, out, FAST, recursive=True, workers=1, on_record=seen.append)
    counts = result.counts
    assert (counts["done"], counts["skipped"], counts["failed"], counts["total"]) == (6, 0, 2, 8)
    assert len(seen) == 8 and not result.interrupted
    failed = {r.input: r.error for r in result.failed}
    assert set(failed) == {"broken.jpg", "sub/broken.tif"}
    assert "truncated JPEG" in failed["broken.jpg"] and "cannot decode TIFF" in failed["sub/broken.tif"]
    assert all(len(e.splitlines()) == 1 for e in failed.values())
    for record in result.records:
        if record.status == "done":
            for name in ("_labels.png", "_color.png", "_overlay.png", ".json"):
                assert (out / f"{record.output}{name}").is_file()
            assert (out / record.thumbnail).is_file() and (out / record.segmentation_thumbnail).is_file()
            assert record.components == 3 and record.pixels > 0 and record.seconds > 0
    # full precision and pages
    scan = json.loads((out / "sub" / "deep" / "scan16.json").read_text())
    assert scan["input"]["dtype"] == "uint16" and scan["batch"]["input"] == "sub/deep/scan16.tif"
    page = json.loads((out / "stack_p002.json").read_text())
    assert page["input"]["page"] == 2
    # summaries
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["failed"] == 2 and len(summary["images"]) == 8
    rows = list(csv.DictReader((out / "summary.csv").read_text().splitlines()))
    assert [r["input"] for r in rows] == [r.input for r in result.records]
    assert set(rows[0]) >= {"status", "seconds", "components", "pixels", "error"}
    page_html = (out / "index.html").read_text()
    assert "stack.tif [page 2]" in page_html and "thumbnails/sub/deep/scan16_seg.png" in page_html

    # the second run skips everything that succeeded and tries the failures again
    again = run_batch(tree, out, FAST, recursive=True, workers=1)
    assert (again.counts["done"], again.counts["skipped"], again.counts["failed"]) == (0, 6, 2)
    assert next(r for r in again.records if r.input == "a.png").components == 3

    # an input whose content changed is redone, one only touched is not; everything is when the settings change
    os.utime(tree / "sub" / "b.jpg")
    _write_rgb(tree / "a.png", _scene(40, 50, 11))
    touched = run_batch(tree, out, FAST, recursive=True, workers=1)
    assert [r.input for r in touched.records if r.status == "done"] == ["a.png"]
    changed = run_batch(tree, out, FAST.replace(n_components=2), recursive=True, workers=1, patterns=["*.png"])
    assert changed.counts["done"] == 1 and changed.records[0].components == 2
    # threads and memory budget do not change results, so they do not force a redo
    same = run_batch(tree, out, FAST.replace(n_components=2, n_jobs=1), workers=1, patterns=["*.png"])
    assert same.counts["skipped"] == 1
    forced = run_batch(tree, out, FAST.replace(n_components=2), workers=1, patterns=["*.png"], overwrite=True)
    assert forced.counts["done"] == 1


def test_incomplete_outputs_are_redone(tree, tmp_path):
    out = tmp_path / "out"
    run_batch(tree, out, FAST, workers=1, patterns=["a.png"])
    (out / "a_overlay.png").unlink()
    assert run_batch(tree, out, FAST, workers=1, patterns=["a.png"]).counts["done"] == 1
    (out / "a.json").write_text("{ truncated")
    assert run_batch(tree, out, FAST, workers=1, patterns=["a.png"]).counts["done"] == 1


def test_process_pool_gives_the_same_outputs_as_one_process(tree, tmp_path):
    serial = run_batch(tree, tmp_path / "one", FAST, recursive=True, workers=1, patterns=["*.png", "*.jpg"])
    pooled = run_batch(tree, tmp_path / "two", FAST, recursive=True, workers=2, patterns=["*.png", "*.jpg"])
    assert [(r.input, r.status) for r in serial.records] == [(r.input, r.status) for r in pooled.records]
    for record in serial.records:
        if record.status == "done":
            a = cv2.imread(str(tmp_path / "one" / f"{record.output}_labels.png"), cv2.IMREAD_UNCHANGED)
            b = cv2.imread(str(tmp_path / "two" / f"{record.output}_labels.png"), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(a, b)


def test_a_task_never_raises(tree, tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(batch_task, "segment_file", explode)
    result = run_batch(tree, tmp_path / "out", FAST, workers=1, patterns=["a.png"])
    assert result.records[0].status == "failed" and result.records[0].error == "RuntimeError: boom"


def test_interrupted_batch_writes_its_summary_and_the_rerun_finishes(tree, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real = segment_file
    calls = []

    def interrupt_third(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_task, "segment_file", interrupt_third)
    first = run_batch(tree, out, FAST, recursive=True, workers=1, patterns=["*.png", "*.jpg"])
    assert first.interrupted
    assert [r.status for r in first.records] == ["done", "failed", "interrupted", "interrupted"]
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary file left behind
    monkeypatch.setattr(batch_task, "segment_file", real)
    second = run_batch(tree, out, FAST, recursive=True, workers=1, patterns=["*.png", "*.jpg"])
    assert (second.counts["skipped"], second.counts["done"], second.counts["failed"]) == (1, 2, 1)


def test_killed_run_leaves_no_partial_file_and_the_rerun_completes(tmp_path):
    """SIGKILL a real `segment batch` process halfway, then run it again."""
    indir = tmp_path / "in"
    for i in range(8):
        _write_rgb(indir / f"img{i}.png", _scene(120, 150, i))
    out = tmp_path / "out"
    command = [str(Path(sys.executable).parent / "segment"), "batch", str(indir), "-o", str(out), "-k", "3", "--workers", "1", "-q"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300  # a cold Numba cache on a busy machine takes minutes
    while time.time() < deadline and len(list(out.glob("*.json"))) < 3 and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    finished = {p.stem for p in out.glob("img*.json")}
    assert 0 < len(finished) < 8
    for png in out.glob("img*.png"):  # every visible file is complete
        assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED) is not None, png
    for summary in out.glob("img*.json"):
        json.loads(summary.read_text())
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    counts = json.loads((out / "summary.json").read_text())["counts"]
    assert counts["skipped"] >= len(finished) and counts["skipped"] + counts["done"] == 8
    assert not [p for p in out.rglob(".*") if p.is_file()]
    assert len(list(out.glob("img*_labels.png"))) == 8


def test_stale_temporary_files_are_swept(tmp_path):
    (tmp_path / "sub").mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / "sub" / f".x_labels.{dead.stdout.strip()}.tmp.png"
    live = tmp_path / f".y_labels.{os.getppid()}.tmp.png"
    other = tmp_path / ".notes.txt"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    assert batch.sweep_temporary_files(tmp_path) == [stale]
    assert live.exists() and other.exists()


# -------------------------------------------------------------- tiled images
def test_tiled_labelling_equals_the_in_memory_pipeline(tmp_path):
    """Band by band with a model fitted on the same grid sample: the same files."""
    image = _scene(150, 170, 7)  # 25 500 pixels > fit_sample, so the grid sample is used
    path = _write_rgb(tmp_path / "in" / "scene.png", image)
    cfg = FAST.replace(fit_sample=4000, save=("labels", "color", "overlay", "confidence", "json"))
    memory = segment_file(path, tmp_path / "memory", cfg)
    banded = segment_file(path, tmp_path / "banded", cfg.replace(max_memory="16M"))
    assert not memory.tiled and banded.tiled
    assert banded.summary["tiling"]["bands"] > 2
    for name in ("scene_labels.png", "scene_color.png", "scene_overlay.png"):
        a = cv2.imread(str(tmp_path / "memory" / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "banded" / name), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        np.load(tmp_path / "memory" / "scene_confidence.npy"), np.load(tmp_path / "banded" / "scene_confidence.npy")
    )
    assert memory.summary["components"] == banded.summary["components"]
    post = cfg.replace(min_size=20, relabel=True)
    banded_post = segment_file(path, tmp_path / "post", post.replace(max_memory="16M"))
    assert banded_post.tiled and banded_post.summary["tiling"]["skipped"] == []  # every stage runs (segment.tiles)
    memory_post = segment_file(path, tmp_path / "memory_post", post)
    assert banded_post.summary["n_labels"] == memory_post.summary["n_labels"]


@pytest.mark.parametrize(("channels", "dtype"), [(1, np.uint8), (1, np.uint16), (3, np.uint8), (3, np.uint16)])
def test_png_stream_writes_what_opencv_reads(tmp_path, channels, dtype):
    rng = np.random.default_rng(0)
    shape = (37, 23) if channels == 1 else (37, 23, 3)
    image = rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    stream = tiles.PngStream(tmp_path / "x.png", 37, 23, channels, dtype)
    for start in range(0, 37, 10):
        stream.write_rows(image[start : start + 10])
    stream.commit()
    back = cv2.imread(str(tmp_path / "x.png"), cv2.IMREAD_UNCHANGED)
    if channels == 3:
        back = cv2.cvtColor(back, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, image)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_sixteen_bit_precision_reaches_the_features(tmp_path):
    """Two halves 80/65535 apart: the same value in 8 bits, two classes in 16."""
    image = np.full((24, 30), 30000, dtype=np.uint16)
    image[:, 15:] = 30080
    assert np.all((image >> 8)[:, :15] == (image >> 8)[:, 15:])
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "flat16.tif", image)
    result = run_batch(tmp_path / "in", tmp_path / "out", SegmentConfig(n_components=2, position_weight=0, **PLAIN), workers=1)
    assert result.counts["done"] == 1
    labels = cv2.imread(str(tmp_path / "out" / "flat16_labels.png"), cv2.IMREAD_UNCHANGED)
    assert len(np.unique(labels[:, :15])) == 1 and len(np.unique(labels[:, 15:])) == 1
    assert labels[0, 0] != labels[0, -1]


def test_memory_estimate_and_budget(monkeypatch):
    cfg = SegmentConfig()
    small, large = tiles.estimate_memory((100, 100, 3), np.uint8, cfg), tiles.estimate_memory((14000, 14300), np.uint16, cfg)
    assert small < 300 * 2**20 < 4 * 2**30 < large
    assert tiles.estimate_memory((14000, 14300), np.uint16, cfg.replace(max_side=1000)) < 2**30
    assert tiles.memory_budget(cfg.replace(max_memory="3G"), workers=4) == 3 * 2**30
    monkeypatch.setattr(tiles, "physical_memory", lambda: 16 * 2**30)
    assert tiles.memory_budget(cfg, workers=2) == 4 * 2**30


# ---------------------------------------------------------- progress, report
def test_progress_is_off_without_a_terminal_or_when_quiet():
    class Terminal(stdio.StringIO):
        def isatty(self):
            return True

    assert isinstance(make_progress(stream=stdio.StringIO()), NullProgress)
    assert isinstance(make_progress(quiet=True, stream=Terminal()), NullProgress)
    assert isinstance(make_progress(stream=Terminal()), RichProgress)
    sink = stdio.StringIO()
    null = NullProgress(sink)
    null.start(3)
    null.advance()
    null.write("error: x.png: broken")
    null.stop()
    assert sink.getvalue() == "error: x.png: broken\n"


def test_rich_progress_draws_a_bar(monkeypatch):
    from rich.console import Console

    progress = RichProgress()
    sink = stdio.StringIO()
    progress.console = Console(file=sink, force_terminal=True, width=100)
    progress.start(4, "segment")
    progress.advance(2)
    progress.write("error: b.png: cannot decode")
    progress.stop()
    text = sink.getvalue()
    assert "2/4" in text and "img/s" in text and "error: b.png: cannot decode" in text


def test_contact_sheet_escapes_names(tmp_path):
    from segment.batch.contact_sheet import write_contact_sheet

    rows = [
        {"input": "<b>&.png", "status": "failed", "error": "cannot <decode>", "seconds": 0.1},
        {"input": "ok.png", "status": "done", "seconds": 1.0, "components": 3, "labels": 3, "pixels": 1000,
         "thumbnail": "thumbnails/ok.jpg", "segmentation_thumbnail": "thumbnails/ok seg.png", "outputs": ["ok_labels.png"]},
    ]
    page = write_contact_sheet(tmp_path, rows, counts={"done": 1, "failed": 1}).read_text()
    assert "&lt;b&gt;&amp;.png" in page and "cannot &lt;decode&gt;" in page and "<b>&" not in page
    assert 'src="thumbnails/ok%20seg.png"' in page


# -------------------------------------------------------------------- the CLI
def test_cli_batch_exit_codes_table_and_errors(tree, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(tree), "-o", str(out), "-k", "3", "--max-iter", "30", "--workers", "1"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: broken.jpg: ")
    assert "failed" in result.stdout and "skipped" in result.stdout and "Traceback" not in result.output
    good = runner.invoke(app, ["batch", str(tree), "-o", str(out), "-k", "3", "--max-iter", "30", "--pattern", "*.png", "-q"])
    assert good.exit_code == 0 and good.stdout == ""
    assert "exit" in runner.invoke(app, ["batch", "--help"]).stdout.lower()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheduler", "tcp://127.0.0.1:1"], "--executor dask"),
        (["--workers", "0"], "--workers"),
        (["--max-memory", "lots"], "--max-memory"),
    ],
)
def test_cli_batch_usage_errors(tree, tmp_path, args, message):
    result = runner.invoke(app, ["batch", str(tree), "-o", str(tmp_path / "out"), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out").exists()


def test_cli_image_labels_each_page_of_a_tiff(tree, tmp_path):
    result = runner.invoke(app, ["image", str(tree / "stack.tif"), "-o", str(tmp_path), "-k", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "stack_p001_labels.png").exists() and (tmp_path / "stack_p002_labels.png").exists()
