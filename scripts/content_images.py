"""Worst-case content for the cost benchmark: a photo and pictures made of fine detail.

Every picture has the photo's size, so their times compare directly with the
photo's. Used by ``scripts/bench.py --content`` (and the tests' content
checks); each generator is deterministic.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def photo(source: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``source`` (RGB) resized (bicubic, area when shrinking) to ``shape`` = (height, width)."""
    height, width = shape
    shrink = height * width < source.shape[0] * source.shape[1]
    method = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(source, (width, height), interpolation=method)


def salt_and_pepper(image: np.ndarray, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """``fraction`` of the pixels set to black or white at random."""
    rng = np.random.default_rng(seed)
    out = image.copy()
    hit = rng.random(image.shape[:2]) < fraction
    out[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0, 255).astype(np.uint8)[:, None]
    return out


def dithered(image: np.ndarray, colours: int = 16) -> np.ndarray:
    """Floyd–Steinberg dithering to an adaptive palette of ``colours`` colours (Pillow's quantizer)."""
    quantized = Image.fromarray(image).quantize(colours, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(quantized.convert("RGB"))


def halftone(image: np.ndarray, period: int = 6) -> np.ndarray:
    """Clustered-dot halftone: each RGB channel thresholded against a dot screen at 45 degrees (8 inks)."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (xs + ys) * (np.pi / period)
    v = (xs - ys) * (np.pi / period)
    screen = (np.cos(u) * np.cos(v) + 1.0) * 0.5  # dots grow from the cell centres
    return np.where(image.astype(np.float32) / 255.0 > screen[:, :, None], 255, 0).astype(np.uint8)


def uniform_noise(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Every channel of every pixel uniform on 0..255."""
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def checkerboard(shape: tuple[int, int]) -> np.ndarray:
    """Black and white pixels alternating in both directions."""
    ys, xs = np.indices(shape)
    return np.repeat((((ys + xs) % 2) * 255).astype(np.uint8)[:, :, None], 3, axis=2)


def stripes(shape: tuple[int, int]) -> np.ndarray:
    """One-pixel vertical black and white stripes."""
    row = ((np.arange(shape[1]) % 2) * 255).astype(np.uint8)
    return np.repeat(np.broadcast_to(row, shape)[:, :, None], 3, axis=2).copy()


def text_page(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Black text lines on slightly uneven off-white paper, the letters about 1/60 of the page high."""
    height, width = shape
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0.0, 18.0, width, dtype=np.float32)[None, :] + np.linspace(0.0, 10.0, height, dtype=np.float32)[:, None]
    page = np.clip(240.0 - gradient + rng.normal(0.0, 3.0, shape), 0, 255).astype(np.uint8)
    scale = max(height / 900.0, 0.3)
    line_height = int(30 * scale) + 1
    words = "the quick brown fox jumps over a lazy dog while scanners write pages of ink and paper".split()
    margin = int(0.06 * width)
    for y in range(margin + line_height, height - margin, line_height):
        line = " ".join(rng.choice(words, 40))
        cv2.putText(page, line, (margin, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, 20, max(1, int(2 * scale)), cv2.LINE_AA)
    return np.repeat(page[:, :, None], 3, axis=2)


def content_set(source: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The benchmark's pictures of one size, the photo first."""
    base = photo(source, shape)
    return {
        "photo": base,
        "salt and pepper 20%": salt_and_pepper(base),
        "Floyd-Steinberg 16 colours": dithered(base),
        "clustered-dot halftone": halftone(base),
        "uniform noise": uniform_noise(shape),
        "1-pixel checkerboard": checkerboard(shape),
        "1-pixel stripes": stripes(shape),
        "text page": text_page(shape),
    }
