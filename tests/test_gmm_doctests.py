"""Every public function and class of segment.gmm has an Examples section, and it runs."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import segment.gmm

MODULES = [importlib.import_module(f"segment.gmm.{info.name}") for info in pkgutil.iter_modules(segment.gmm.__path__)]


def _public_objects(module):
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value) or inspect.isclass(value):
            yield name, value


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_doctests_pass(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0


@pytest.mark.parametrize("module", [m for m in MODULES if not m.__name__.endswith("._kernels")], ids=lambda m: m.__name__)
def test_public_names_have_examples(module):
    missing = [
        name
        for name, value in _public_objects(module)
        if "Examples" not in (value.__doc__ or "") and not (inspect.isclass(value) and issubclass(value, BaseException))
    ]
    if any(inspect.isclass(value) for _, value in _public_objects(module)):
        for name, cls in _public_objects(module):
            if not inspect.isclass(cls) or issubclass(cls, BaseException):
                continue
            for attr, member in vars(cls).items():
                if not attr.startswith("_") and inspect.isfunction(member) and "Examples" not in (member.__doc__ or ""):
                    missing.append(f"{name}.{attr}")
    assert not missing, f"no Examples section: {missing}"
