"""Shared fixtures: the bundled sample images and a synthetic scene with known truth."""

from pathlib import Path

import cv2
import numpy as np
import pytest

# Per-pixel classes: no spatial prior, no region merging, no relabelling.
PLAIN = dict(smoothing=0.0, merge_cost=0.0, min_fraction=0.0, relabel=False)

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def synthetic() -> tuple[np.ndarray, np.ndarray]:
    """The bundled synthetic RGB scene and its true labels 1..4."""
    image = cv2.cvtColor(cv2.imread(str(SAMPLES / "synthetic.png")), cv2.COLOR_BGR2RGB)
    truth = cv2.imread(str(SAMPLES / "synthetic_truth.png"), cv2.IMREAD_UNCHANGED)
    return image, truth


@pytest.fixture
def quadrants() -> np.ndarray:
    """A 20x21 RGB image of four colour quadrants with small noise."""
    rng = np.random.default_rng(1)
    image = np.zeros((20, 21, 3), dtype=np.float64)
    image[:10, :10] = (200, 30, 30)
    image[:10, 10:] = (30, 200, 30)
    image[10:, :10] = (30, 30, 200)
    image[10:, 10:] = (220, 220, 40)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)
