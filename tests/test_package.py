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


def _api_page_names():
    """``{module: names}`` listed by the autosummary blocks of docs/api.rst."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "api.rst"
    listed, module, in_block = {}, None, False
    for line in page.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\.\. currentmodule:: (\S+)", line)
        if found:
            module, in_block = found.group(1), False
        elif line.startswith(".. autosummary::"):
            in_block = True
        elif in_block and line.strip() and not line.startswith("   :"):
            name = re.match(r"   ([A-Za-z_][\w.]*)\s*$", line)
            if name is None:
                in_block = False
            else:
                listed.setdefault(module, set()).add(name.group(1))
    return listed


def test_the_api_page_lists_exactly_the_public_names():
    # the API page and __all__ never drift apart: what is public is
    # documented, and internal helpers are in neither
    import importlib

    listed = _api_page_names()
    for name in _public_submodules():
        if name == "pipeline":
            continue  # documented with automodule
        module = importlib.import_module(f"skmedimg.{name}")
        assert set(listed.get(module.__name__, ())) == set(module.__all__), name


def test_internal_helpers_are_not_public():
    from skmedimg import app, neural, utils

    for module, names in [
        (neural, ["make_augment", "freeze_backbone", "find_last_conv", "load_weights"]),
        (utils, ["resolve_verbose", "check_size", "item_name"]),
        (app, ["add_serve_parser", "MODEL_EXTENSIONS", "DEFAULT_MAX_PIXELS"]),
    ]:
        for name in names:
            assert hasattr(module, name), name  # still importable
            assert name not in module.__all__, name
