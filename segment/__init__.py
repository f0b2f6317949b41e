"""segment: fast image segmentation with Gaussian mixtures fitted by Numba EM.

The public API is re-exported here and imported lazily, so that
``segment --version`` and ``import segment`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "segment_image": "segment.pipeline",
    "Segmentation": "segment.result",
    "segment_volume": "segment.volume",
    "VolumeSegmentation": "segment.volume",
    "SegmentConfig": "segment.config",
    "GaussianMixture": "segment.gmm",
    "Mixture": "segment.gmm",
    "ConvergenceWarning": "segment.gmm",
    "load_image": "segment.io",
    "ImageReadError": "segment.io",
    "save_segmentation": "segment.outputs",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'segment' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
