"""First use: the region kernels compile in a second process while the command compiles the rest."""

import json
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np

import segment

# Runs `segment image` in this process, listing every region-graph kernel this process compiled.
FIRST_USE = textwrap.dedent(
    """
    import json, sys
    from numba.core import event
    from segment import precompile
    compiled = set()

    class Listener(event.Listener):
        def on_start(self, ev):
            function = ev.data["dispatcher"].py_func
            if function.__module__ == "segment._region_kernels":
                compiled.add(function.__name__)

        def on_end(self, ev):
            pass

    event.register("numba:compile", Listener())
    cold = not precompile.region_kernels_cached()
    sys.argv = ["segment", "image", *sys.argv[1:]]
    from segment.cli import app
    try:
        app()
    except SystemExit as stop:
        code = stop.code
    print(json.dumps({"cold": cold, "code": code, "compiled_here": sorted(compiled),
                      "cached_after": precompile.region_kernels_cached()}))
    """
)


def _run(args, cache, cwd):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), NUMBA_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", FIRST_USE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_use_compiles_the_region_kernels_in_a_helper_process(tmp_path, samples):
    image = cv2.resize(cv2.imread(str(samples / "astronaut.jpg")), (96, 80), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "photo.png"), image)
    cache = tmp_path / "numba_cache"
    first = _run(["photo.png", "-o", "first", "-q"], cache, tmp_path)
    assert first["cold"] and first["code"] == 0
    assert first["compiled_here"] == []  # every region kernel came from the helper's cache entries
    assert first["cached_after"]

    again = _run(["photo.png", "-o", "again", "-q"], cache, tmp_path)
    assert not again["cold"] and again["compiled_here"] == []
    labels = [cv2.imread(str(tmp_path / out / "photo_labels.png"), cv2.IMREAD_UNCHANGED) for out in ("first", "again")]
    expected = segment.segment_image(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).labels
    for got in labels:
        np.testing.assert_array_equal(got, expected)


def test_a_failed_first_use_leaves_no_helper_running(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    done = _run(["broken.png", "-o", "out"], tmp_path / "numba_cache", tmp_path)
    assert done["cold"] and done["code"] == 1
    assert _processes_using(tmp_path / "numba_cache") == []


def _processes_using(cache):
    """Pids of the processes whose environment names ``cache`` as their Numba cache."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if f"NUMBA_CACHE_DIR={cache}".encode() in environ.read().split(b"\0"):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found
