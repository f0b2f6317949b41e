import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from segment import __version__
from segment.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"segment {__version__}"


def test_image_writes_outputs(samples, tmp_path):
    result = run("image", samples / "synthetic.png", "-o", tmp_path, "-k", "4", "--min-size", "20")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["synthetic.json", "synthetic_color.png", "synthetic_labels.png", "synthetic_overlay.png"]
    summary = json.loads((tmp_path / "synthetic.json").read_text())
    assert summary["settings"]["n_components"] == 4 and summary["settings"]["min_size"] == 20


def test_save_option_selects_outputs(samples, tmp_path):
    result = run("image", samples / "coins.png", "-o", tmp_path, "--save", "labels,confidence", "--confidence-format", "tif")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coins_confidence.tif", "coins_labels.png"]


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda d: d / "missing.png", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "notes.png", b"these are not pixels"), "cannot decode"),
        (lambda d: _write(d / "cut.jpg", (d.parent / "full.jpg").read_bytes()[:5000]), "truncated"),
    ],
)
def test_bad_inputs_one_line_exit_1_no_outputs(samples, tmp_path, make, cause):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(samples / "coffee.jpg", tmp_path / "full.jpg")
    bad = make(inputs)
    out = tmp_path / "out"
    result = run("image", bad, "-o", out)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}") and cause in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_one_bad_input_does_not_stop_the_others(samples, tmp_path):
    result = run("image", tmp_path / "missing.png", samples / "coins.png", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert (tmp_path / "out" / "coins_labels.png").exists()


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["-k", "0"], "--components"),
        (["-k", "many"], "--components"),
        (["--color-space", "xyz"], "--color-space"),
        (["--covariance", "banded"], "--covariance"),
        (["--tol", "-1"], "--tol"),
        (["--max-iter", "0"], "--max-iter"),
        (["--position-weight", "-2"], "--position-weight"),
        (["--min-size", "-1"], "--min-size"),
        (["--save", "labels,pdf"], "--save"),
    ],
)
def test_bad_options_are_usage_errors(samples, tmp_path, args, option):
    result = run("image", samples / "coins.png", "-o", tmp_path, *args)
    assert result.exit_code == 2
    assert option in result.output
    assert not any(tmp_path.iterdir())


def test_output_may_not_overwrite_the_input(samples, tmp_path):
    source = tmp_path / "scan.json"
    shutil.copy(samples / "coins.png", source)  # a PNG with a .json name: its summary would replace it
    before = source.read_bytes()
    result = run("image", source, "-o", tmp_path, "--save", "json")
    assert result.exit_code == 1 and "overwrite the input" in result.stderr
    assert source.read_bytes() == before


def test_installed_command_runs_without_traceback(samples, tmp_path):
    exe = shutil.which("segment") or str(__import__("pathlib").Path(sys.executable).with_name("segment"))
    done = subprocess.run([exe, "image", str(tmp_path / "nope.png"), "-o", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {tmp_path / 'nope.png'}: no such file"


def _write(path, data):
    path.write_bytes(data)
    return path
