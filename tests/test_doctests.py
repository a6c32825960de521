"""The examples in the docstrings run and print what they say.

Every module of the package is searched; a module whose optional dependency
is not installed is skipped with the reason.
"""

import doctest
import importlib
import io
import pkgutil

import pytest

import skmedimg


def _modules():
    names = [
        info.name
        for info in pkgutil.walk_packages(skmedimg.__path__, "skmedimg.")
        if not info.name.endswith("__main__")  # importing it runs the CLI
    ]
    return ["skmedimg", *sorted(names)]


def _examples(name):
    """The docstring tests of module ``name``, or the reason it cannot be read."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        return None, f"{name} needs an optional dependency: {exc}"
    tests = doctest.DocTestFinder().find(module, name)
    return [t for t in tests if t.examples], None


def _cases():
    for name in _modules():
        tests, reason = _examples(name)
        if reason:
            yield pytest.param(name, marks=pytest.mark.skip(reason=reason), id=name)
        elif tests:
            yield pytest.param(name, id=name)


CASES = list(_cases())


def test_the_examples_were_found():
    # A change to the search (or to the docstrings) must not silently drop them.
    assert len(CASES) >= 10


@pytest.mark.parametrize("name", CASES)
def test_docstring_examples(name):
    tests, _ = _examples(name)
    report = io.StringIO()
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    for test in tests:
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, report.getvalue()
    assert result.attempted > 0
