"""The Dask executor on a real cluster (scheduler and worker processes on loopback):
its outputs must equal the local executor's."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from segment.batch import BatchError, run_batch
from segment.cli import app
from segment.config import SegmentConfig

distributed = pytest.importorskip("distributed")

runner = CliRunner()
CONFIG = SegmentConfig(n_components=3, max_iter=30)


def _scene(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3))
    image[:] = (40, 60, 160)
    image[height // 2 :, : width // 3] = (200, 50, 40)
    image[: height // 3, width // 2 :] = (230, 210, 60)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(root / f"c{i}.png"), _scene(40 + 5 * i, 60, i))
    cv2.imwrite(str(root / "sub" / "g.jpg"), cv2.cvtColor(_scene(50, 40, 7), cv2.COLOR_BGR2GRAY))
    pages = np.stack([_scene(30, 40, 8).mean(axis=2), _scene(30, 40, 9).mean(axis=2)]).astype(np.uint16) * 257
    tifffile.imwrite(root / "sub" / "stack.tif", pages, photometric="minisblack")
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


@pytest.fixture(scope="module")
def cluster():
    """A real scheduler with two worker processes, on 127.0.0.1 only."""
    with distributed.LocalCluster(
        # The HTTP server on a free loopback port: never the shared default 8787.
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as local:
        yield local


def _same_outputs(records, one, other):
    for record in records:
        if record.status != "done":
            continue
        for suffix in ("_labels.png", "_color.png", "_overlay.png"):
            a = cv2.imread(str(one / f"{record.output}{suffix}"), cv2.IMREAD_UNCHANGED)
            b = cv2.imread(str(other / f"{record.output}{suffix}"), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(a, b)
        a = json.loads((one / f"{record.output}.json").read_text())
        b = json.loads((other / f"{record.output}.json").read_text())
        assert a["components"] == b["components"] and a["batch"] == b["batch"]


def test_dask_cluster_outputs_equal_the_local_executor(folder, tmp_path, cluster):
    local = run_batch(folder, tmp_path / "local", CONFIG, recursive=True, workers=1)
    remote = run_batch(
        folder, tmp_path / "dask", CONFIG, recursive=True, executor="dask", scheduler=cluster.scheduler_address
    )
    assert [(r.input, r.page, r.status) for r in local.records] == [(r.input, r.page, r.status) for r in remote.records]
    assert remote.counts["done"] == 6 and remote.counts["failed"] == 1
    assert "cannot decode" in remote.failed[0].error
    _same_outputs(local.records, tmp_path / "local", tmp_path / "dask")
    # resume works across executors: the local run's outputs are current for the cluster
    again = run_batch(folder, tmp_path / "local", CONFIG, recursive=True, executor="dask", scheduler=cluster.scheduler_address)
    assert again.counts["skipped"] == 6


def test_cli_batch_on_a_scheduler_address(folder, tmp_path, cluster):
    out = tmp_path / "out"
    args = ["batch", str(folder), "-o", str(out), "-k", "3", "--max-iter", "30", "--recursive", "-q"]
    result = runner.invoke(app, [*args, "--executor", "dask", "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 1, result.output  # the broken file
    assert result.stderr.strip() == "error: sub/broken.png: cannot decode image (not an image, unsupported format or corrupt data)"
    assert json.loads((out / "summary.json").read_text())["counts"]["done"] == 6


def test_dask_without_an_address_starts_a_local_cluster(folder, tmp_path):
    result = run_batch(folder, tmp_path / "out", CONFIG, executor="dask", workers=1, patterns=["c*.png"])
    assert result.counts["done"] == 3
    reference = run_batch(folder, tmp_path / "ref", CONFIG, workers=1, patterns=["c*.png"])
    _same_outputs(reference.records, tmp_path / "ref", tmp_path / "out")


def test_unreachable_scheduler_is_a_batch_error(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "Client", _refuse)
    with pytest.raises(BatchError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9"):
        run_batch(folder, tmp_path / "out", CONFIG, executor="dask", scheduler="tcp://127.0.0.1:9")


def _refuse(address, timeout=None):
    raise OSError(f"Timed out trying to connect to {address} after {timeout}")


def test_a_dask_worker_budgets_half_its_memory_limit(folder, tmp_path, cluster):
    from segment.batch import ImageTask, discover
    from segment.batch.task import task_budget

    item = discover(folder, tmp_path / "out")[0]
    task = ImageTask(item, tmp_path / "out", CONFIG, None, "digest", None)
    with distributed.Client(cluster.scheduler_address) as client:
        budget = client.submit(task_budget, task, pure=False).result()
        limit = next(iter(client.scheduler_info()["workers"].values()))["memory_limit"]
    assert budget == max(2**28, limit // 2)
    assert task_budget(ImageTask(item, tmp_path / "out", CONFIG, None, "digest", 12345)) == 12345
