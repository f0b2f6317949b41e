"""Synthetic document scans with known ink, for scripts/bench_documents.py.

A page is drawn as ink coverage (text lines in OpenCV's Hershey fonts at
several sizes and stroke widths, rules, boxes, an underline and a circle)
at twice the resolution and area-averaged down, so edges are anti-aliased;
the ink truth is where coverage reaches one half. The scan then gets what
a real one has: paper colour and fibre texture, the mirrored text of the
other side showing through faintly, ink of varying darkness and hue,
uneven light (a lamp's falloff and a darker gutter), lens blur, sensor
noise and JPEG compression.

Example
-------
    from document_pages import make_page
    scan, ink = make_page(np.random.default_rng(0))
"""

from __future__ import annotations

import string

import cv2
import numpy as np

HEIGHT, WIDTH = 800, 600
FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
)
LETTERS = string.ascii_letters + string.digits + ".,;:-()"


def _words(rng: np.random.Generator, n: int) -> str:
    lengths = rng.integers(1, 10, size=n)
    return " ".join("".join(rng.choice(list(LETTERS), size=k)) for k in lengths)


def ink_coverage(rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """Fraction of every pixel covered by ink, (height, width) float32 in [0, 1]."""
    scale = 2  # drawn at twice the size, then area-averaged: anti-aliased edges
    canvas = np.zeros((height * scale, width * scale), np.uint8)
    margin = int(rng.integers(30, 60)) * scale
    y = margin
    while True:
        font = int(rng.choice(FONTS))
        size = float(rng.uniform(0.35, 0.9)) * scale
        thickness = int(rng.integers(2, 5))  # 1 to 2 pixels at the page's resolution
        text = _words(rng, 10)
        (_, text_height), baseline = cv2.getTextSize(text, font, size, thickness)
        y += text_height + baseline + int(rng.integers(4, 14)) * scale
        if y > canvas.shape[0] - margin:
            break
        x = margin + int(rng.integers(0, 20)) * scale
        cv2.putText(canvas, text, (x, y), font, size, 255, thickness, cv2.LINE_AA)
        if rng.random() < 0.1:  # an underline
            cv2.line(canvas, (x, y + baseline), (x + 200 * scale, y + baseline), 255, scale)
    _draw_figures(rng, canvas, scale)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _draw_figures(rng: np.random.Generator, canvas: np.ndarray, scale: int) -> None:
    """A ruled box, a table grid and a circle, in thin strokes."""
    h, w = canvas.shape
    top, left = int(rng.integers(h // 4, h // 2)), int(rng.integers(w // 10, w // 3))
    bottom, right = top + int(rng.integers(h // 10, h // 5)), left + int(rng.integers(w // 4, w // 2))
    cv2.rectangle(canvas, (left, top), (right, bottom), 255, scale)
    for row in np.linspace(top, bottom, 4)[1:-1]:
        cv2.line(canvas, (left, int(row)), (right, int(row)), 255, max(1, scale // 2))
    centre = (int(rng.integers(w // 2, w - w // 8)), int(rng.integers(h // 2, h - h // 8)))
    cv2.circle(canvas, centre, int(rng.integers(10, 30)) * scale, 255, scale, cv2.LINE_AA)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    noise = cv2.GaussianBlur(rng.normal(size=shape).astype(np.float32), (0, 0), sigma)
    return noise / (noise.std() + 1e-6)


def illumination(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A lamp's radial falloff plus a darker gutter along one side, (height, width) float32 around 0.6..1."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cy, cx = rng.uniform(-0.3, 1.3) * height, rng.uniform(-0.3, 1.3) * width
    distance = np.hypot((y - cy) / height, (x - cx) / width)
    light = 1.0 - rng.uniform(0.15, 0.35) * distance**2
    gutter = rng.uniform(0.1, 0.25) * np.exp(-x / (rng.uniform(0.05, 0.15) * width))
    return np.clip(light - gutter, 0.45, 1.0).astype(np.float32)


def make_page(rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic scan and its ink truth.

    Returns
    -------
    scan : (height, width, 3) uint8 ndarray
        RGB, JPEG-compressed.
    ink : (height, width) bool ndarray
        Pixels at least half covered by ink.
    """
    coverage = ink_coverage(rng, height, width)
    back = cv2.GaussianBlur(ink_coverage(rng, height, width)[:, ::-1], (0, 0), 1.5)
    paper = np.array([rng.uniform(215, 250), rng.uniform(205, 240), rng.uniform(180, 230)], np.float32)
    texture = 1 + 0.025 * _smooth_noise(rng, (height, width), 6) + 0.012 * _smooth_noise(rng, (height, width), 0.7)
    page = paper * texture[:, :, None]
    page *= (1 - rng.uniform(0.12, 0.3) * back)[:, :, None]  # the other side shows through
    ink_colour = np.array([rng.uniform(10, 60), rng.uniform(10, 50), rng.uniform(20, 90)], np.float32)
    darkness = np.clip(1 + 0.15 * _smooth_noise(rng, (height, width), 20), 0.6, 1.3)[:, :, None]
    ink_value = np.clip(ink_colour * darkness, 0, 255)
    page = page * (1 - coverage[:, :, None]) + ink_value * coverage[:, :, None]
    page *= illumination(rng, height, width)[:, :, None]
    page = cv2.GaussianBlur(page, (0, 0), rng.uniform(0.5, 0.9))
    page += rng.normal(0, rng.uniform(2, 6), page.shape).astype(np.float32)
    scan = np.clip(page, 0, 255).astype(np.uint8)
    quality = int(rng.integers(60, 90))
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(scan, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    scan = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return scan, coverage >= 0.5
