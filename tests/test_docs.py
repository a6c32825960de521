"""The documentation builds without warnings, and its API page lists the estimators.

The gallery pages are rendered without running the examples
(``-D plot_gallery=0``): ``tests/test_examples.py`` runs every example.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

MISSING = [
    name
    for name in ("sphinx", "numpydoc", "sphinx_gallery")
    if importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"the docs extra is not installed ({', '.join(MISSING)} missing): "
    "pip install -e '.[docs]'",
)

PUBLIC_ESTIMATORS = [
    "ImageValidator",
    "SizeOutlierRejector",
    "ImageResizer",
    "IntensityFeatures",
    "IntensityKMeans",
    "ImageRandomOverSampler",
    "ImageRandomUnderSampler",
    "CNNClassifier",
    "CNNFeatureExtractor",
    "ScoreWeightedVotingClassifier",
]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-D",
            "plot_gallery=0",
            "-d",
            str(out / "doctrees"),
            str(DOCS),
            str(out / "html"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    assert "WARNING" not in result.stderr, result.stderr[-5000:]
    return out / "html"


def test_docs_build_without_warnings(html):
    for page in ("index", "install", "cli", "app", "reports", "api"):
        assert (html / f"{page}.html").is_file(), page


def test_api_page_lists_the_public_estimators(html):
    api = (html / "api.html").read_text()
    for name in PUBLIC_ESTIMATORS:
        assert name in api, name
        assert (
            html / "gen_modules" / f"skmedimg.{_module(name)}.{name}.html"
        ).is_file()


@pytest.mark.parametrize(
    "name, methods",
    [
        ("ImageValidator", ["fit_resample", "fit"]),
        ("ImageRandomUnderSampler", ["fit_resample", "fit"]),
        ("ImageResizer", ["fit", "transform", "set_output"]),
        ("CNNClassifier", ["fit", "predict", "predict_proba", "set_params"]),
    ],
)
def test_class_pages_document_their_methods(html, name, methods):
    # Methods inherited from a private skmedimg base (a sampler's
    # fit_resample) are documented; scikit-learn's own mixins are not.
    full = f"skmedimg.{_module(name)}.{name}"
    page = (html / "gen_modules" / f"{full}.html").read_text()
    for method in methods:
        assert f'id="{full}.{method}"' in page, method
    assert f'id="{full}.get_metadata_routing"' not in page


def test_gallery_has_every_example(html):
    for example in sorted((ROOT / "examples").glob("plot_*.py")):
        if "dask" in example.name and importlib.util.find_spec("dask") is None:
            continue  # left out of the gallery without the dask extra
        page = html / "auto_examples" / f"{example.stem}.html"
        assert page.is_file(), example.name


def _module(name):
    if name.startswith("CNN"):
        return "neural"
    if name == "ScoreWeightedVotingClassifier":
        return "ensemble"
    return "preprocessing"
