"""Batches under real faults, each with real processes and real files: SIGTERM, a hung image (a FIFO
that the decoder blocks on), killed workers, inputs that change during the run, an output folder
that becomes unusable, a full disk, and two runs on one output folder.

Every case must end with one clear line per problem, no partial file, and a rerun that finishes."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

SEGMENT = str(Path(sys.executable).parent / "segment")
FAST = ["-k", "2", "--max-iter", "20", "-q"]


def _scene(size: int, seed: int) -> np.ndarray:
    """A BGR picture of two flat colours with noise."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), (160, 60, 40), dtype=np.float64)
    image[size // 2 :] = (40, 50, 200)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def _png(path: Path, seed: int, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), _scene(size, seed))
    return path


def _png_bytes(seed: int, size: int = 64) -> bytes:
    ok, encoded = cv2.imencode(".png", _scene(size, seed))
    assert ok
    return encoded.tobytes()


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _start(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [SEGMENT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs
    )


def _run(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([SEGMENT, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", autouse=True)
def compiled_kernels(tmp_path_factory):
    """Fill the Numba cache first, so that the times in these tests are the faults' and not the compiler's.

    On a cold cache every fresh worker compiles the kernels for about a minute,
    which a per-image time limit or a wait for a restarted worker would count.
    """
    folder = tmp_path_factory.mktemp("warm")
    _png(folder / "in" / "w.png", 0)
    done = subprocess.run([SEGMENT, "batch", str(folder / "in"), "-o", str(folder / "out"), "--workers", "1", *FAST],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr


def _wait_for_reader(fifo: Path, process: subprocess.Popen | None = None, timeout: float = 120) -> int:
    """Open the FIFO's write end once a reader waits on it; the reader then blocks until we write or close.

    Returns the write end. Opening with O_NONBLOCK fails (ENXIO) while nobody reads.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            assert process is None or process.poll() is None, process.communicate()
            time.sleep(0.02)
    raise AssertionError(f"nobody opened {fifo}")


def _feed(fd: int, data: bytes) -> None:
    os.set_blocking(fd, True)
    os.write(fd, data)
    os.close(fd)


def _reader_pid(fifo: Path) -> int:
    """The process that holds the FIFO open (scans /proc; its open() may take a moment to return)."""
    target = str(fifo)
    deadline = time.time() + 30
    while time.time() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                for fd in (entry / "fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) == target:
                            return int(entry.name)
        time.sleep(0.01)
    raise AssertionError(f"no process reads {fifo}")


def _wait_until_dead(pid: int, timeout: float = 30) -> None:
    """Until process ``pid`` is a zombie or gone: its files are closed by then."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not die")


def _kill_reader_after_replacing(fifo: Path, process: subprocess.Popen, data: bytes) -> None:
    """SIGKILL the worker blocked reading the FIFO, as the OOM killer would, once the FIFO's path holds ``data``.

    The real image takes the FIFO's place first, so the second try (in whichever worker, whenever it
    starts) reads a plain file: nothing has to be fed to a second reader. The victim is a worker,
    never ``process`` itself.
    """
    writer = _wait_for_reader(fifo, process)  # the worker's open() returns: its descriptor shows in /proc
    victim = _reader_pid(fifo)
    assert victim != process.pid
    staged = fifo.parent.parent / f"{fifo.name}.staged"  # outside the input folder, on the same filesystem
    staged.write_bytes(data)
    os.replace(staged, fifo)
    os.kill(victim, signal.SIGKILL)
    _wait_until_dead(victim)
    os.close(writer)


def _finish(process: subprocess.Popen, timeout: float = 300) -> str:
    """Wait for ``process``; its stderr. On a timeout, kill its group and say what each process was doing."""
    try:
        return process.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        state = subprocess.run(["ps", "-o", "pid,ppid,stat,wchan:25,args", "-g", str(process.pid)], capture_output=True, text=True,
                               timeout=30)
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(f"still running after {timeout} s:\n{state.stdout}\n{process.communicate()[1]}") from None


def _no_partial_file(out: Path, *, lock_left: bool = False) -> None:
    """Every visible output is complete; no temporary file is left behind (but the lock file, if ``lock_left``)."""
    hidden = [p for p in out.rglob(".*") if p.is_file() and not (lock_left and p.name == ".segment-batch.lock")]
    assert not hidden, hidden
    for png in out.rglob("*.png"):
        assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED) is not None, png
    for summary in out.rglob("*.json"):
        json.loads(summary.read_text())


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _statuses(out: Path) -> dict[str, str]:
    return {row["input"]: row["status"] for row in _summary(out)["images"]}


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _labels(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _reference_labels(tmp_path: Path, data: bytes) -> np.ndarray:
    """The labels a clean run with the settings of ``FAST`` gives for these bytes (in this process: no start-up cost)."""
    from segment.config import SegmentConfig
    from segment.segment_file import segment_file

    folder = tmp_path / f"reference-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "ref.png").write_bytes(data)
    segment_file(folder / "ref.png", folder / "out", SegmentConfig(n_components=2, max_iter=20))
    return _labels(folder / "out" / "ref_labels.png")


# ------------------------------------------------------------------ SIGTERM
@pytest.mark.parametrize(("workers", "whom"), [(1, "process"), (2, "group")])
def test_sigterm_stops_a_batch_cleanly_and_the_rerun_finishes(tmp_path, workers, whom):
    """SIGTERM to the main process (Kubernetes) or to the whole group (timeout, systemd, Slurm)."""
    indir, out = tmp_path / "in", tmp_path / "out"
    for name, seed in (("a", 0), ("b", 1), ("d", 3)):
        _png(indir / f"{name}.png", seed)
    hang = _fifo(indir / "c.png")
    args = ["batch", str(indir), "-o", str(out), "--workers", str(workers), *FAST]
    process = _start(args)
    writer = _wait_for_reader(hang, process)  # c.png is now in progress, blocked on its input
    if whom == "group":
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    os.close(writer)
    assert process.returncode == 143, stderr
    assert _errors(stderr) == [
        f"error: interrupted by SIGTERM; {out}/summary.csv lists what finished; run again to finish the rest"
    ]
    summary = _summary(out)
    assert summary["interrupted"] is True and summary["stopped_by"] == "SIGTERM"
    statuses = _statuses(out)
    assert statuses["c.png"] == "interrupted" and set(statuses.values()) <= {"done", "interrupted"}
    _no_partial_file(out)
    finished = [name for name, status in statuses.items() if status == "done"]

    hang.unlink()
    _png(hang, 2)
    rerun = _run(args)
    assert rerun.returncode == 0, rerun.stderr
    counts = _summary(out)["counts"]
    assert (counts["skipped"], counts["done"], counts["failed"]) == (len(finished), 4 - len(finished), 0)
    assert len(list(out.glob("*_labels.png"))) == 4
    _no_partial_file(out)


def test_sigterm_stops_segment_image_over_many_files(tmp_path):
    _png(tmp_path / "a.png", 0)
    _png(tmp_path / "c.png", 2)
    hang = _fifo(tmp_path / "b.png")
    out = tmp_path / "out"
    args = ["image", str(tmp_path / "a.png"), str(hang), str(tmp_path / "c.png"), "-o", str(out), "-k", "2", "-q"]
    process = _start(args)
    writer = _wait_for_reader(hang, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    os.close(writer)
    assert process.returncode == 143
    assert _errors(stderr) == ["error: interrupted by SIGTERM; 1 of 3 file(s) done; run again to segment the rest"]
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a_color.png", "a_labels.png", "a_overlay.png"]
    _no_partial_file(out)
    hang.unlink()
    _png(hang, 1)
    assert _run(args).returncode == 0
    assert len(list(out.glob("*_labels.png"))) == 3


def test_sigterm_stops_segment_fit_without_writing_a_model(tmp_path):
    _png(tmp_path / "a.png", 0)
    hang = _fifo(tmp_path / "b.png")
    model = tmp_path / "models" / "model.npz"
    model.parent.mkdir()
    args = ["fit", str(tmp_path / "a.png"), str(hang), "-o", str(model), "-k", "2", "-q"]
    process = _start(args)
    writer = _wait_for_reader(hang, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    os.close(writer)
    assert process.returncode == 143
    assert _errors(stderr) == ["error: interrupted by SIGTERM; no model written; run again"]
    assert list(model.parent.iterdir()) == []
    hang.unlink()
    _png(hang, 1)
    assert _run(args).returncode == 0 and model.is_file()


_SIGNAL_TO_ANOTHER_THREAD = """
import os, signal, sys, threading, time
from segment.io import read_image

def stop(signum, frame):
    raise SystemExit(3)

def signal_from_here():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    time.sleep(1)  # the main thread waits on the pipe by then
    os.kill(os.getpid(), signal.SIGTERM)  # taken by this thread, the only one that does not block it

signal.signal(signal.SIGTERM, stop)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
threading.Thread(target=signal_from_here).start()
read_image(sys.argv[1])
"""


def test_a_signal_that_does_not_interrupt_the_read_still_stops_a_wait_on_a_pipe(tmp_path):
    """Python runs a signal's handler in the main thread only when it next checks for one.

    A signal taken by another thread, or one landing just before a blocking read, never wakes a main
    thread that already waits on a pipe; the handler must run all the same, soon.
    """
    hang = _fifo(tmp_path / "b.png")
    process = subprocess.Popen([sys.executable, "-c", _SIGNAL_TO_ANOTHER_THREAD, str(hang)], stderr=subprocess.PIPE)
    writer = _wait_for_reader(hang, process)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError("the signal's handler did not run while the main thread waited on the pipe") from None
    finally:
        os.close(writer)
    assert process.returncode == 3, stderr


# ------------------------------------------------------------- --timeout
def test_a_hung_image_times_out_and_the_batch_goes_on(tmp_path):
    """b.png is a FIFO nobody writes to: its decoder blocks for ever, until the time limit."""
    indir, out = tmp_path / "in", tmp_path / "out"
    _png(indir / "a.png", 0)
    _png(indir / "c.png", 2)
    hang = _fifo(indir / "b.png")
    args = ["batch", str(indir), "-o", str(out), "--workers", "1", "--timeout", "10", *FAST]
    started = time.time()
    first = _run(args)
    assert first.returncode == 1
    assert _errors(first.stderr) == ["error: b.png: timed out after 10 s"]
    assert _statuses(out) == {"a.png": "done", "b.png": "failed", "c.png": "done"}  # c.png ran in a new worker
    assert time.time() - started < 120
    _no_partial_file(out)
    hang.unlink()
    _png(hang, 1)
    rerun = _run(args)
    assert rerun.returncode == 0, rerun.stderr
    counts = _summary(out)["counts"]
    assert (counts["done"], counts["skipped"]) == (1, 2)


def test_cli_rejects_a_non_positive_timeout(tmp_path):
    _png(tmp_path / "in" / "a.png", 0)
    result = _run(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--timeout", "0"])
    assert result.returncode == 2 and "--timeout" in result.stderr


# ------------------------------------------------------ killed pool worker
def test_a_sigkilled_pool_worker_is_replaced_and_its_image_redone(tmp_path):
    """SIGKILL the worker that reads b.png, as the OOM killer would; the image is redone in a new worker."""
    indir, out = tmp_path / "in", tmp_path / "out"
    for name, seed in (("a", 0), ("c", 2), ("d", 3)):
        _png(indir / f"{name}.png", seed)
    fifo = _fifo(indir / "b.png")
    process = _start(["batch", str(indir), "-o", str(out), "--workers", "2", *FAST])
    data = _png_bytes(1)
    _kill_reader_after_replacing(fifo, process, data)
    stderr = _finish(process, 120)
    assert process.returncode == 0, stderr
    assert _errors(stderr) == []
    assert set(_statuses(out).values()) == {"done"}
    np.testing.assert_array_equal(_labels(out / "b_labels.png"), _reference_labels(tmp_path, data))
    _no_partial_file(out)


# ------------------------------------------------------- inputs that change
def test_inputs_deleted_truncated_or_rewritten_before_they_are_read(tmp_path):
    """While the batch waits on a.png (a FIFO), b.png is deleted, c.png truncated, d.png rewritten."""
    indir, out = tmp_path / "in", tmp_path / "out"
    fifo = _fifo(indir / "a.png")
    for name, seed in (("b", 1), ("c", 2), ("d", 3)):
        _png(indir / f"{name}.png", seed)
    args = ["batch", str(indir), "-o", str(out), "--workers", "1", *FAST]
    process = _start(args)
    writer = _wait_for_reader(fifo, process)
    (indir / "b.png").unlink()
    (indir / "c.png").write_bytes((indir / "c.png").read_bytes()[:200])
    new_d = _png_bytes(7, size=48)
    (indir / "d.png").write_bytes(new_d)
    _feed(writer, _png_bytes(0))
    stderr = _finish(process)
    assert process.returncode == 1
    errors = _errors(stderr)
    assert len(errors) == 2 and errors[0].startswith("error: b.png: ") and "no such file" in errors[0]
    assert errors[1].startswith("error: c.png: ") and "truncated" in errors[1]
    assert _statuses(out) == {"a.png": "done", "b.png": "failed", "c.png": "failed", "d.png": "done"}
    np.testing.assert_array_equal(_labels(out / "d_labels.png"), _reference_labels(tmp_path, new_d))
    _no_partial_file(out)
    fifo.unlink()
    _png(fifo, 0)
    rerun = _run(args)  # b.png is gone; c.png is still broken; a.png was a pipe (no fingerprint), so it is redone
    assert rerun.returncode == 1 and len(_errors(rerun.stderr)) == 1
    assert _statuses(out) == {"a.png": "done", "c.png": "failed", "d.png": "skipped"}


def test_an_input_rewritten_while_its_image_is_made_is_never_taken_as_done(tmp_path):
    """Rewrite the input once its label map exists (it has been read) but possibly before its summary."""
    indir, out = tmp_path / "in", tmp_path / "out"
    source = _png(indir / "big.png", 0, size=700)
    args = ["batch", str(indir), "-o", str(out), "--workers", "1", "--save", "labels,color,overlay,confidence", *FAST]
    process = _start(args)
    while not (out / "big_labels.png").exists():
        assert process.poll() is None, process.communicate()
        time.sleep(0.002)
    new = _png_bytes(5, size=64)
    source.write_bytes(new)
    stderr = _finish(process)
    if process.returncode == 1:  # the change was seen before the summary was written
        assert _errors(stderr) == ["error: big.png: input changed while it was being segmented; run again to redo it"]
        assert not (out / "big.json").exists()
    else:
        assert process.returncode == 0, stderr
    _no_partial_file(out)
    rerun = _run(args)
    assert rerun.returncode == 0, rerun.stderr
    assert _statuses(out) == {"big.png": "done"}  # redone: never taken as made from the new content
    np.testing.assert_array_equal(_labels(out / "big_labels.png"), _reference_labels(tmp_path, new))


def test_resume_decides_by_content_when_times_cannot_be_trusted(tmp_path):
    """A copied tree (new times, same content) is up to date; a rewrite that keeps size and time is
    caught by --check-content. PPM files have the same size whatever their pixels."""
    indir, out = tmp_path / "in", tmp_path / "out"
    indir.mkdir()
    for i in range(2):
        assert cv2.imwrite(str(indir / f"p{i}.ppm"), _scene(40, i))
    args = ["batch", str(indir), "-o", str(out), "--workers", "1", *FAST]
    assert _run(args).returncode == 0
    copy_in, copy_out = tmp_path / "copy_in", tmp_path / "copy_out"
    time.sleep(0.01)
    shutil.copytree(indir, copy_in, copy_function=shutil.copyfile)  # new modification times
    shutil.copytree(out, copy_out, copy_function=shutil.copyfile)
    assert (copy_in / "p0.ppm").stat().st_mtime_ns != (indir / "p0.ppm").stat().st_mtime_ns
    copied = _run(["batch", str(copy_in), "-o", str(copy_out), "--workers", "1", *FAST])
    assert copied.returncode == 0 and _summary(copy_out)["counts"]["skipped"] == 2

    target = indir / "p0.ppm"
    before = target.stat()
    assert cv2.imwrite(str(target), _scene(40, 9))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_size == before.st_size
    assert _summary(out)["counts"]["done"] == 2
    trusted = _run(args)
    assert _statuses(out)["p0.ppm"] == "skipped", trusted.stderr  # size and time say unchanged
    checked = _run([*args, "--check-content"])
    assert checked.returncode == 0 and _statuses(out) == {"p0.ppm": "done", "p1.ppm": "skipped"}


# --------------------------------------------------------- output trouble
def test_an_output_folder_that_is_a_file(tmp_path):
    _png(tmp_path / "in" / "a.png", 0)
    (tmp_path / "out").write_text("not a folder")
    result = _run(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *FAST])
    assert result.returncode == 1
    assert _errors(result.stderr) == [f"error: {tmp_path / 'out'}: cannot create output folder (File exists)"]


@pytest.mark.parametrize("how", ["removed", "replaced by a file"])
def test_an_output_folder_removed_during_the_run_stops_the_batch(tmp_path, how):
    indir, out = tmp_path / "in", tmp_path / "out"
    _png(indir / "a.png", 0)
    fifo = _fifo(indir / "b.png")
    _png(indir / "c.png", 2)
    args = ["batch", str(indir), "-o", str(out), "--workers", "1", *FAST]
    process = _start(args)
    writer = _wait_for_reader(fifo, process)
    shutil.rmtree(out)
    if how != "removed":
        out.write_text("in the way")
    _feed(writer, _png_bytes(1))
    stderr = _finish(process)
    assert process.returncode == 1
    assert _errors(stderr) == [
        f"error: {out}: the output folder was removed or replaced during the run; "
        "batch stopped, run it again once the folder is usable"
    ]
    if how != "removed":
        assert out.read_text() == "in the way"  # left alone; a rerun once it is gone is the case below
        return
    _no_partial_file(out)
    fifo.unlink()
    _png(fifo, 1)
    rerun = _run(args)
    assert rerun.returncode == 0, rerun.stderr
    assert len(list(out.glob("*_labels.png"))) == 3 and _summary(out)["counts"]["failed"] == 0


@contextlib.contextmanager
def _read_only(folder: Path):
    """``folder`` read-only for new writes, also while a run holds files open in it; writable again on exit.

    Yields the error the system then gives (its ``strerror``). Not root: the folder's mode (0o555).
    Root ignores modes, so a read-only bind mount of the folder on itself, which takes effect at once
    for every path looked up through it. (``mount -o remount,ro`` of a whole filesystem cannot do
    this: it fails, exit 32 "mount point is busy", while a run holds its lock file open for writing.)
    """
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield os.strerror(errno.EACCES)
        finally:
            folder.chmod(0o755)
        return
    bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True, timeout=30)
    if bound.returncode == 0:
        bound = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True, timeout=30)
        if bound.returncode != 0:
            subprocess.run(["umount", str(folder)], check=True, timeout=30)
    if bound.returncode != 0:
        pytest.skip(f"as root, a read-only folder needs a bind mount, which is not allowed here ({bound.stderr.strip()})")
    try:
        yield os.strerror(errno.EROFS)
    finally:
        subprocess.run(["umount", str(folder)], check=True, timeout=30)


def test_a_read_only_output_folder_from_the_start_and_during_the_run(tmp_path):
    indir, out = tmp_path / "in", tmp_path / "out"
    _png(indir / "a.png", 0)
    fifo = _fifo(indir / "b.png")
    out.mkdir()
    args = ["batch", str(indir), "-o", str(out), "--workers", "1", *FAST]
    with _read_only(out) as cause:
        first = _run(args, timeout=60)
        assert first.returncode == 1
        assert _errors(first.stderr) == [f"error: {out}: cannot write to the output folder ({cause})"]
        assert list(out.iterdir()) == []

    process = _start(args)  # a.png is done, then the folder turns read-only while b.png is being read
    writer = _wait_for_reader(fifo, process)
    with _read_only(out):
        _feed(writer, _png_bytes(1))
        stderr = _finish(process, 60)
        assert process.returncode == 1
        assert _errors(stderr) == [
            f"error: {out}: the output folder can no longer be written ({cause}); "
            "batch stopped, run it again once the folder is usable"
        ]
    _no_partial_file(out, lock_left=True)  # the run could not remove its lock file: harmless without the lock
    assert sorted(p.name for p in out.glob("*.png")) == ["a_color.png", "a_labels.png", "a_overlay.png"]

    fifo.unlink()
    _png(fifo, 1)
    rerun = _run(args, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert _statuses(out) == {"a.png": "skipped", "b.png": "done"}
    _no_partial_file(out)


@contextlib.contextmanager
def _tmpfs(path: Path, size: str):
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True, timeout=30
    )
    if mounted.returncode != 0:
        pytest.skip(f"this machine does not allow mounting a tmpfs ({mounted.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


def test_a_full_disk_fails_with_one_line_and_the_rerun_finishes_after_it_grows(tmp_path):
    """A 1 MB tmpfs, filled by a ballast file but for 64 KB: about one image's outputs fit, the others do not."""
    indir = tmp_path / "in"
    for i in range(5):
        _png(indir / f"n{i}.png", i)
    with _tmpfs(tmp_path / "mnt", "1m") as mnt:
        room = os.statvfs(mnt)
        (mnt / "ballast").write_bytes(bytes(room.f_bavail * room.f_frsize - 64 * 1024))
        out = mnt / "out"
        args = ["batch", str(indir), "-o", str(out), "--workers", "1", "--save", "labels,color,overlay", *FAST]
        first = _run(args, timeout=60)
        assert first.returncode == 1, first.stderr
        errors = _errors(first.stderr)
        assert errors and all("no space left" in line.lower() for line in errors), errors
        _no_partial_file(out, lock_left=True)
        assert (out / "n0.json").is_file() and not (out / "n4.json").exists()  # it filled up during the run
        subprocess.run(["mount", "-o", "remount,size=8m", str(mnt)], check=True, capture_output=True, timeout=30)
        rerun = _run(args, timeout=60)
        assert rerun.returncode == 0, rerun.stderr
        assert _summary(out)["counts"]["failed"] == 0 and len(list(out.glob("*_labels.png"))) == 5
        _no_partial_file(out)


# ---------------------------------------------------- two runs on one OUTDIR
def test_a_second_run_on_the_same_output_folder_is_refused_and_a_crash_leaves_no_lock(tmp_path):
    indir, out = tmp_path / "in", tmp_path / "out"
    _png(indir / "a.png", 0)
    fifo = _fifo(indir / "b.png")
    args = ["batch", str(indir), "-o", str(out), "--workers", "1", *FAST]
    first = _start(args)
    writer = _wait_for_reader(fifo, first)
    second = _run(args)
    assert second.returncode == 1
    assert _errors(second.stderr) == [
        f"error: {out}: another segment batch (pid {first.pid}) is writing to this folder; "
        "wait for it to finish, or choose another output folder"
    ]
    _feed(writer, _png_bytes(1))
    stderr = _finish(first)
    assert first.returncode == 0, stderr
    _no_partial_file(out)

    crashed = _start([*args, "--overwrite"])  # killed while it holds the folder
    writer = _wait_for_reader(fifo, crashed)
    os.killpg(crashed.pid, signal.SIGKILL)
    crashed.communicate(timeout=60)
    os.close(writer)
    fifo.unlink()
    _png(fifo, 1)
    after = _run(args)
    assert after.returncode == 0, after.stderr
    _no_partial_file(out)


# ------------------------------------------------------------------- Dask
needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="needs the dask extra")


@needs_dask
def test_dask_time_limit_counts_from_the_start_of_each_image(tmp_path):
    """One Dask worker of one thread: b.png waits behind the hung a.png for the whole time limit,
    then runs; it must not be counted as timed out."""
    indir, out = tmp_path / "in", tmp_path / "out"
    _fifo(indir / "a.png")
    _png(indir / "b.png", 1)
    limit = 10
    args = ["batch", str(indir), "-o", str(out), "--executor", "dask", "--workers", "1", "--timeout", str(limit), *FAST]
    started = time.time()
    result = _run(args, timeout=120)
    assert result.returncode == 1, result.stderr
    assert _errors(result.stderr) == [f"error: a.png: timed out after {limit} s"]
    assert _statuses(out) == {"a.png": "failed", "b.png": "done"}
    assert (out / "b_labels.png").stat().st_mtime > started + limit  # it did wait behind a.png
    _no_partial_file(out)


@needs_dask
def test_a_killed_dask_worker_is_retried_elsewhere_with_the_same_outputs(tmp_path):
    """SIGKILL the Dask worker process that reads b.png (a local cluster of two worker processes, each
    with its nanny): the scheduler gives the task to another worker."""
    indir, out = tmp_path / "in", tmp_path / "out"
    _png(indir / "a.png", 0)
    fifo = _fifo(indir / "b.png")
    _png(indir / "c.png", 2)
    process = _start(["batch", str(indir), "-o", str(out), "--executor", "dask", "--workers", "2", *FAST])
    data = _png_bytes(1)
    _kill_reader_after_replacing(fifo, process, data)
    stderr = _finish(process, 120)
    assert process.returncode == 0, stderr
    assert _errors(stderr) == []
    assert set(_statuses(out).values()) == {"done"}
    np.testing.assert_array_equal(_labels(out / "b_labels.png"), _reference_labels(tmp_path, data))
    _no_partial_file(out)
