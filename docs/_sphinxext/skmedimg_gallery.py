"""Sphinx-gallery helpers of the skmedimg docs: the example order and a PNG scraper.

The examples write their figures as PNG files to ``$SKMEDIMG_EXAMPLES_OUT``
(they close their matplotlib figures, and some figures are made without
pyplot), so the gallery shows exactly those files: after each code block,
:func:`png_scraper` copies the PNG files written since the last block.
"""

import os
import shutil
from pathlib import Path

from sphinx_gallery.scrapers import figure_rst

#: The examples in the order of the methods of the source reports.
EXAMPLE_ORDER = [
    "plot_validation_outliers.py",
    "plot_resizing.py",
    "plot_intensity_kmeans.py",
    "plot_transfer_learning.py",
    "plot_fine_tuning.py",
    "plot_grid_search.py",
    "plot_dask_grid_search.py",
    "plot_cross_validation.py",
    "plot_class_imbalance.py",
    "plot_features_svm.py",
    "plot_weighted_ensemble.py",
    "plot_gradcam.py",
    "plot_medmnist.py",
    "plot_tumour_vs_no_tumour.py",
    "plot_segmentation.py",
    "plot_brain_tumour_segmentation.py",
]


class ReportOrder:
    """Sort key of sphinx-gallery: :data:`EXAMPLE_ORDER`, unknown files last."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        if name in EXAMPLE_ORDER:
            return (EXAMPLE_ORDER.index(name), name)
        return (len(EXAMPLE_ORDER), name)

    def __repr__(self):
        return "ReportOrder"


_SEEN = {}


def png_scraper(block, block_vars, gallery_conf, **kwargs):
    """Show the PNG files an example wrote to ``$SKMEDIMG_EXAMPLES_OUT``."""
    out = Path(os.environ["SKMEDIMG_EXAMPLES_OUT"])
    names = []
    for png in sorted(out.glob("*.png")):
        stamp = png.stat().st_mtime_ns
        if _SEEN.get(png) == stamp:
            continue
        _SEEN[png] = stamp
        target = next(block_vars["image_path_iterator"])
        shutil.copyfile(png, target)
        names.append(target)
    return figure_rst(names, gallery_conf["src_dir"])
