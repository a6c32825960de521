"""No subpackage reaches into another subpackage's private names.

What two subpackages share lives in ``skmedimg.utils`` or behind a name that
its owner's ``__init__`` exports (public, or documented there as
package-internal). Top-level modules (``skmedimg/cli.py``,
``skmedimg/_cli_segment.py``, ``skmedimg/_version.py``, ``skmedimg/_shipped.py``)
are the package's own and may use each other; they follow the same rule
towards the subpackages.
"""

import ast
from pathlib import Path

import pytest

import skmedimg

ROOT = Path(skmedimg.__file__).resolve().parent


def _subpackages(root):
    return {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def _module_parts(path, root):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path, root=ROOT):
    """``(line, imported module parts, names)`` of every import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_parts(path, root)
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = base + (node.module.split(".") if node.module else [])
            else:
                module = node.module.split(".")
            yield node.lineno, module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split("."), []


def violations(root=ROOT):
    """Imports of another subpackage's private modules or names, below ``root``."""
    subpackages = _subpackages(root)
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = _module_parts(path, root)
        here = parts[1] if len(parts) > 1 and parts[1] in subpackages else None
        for line, module, names in _imports(path, root):
            if module[0] != root.name or len(module) < 2:
                continue
            there = module[1] if module[1] in subpackages else None
            if there is None or there == here:
                continue  # top-level modules, or inside one subpackage
            private_module = any(part.startswith("_") for part in module[2:])
            private_names = [n for n in names if n.startswith("_")]
            if private_module or private_names:
                where = f"{path.relative_to(root.parent)}:{line}"
                found.append(f"{where} imports {'.'.join(module)} {names}")
    return found


def test_no_subpackage_imports_another_ones_private_names():
    assert violations() == []


def test_the_check_finds_private_imports(tmp_path):
    # a toy package: relative and absolute reaches into another subpackage's
    # private module or name are found; public names and own modules are not
    root = tmp_path / "skmedimg"
    files = {
        "__init__.py": "",
        "cli.py": "from .a._mod import thing\n",
        "a/__init__.py": "from ._mod import thing\n",
        "a/_mod.py": "thing = 1\n_hidden = 2\n",
        "b/__init__.py": "",
        "b/_x.py": "from ..a._mod import thing\nfrom ..a import thing as t\n",
        "b/_y.py": "from skmedimg.a import _hidden\nfrom ._x import t\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    found = violations(root)
    assert len(found) == 3, found
    assert any("cli.py:1" in v for v in found)
    assert any("_x.py:1" in v for v in found)
    assert any("_y.py:1" in v and "_hidden" in v for v in found)


@pytest.mark.parametrize(
    "module, name",
    [
        ("skmedimg.utils", "check_size"),
        ("skmedimg.utils", "item_name"),
        ("skmedimg.utils", "overlapped"),
        ("skmedimg.datasets", "walk_files"),
        ("skmedimg.neural", "torch_random"),
        ("skmedimg.neural", "resolve_loading_device"),
    ],
)
def test_shared_names_are_not_public_api(module, name):
    import importlib

    mod = importlib.import_module(module)
    assert hasattr(mod, name)
    assert name not in mod.__all__  # package-internal, documented in the module
    assert name in mod.__doc__
