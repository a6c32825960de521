"""Sphinx configuration of the skmedimg documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` (the ``docs``
extra installs what it needs). The gallery runs every example in its fast mode
(``SKMEDIMG_EXAMPLES_FAST=1``, a few seconds each) unless the environment says
otherwise; ``-D plot_gallery=0`` renders the gallery without running it.
"""

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # skmedimg itself, when not installed
sys.path.insert(0, str(HERE / "_sphinxext"))

import skmedimg  # noqa: E402

os.environ.setdefault("SKMEDIMG_EXAMPLES_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# A fresh folder per build: the gallery's scraper shows the PNG files that
# each example writes there.
os.environ["SKMEDIMG_EXAMPLES_OUT"] = tempfile.mkdtemp(prefix="skmedimg_gallery_")

project = "skmedimg"
author = "The skmedimg developers"
copyright = "the skmedimg developers"
release = skmedimg.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "_sphinxext", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc -----------------------------------------
autosummary_generate = True
# Class pages list the methods a class defines or inherits from a private
# skmedimg base (a sampler's fit_resample), not scikit-learn's: see the class
# template. An "inherited-members" default here would override the template.
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
# Methods are documented on the class pages by the template; numpydoc's own
# member tables would list scikit-learn's inherited methods, whose docstrings
# point at labels of scikit-learn's documentation.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()
# Docstrings copied from scikit-learn use terms of its glossary (:term:`fit`),
# which this documentation does not have.
suppress_warnings = ["ref.term"]


def _skip_member(app, what, name, obj, skip, options):
    """Skip scikit-learn's generated ``set_*_request`` methods (metadata routing)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)


# -- sphinx-gallery -------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"plot_",
    "within_subsection_order": "skmedimg_gallery.ReportOrder",
    "image_scrapers": ("skmedimg_gallery.png_scraper",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "show_memory": False,
    "show_signature": False,
    "matplotlib_animations": False,
    "reference_url": {},
}

try:  # the Dask example needs the dask extra
    import dask.distributed  # noqa: F401
except ImportError:  # pragma: no cover
    sphinx_gallery_conf["ignore_pattern"] = r"plot_dask_"

# -- HTML -----------------------------------------------------------------------
try:
    import pydata_sphinx_theme  # noqa: F401

    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        "secondary_sidebar_items": ["page-toc"],
    }
except ImportError:  # pragma: no cover - the docs extra installs it
    html_theme = "alabaster"
html_title = f"skmedimg {release}"
html_static_path = [str(HERE / "_static")]
html_css_files = ["skmedimg.css"]
html_show_sourcelink = False
