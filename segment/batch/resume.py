"""Resume: which images of a batch are already done, and what a killed run left behind.

An image is done when its JSON summary (written last) records the same
settings digest (:func:`settings_digest`: settings, model and package
version), the input still holds the content the image was made from (see
:mod:`segment.batch.fingerprint`), and every output it lists exists
(:func:`completed_record`). :func:`sweep_temporary_files` removes the
temporary files of writers that were killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segment.batch.discover import BatchItem
from segment.batch.fingerprint import same_content
from segment.batch.task import ImageRecord, record_for, thumbnail_paths
from segment.config import SegmentConfig

if TYPE_CHECKING:
    from segment.gmm import Mixture

# Settings that change how fast or in how little memory an image is done, not its result.
_RESOURCE_SETTINGS = ("n_jobs", "max_memory")
# Temporary files of segment.io.write_atomic and Mixture.save: ".<name>.<pid>.tmp[.<suffix>]".
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp(\.[^.]+)?$")


def model_digest(model: Mixture | None) -> str | None:
    """A hash of a model's parameters and metadata (None for no model)."""
    if model is None:
        return None
    import numpy as np

    digest = hashlib.sha256()
    digest.update(model.covariance_type.encode())
    for array in (model.weights_, model.means_, model.covariances_):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    digest.update(json.dumps(getattr(model, "metadata_", {}) or {}, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def settings_digest(config: SegmentConfig, model: Mixture | None = None) -> str:
    """A hash of everything that decides an image's outputs: settings, model, package version.

    Resource settings (``n_jobs``, ``max_memory``) are left out: they change
    the speed, not the result (except that post-processing is skipped for
    images labelled in bands; see :mod:`segment.tiles`).
    """
    from segment import __version__

    settings = {k: v for k, v in config.to_dict().items() if k not in _RESOURCE_SETTINGS}
    payload = {"version": __version__, "settings": settings, "model": model_digest(model)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def completed_record(item: BatchItem, digest: str, *, trust_times: bool = True) -> dict[str, Any] | None:
    """The stored JSON summary of ``item`` if its outputs are complete and current, else None.

    Complete and current means: the summary exists and was written by a
    batch with the same settings digest, the input holds the content the
    outputs were made from (same size and modification time, or with
    ``trust_times=False`` or when those differ, the same SHA-256), and every
    output the summary lists exists.
    """
    try:
        data = json.loads(item.summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    batch = data.get("batch") if isinstance(data, dict) else None
    if not isinstance(batch, dict) or batch.get("settings_digest") != digest:
        return None
    if not same_content(item.source, batch.get("source"), trust_times=trust_times):
        return None
    if not all((item.outdir / relative).is_file() for relative in batch.get("files", [])):
        return None
    return data


def skipped_record(item: BatchItem, root: Path, data: dict[str, Any]) -> ImageRecord:
    """The "skipped" record of ``item`` from its stored JSON summary ``data`` (see :func:`completed_record`)."""
    thumbnails = thumbnail_paths(item, root)
    shape = (data.get("input") or {}).get("shape") or [0, 0]
    outputs = [(item.outdir / name).relative_to(root).as_posix() for name in (data.get("outputs") or {}).values()]
    return record_for(
        item,
        root,
        "skipped",
        components=data.get("n_components"),
        labels=data.get("n_labels"),
        pixels=int(shape[0]) * int(shape[1]),
        tiled="tiling" in data,
        thumbnail=thumbnails[0].relative_to(root).as_posix(),
        segmentation_thumbnail=thumbnails[1].relative_to(root).as_posix(),
        outputs=outputs,
    )


def sweep_temporary_files(outdir: str | os.PathLike) -> list[Path]:
    """Remove temporary files left under ``outdir`` by processes that were killed while writing.

    Only files named like the package's temporary files (``.<name>.<pid>.tmp[.<suffix>]``)
    whose process no longer runs are removed. Returns the paths removed.
    """
    removed = []
    for folder, _, filenames in os.walk(outdir):
        for filename in filenames:
            match = _TEMPORARY.match(filename)
            if match and not _process_alive(int(match.group(1))):
                path = Path(folder) / filename
                try:
                    path.unlink()
                    removed.append(path)
                except OSError:
                    pass
    return removed


def remove_temporary_files(folders: tuple[Path, ...], pid: int) -> None:
    """Remove the temporary files that process ``pid`` (now dead) left in ``folders`` (not their sub-folders)."""
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            match = _TEMPORARY.match(name)
            if match and int(match.group(1)) == pid:
                try:
                    (Path(folder) / name).unlink()
                except OSError:
                    pass


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes nothing while it sweeps
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
