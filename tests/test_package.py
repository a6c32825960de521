"""The top-level package: light to import, every public subpackage reachable."""

import pkgutil
import subprocess
import sys

import skmedimg


def _public_submodules():
    return sorted(
        info.name
        for info in pkgutil.iter_modules(skmedimg.__path__)
        if not info.name.startswith("_") and info.name != "cli"
    )


def test_every_public_subpackage_is_an_attribute():
    # `skmedimg.app` was missing from the lazy loader: an AttributeError.
    names = _public_submodules()
    assert "app" in names and "neural" in names
    for name in names:
        assert name in dir(skmedimg), name
        assert getattr(skmedimg, name).__name__ == f"skmedimg.{name}"
        assert f":mod:`skmedimg.{name}`" in skmedimg.__doc__, name


def test_importing_the_package_imports_no_torch():
    code = "import sys, skmedimg; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
