"""What a batch did: :class:`BatchResult` in memory, ``summary.json``, ``summary.csv`` and ``index.html`` on disk."""

from __future__ import annotations

import csv
import signal
import io as _stdio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from segment.batch.contact_sheet import write_contact_sheet
from segment.batch.resume import model_digest
from segment.batch.task import STATUSES, SUMMARY_FIELDS, ImageRecord
from segment.config import SegmentConfig

if TYPE_CHECKING:
    from segment.gmm import Mixture


@dataclass
class BatchResult:
    """The outcome of :func:`segment.batch.run_batch`.

    Attributes
    ----------
    records : list of ImageRecord
        One per image, in discovery order.
    seconds : float
        Wall time of the run.
    interrupted : bool
        Whether the run was stopped by Ctrl-C or SIGTERM (unfinished images are "interrupted").
    stop_signal : int or None
        The signal that stopped it (``signal.SIGINT``, ``signal.SIGTERM``).
    summary_paths : dict
        "json", "csv", "html" -> files written in the output folder.
    """

    records: list[ImageRecord]
    seconds: float
    interrupted: bool = False
    stop_signal: int | None = None
    summary_paths: dict[str, Path] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Number of images per status (every status listed, zeros included)."""
        counts = dict.fromkeys(STATUSES, 0)
        for record in self.records:
            counts[record.status] += 1
        counts["total"] = len(self.records)
        return counts

    @property
    def failed(self) -> list[ImageRecord]:
        """The records of the images that failed."""
        return [r for r in self.records if r.status == "failed"]


def write_summary(
    outdir: Path, result: BatchResult, config: SegmentConfig, digest: str, model: Mixture | None = None
) -> dict[str, Path]:
    """Write ``summary.json``, ``summary.csv`` (one row per image) and ``index.html``, atomically."""
    from segment import __version__, io

    rows = [record.row() for record in result.records]
    data = {
        "segment_version": __version__,
        "seconds": round(result.seconds, 3),
        "interrupted": result.interrupted,
        "stopped_by": signal.Signals(result.stop_signal).name if result.stop_signal else None,
        "counts": result.counts,
        "settings": config.to_dict(),
        "settings_digest": digest,
        "model_digest": model_digest(model),
        "images": rows,
    }
    json_path = io.write_json(outdir / "summary.json", data)
    buffer = _stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    text = buffer.getvalue()
    csv_path = io.write_atomic(outdir / "summary.csv", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    counts = {k: v for k, v in result.counts.items() if v or k in ("done", "skipped", "failed")}
    cards = []
    for record in result.records:
        card = record.row()
        card.update(
            thumbnail=record.thumbnail,
            segmentation_thumbnail=record.segmentation_thumbnail,
            outputs=record.outputs,
        )
        cards.append(card)
    html_path = write_contact_sheet(outdir, cards, title=f"segment batch: {outdir.name}", counts=counts)
    return {"json": json_path, "csv": csv_path, "html": html_path}
