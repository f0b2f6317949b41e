"""Make docs/before_after.png for the README: original | boundaries | labels, by `segment`.

Run: python scripts/make_readme_figure.py [IMAGE]   (default sample_images/coffee.jpg)
"""

import sys
from pathlib import Path

import cv2
import numpy as np

import segment
from segment.render import display_rgb

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "sample_images" / "coffee.jpg"
    result = segment.segment_image(source)
    original = display_rgb(result.image)
    panels = [original, result.overlay(), result.to_rgb()]
    gap = np.full((original.shape[0], 8, 3), 255, np.uint8)
    figure = np.hstack([panels[0], gap, panels[1], gap, panels[2]])
    scale = 900 / figure.shape[1]
    figure = cv2.resize(figure, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out = ROOT / "docs" / "before_after.png"
    out.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
