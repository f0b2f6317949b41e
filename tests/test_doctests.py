"""The public API has numpydoc Examples sections, and they run.

Covered: every module of segment.gmm, the modules behind ``segment.__all__``,
segment.io, segment.metrics, the collection fit and the histogram.
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import segment
import segment.gmm
import segment.io
import segment.metrics


def _modules(package):
    return [importlib.import_module(f"{package.__name__}.{info.name}") for info in pkgutil.iter_modules(package.__path__)]


GMM_MODULES = _modules(segment.gmm)
API_MODULES = sorted(
    {getattr(segment, name).__module__ for name in segment.__all__ if name != "__version__"} - {"sklearn.exceptions"}
)
OTHER_MODULES = {*API_MODULES, *(m.__name__ for m in _modules(segment.io)), "segment.metrics", "segment.fit_collection", "segment.histogram"}
MODULES = GMM_MODULES + [importlib.import_module(name) for name in sorted(OTHER_MODULES - {m.__name__ for m in GMM_MODULES})]


def _public_objects(module):
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value) or inspect.isclass(value):
            yield name, value


def _missing_examples(objects):
    missing = []
    for name, value in objects:
        if inspect.isclass(value) and issubclass(value, BaseException):
            continue  # an error or warning class needs no example
        if "Examples" not in (value.__doc__ or ""):
            missing.append(name)
        if inspect.isclass(value):
            for attr, member in vars(value).items():
                if not attr.startswith("_") and inspect.isfunction(member) and "Examples" not in (member.__doc__ or ""):
                    missing.append(f"{name}.{attr}")
    return missing


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_doctests_pass(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0


@pytest.mark.parametrize("module", [m for m in GMM_MODULES if not m.__name__.endswith("._kernels")], ids=lambda m: m.__name__)
def test_gmm_public_names_have_examples(module):
    assert not _missing_examples(_public_objects(module)), "no Examples section"


def test_top_level_api_has_examples():
    objects = [(name, getattr(segment, name)) for name in segment.__all__ if name not in ("__version__", "ConvergenceWarning")]
    objects += [(f"io.{name}", getattr(segment.io, name)) for name in segment.io.__all__]
    objects += [(f"metrics.{name}", value) for name, value in _public_objects(segment.metrics) if inspect.isfunction(value)]
    objects = [(name, value) for name, value in objects if inspect.isfunction(value) or inspect.isclass(value)]
    assert not _missing_examples(objects), f"no Examples section: {_missing_examples(objects)}"
