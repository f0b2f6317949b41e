"""Make docs/quality.png for the README: BSDS500 val photos with segment's default regions.

Each row: the photo, its region boundaries drawn by `segment` with default settings, and the
boundaries of one human segmentation. The data set is read from --root and never copied
into the repository; only the figure is.

Run: python scripts/make_quality_figure.py [--root /work/shared/bsds500] [--names ID ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import segment
from segment import metrics
from segment.evaluate import find_ground_truth
from segment.render import display_rgb

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NAMES = ("101085", "108005", "145086", "167062")


def boundaries(image: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """``image`` with the pixels where ``labels`` changes (right or down) painted ``colour``."""
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge = cv2.dilate(edge.astype(np.uint8), np.ones((2, 2), np.uint8)) > 0
    out = image.copy()
    out[edge] = colour
    return out


def landscape(image: np.ndarray) -> np.ndarray:
    return image if image.shape[1] >= image.shape[0] else np.rot90(image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/work/shared/bsds500"))
    parser.add_argument("--names", nargs="+", default=list(DEFAULT_NAMES))
    args = parser.parse_args()
    rows = []
    for name in args.names:
        path = args.root / "images" / "val" / f"{name}.jpg"
        result = segment.segment_image(path)
        photo = display_rgb(result.image)
        human = metrics.load_ground_truth(find_ground_truth(args.root / "groundTruth" / "val", name))[0]
        panels = [photo, boundaries(photo, result.labels, (255, 32, 32)), boundaries(photo, human, (32, 255, 32))]
        panels = [landscape(panel) for panel in panels]
        gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
        rows.append(np.hstack([panels[0], gap, panels[1], gap, panels[2]]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    figure = np.vstack(rows)
    scale = 900 / figure.shape[1]
    figure = cv2.resize(figure, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out = ROOT / "docs" / "quality.png"
    out.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
