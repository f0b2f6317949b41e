"""Recreate sample_images/ from scikit-image's bundled data and a synthetic scene.

Run: python scripts/make_samples.py  (needs scikit-image; writes sample_images/*)
"""

from pathlib import Path

import cv2
import numpy as np
from skimage import data

OUT = Path(__file__).resolve().parent.parent / "sample_images"


def synthetic_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 240x320 RGB scene of four coloured shapes with noise, and its true labels 1..4."""
    height, width = 240, 320
    rows, cols = np.mgrid[:height, :width]
    truth = np.full((height, width), 1, dtype=np.uint8)  # background
    truth[rows > 170] = 2  # ground band
    truth[(rows - 90) ** 2 + (cols - 100) ** 2 < 55**2] = 3  # disc
    truth[(rows > 60) & (rows < 200) & (cols > 190) & (cols < 280)] = 4  # box
    colours = np.array([[0, 0, 0], [70, 110, 170], [90, 140, 60], [200, 60, 50], [225, 190, 70]], dtype=np.float64)
    rng = np.random.default_rng(seed)
    image = colours[truth] + rng.normal(0, 18, size=(height, width, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8), truth


def main() -> None:
    OUT.mkdir(exist_ok=True)
    rgb = {
        "coffee.jpg": data.coffee(),
        "astronaut.jpg": data.astronaut(),
        "ihc.jpg": data.immunohistochemistry(),
    }
    for name, image in rgb.items():
        cv2.imwrite(str(OUT / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.imwrite(str(OUT / "coins.png"), data.coins())
    cv2.imwrite(str(OUT / "page.png"), data.page())
    image, truth = synthetic_scene()
    cv2.imwrite(str(OUT / "synthetic.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(OUT / "synthetic_truth.png"), truth)


if __name__ == "__main__":
    main()
