"""Datasets: image folders, segmentation folders, MedMNIST files and phantoms.

* :func:`load_image_folder` lists the images of a ``<root>/<class>/<image>``
  folder (the Kaggle layout) with their labels.
* :func:`load_medmnist` reads the official MedMNIST npz files (same names and
  md5 values as the ``medmnist`` package), downloading them on request.
* :func:`load_decathlon` and :func:`load_drive` list the images and label
  masks of Medical Segmentation Decathlon and DRIVE folders.
* :func:`make_phantoms` generates synthetic MRI-like labelled images: the
  embedded dataset that lets everything run offline.
* :func:`make_segmentation_phantoms` generates 2-D or 3-D images with lesion
  label masks (BraTS-like nested classes) for segmentation.

``walk_files`` (the folder walk of :func:`load_image_folder`, which the
command line shares) is package-internal, not part of the public API.
"""

from ._decathlon import load_decathlon, load_drive
from ._folder import load_image_folder, walk_files
from ._medmnist import MEDMNIST_NAMES, load_medmnist
from ._phantoms import PHANTOM_CLASSES, make_phantoms
from ._seg_phantoms import make_segmentation_phantoms

__all__ = [
    "MEDMNIST_NAMES",
    "PHANTOM_CLASSES",
    "load_decathlon",
    "load_drive",
    "load_image_folder",
    "load_medmnist",
    "make_phantoms",
    "make_segmentation_phantoms",
]
