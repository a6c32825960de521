"""
=====================================================================
Brain tumour segmentation: SegResNet, UNETR and their mean ensemble
=====================================================================

The brain tumour report segmented gliomas in multi-modal MRI (FLAIR, T1w,
T1gd, T2w) from the Medical Segmentation Decathlon with two MONAI networks,
SegResNet and UNETR, scored each on the three BraTS regions with the Dice
coefficient, and averaged the two in a mean ensemble. Here you learn how to
take those steps with :mod:`skmedimg.segmentation`: 3-D volumes with four
channels, the regions of :data:`~skmedimg.segmentation.BRATS_REGIONS`, two
:class:`~skmedimg.segmentation.CNNSegmenter` estimators trained with the
report's recipe, the Dice per region from
:func:`~skmedimg.segmentation.segmentation_report`, the mean of their
probability maps with :class:`~skmedimg.segmentation.SegmentationEnsemble`,
and a montage of slices from
:func:`~skmedimg.segmentation.plot_segmentation`.

It runs offline on small 3-D phantoms from
:func:`~skmedimg.datasets.make_segmentation_phantoms` (four MRI-like contrasts,
edema around a core with an enhancing rim, labelled as in the Decathlon). To
use the BraTS sub-volumes of the project's shared data instead, give the
folder holding ``brats_patches/`` (or ``brats_patches`` itself) as the first
argument, or set ``SKMEDIMG_DATA`` to it: the networks train on one patient's
sub-volumes and are tested on the other patient's. The figure is saved as
``brain_tumour_segmentation_slices.png`` in the folder named by
``SKMEDIMG_EXAMPLES_OUT`` (default: the current directory).
"""

# %%
# Multi-modal volumes and their label masks
# -----------------------------------------
# Each sample is a 3-D volume with the four MRI sequences as channels, channels
# last: ``(n_samples, x, y, z, 4)``. The mask gives every voxel one integer
# label: 0 background, 1 edema, 2 non-enhancing tumour core, 3 enhancing
# tumour. With real scans, split by patient, never by sub-volume or slice:
# overlapping crops of one brain in both the training and the test set would
# make the test set a memory test.
import os
import sys
import time
from pathlib import Path

import numpy as np

from skmedimg.datasets import load_decathlon, make_segmentation_phantoms
from skmedimg.utils import read_masks, read_volume

# (Hidden here: FAST, a quicker run when SKMEDIMG_EXAMPLES_FAST=1, and
# out_dir, the folder of the saved figures, SKMEDIMG_EXAMPLES_OUT.)
# sphinx_gallery_start_ignore
FAST = os.environ.get("SKMEDIMG_EXAMPLES_FAST", "0") not in ("", "0")
out_dir = Path(os.environ.get("SKMEDIMG_EXAMPLES_OUT", "."))
out_dir.mkdir(parents=True, exist_ok=True)
# sphinx_gallery_end_ignore
start = time.perf_counter()

# (Hidden here: folder, a data folder given on the command line or in
# SKMEDIMG_DATA, else None.)
# sphinx_gallery_start_ignore
folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKMEDIMG_DATA")
if folder and (Path(folder) / "brats_patches").is_dir():
    folder = Path(folder) / "brats_patches"
if folder and (Path(folder) / "imagesTr").is_dir():
    data = load_decathlon(folder)
    patients = np.array(["_".join(name.split("_")[:2]) for name in data.names])
    test_patient = sorted(set(patients))[-1]
    train, test = patients != test_patient, patients == test_patient
    X = np.stack([read_volume(p) for p in data.images])
    y = read_masks(list(data.masks))
    X_train, y_train, X_test, y_test = X[train], y[train], X[test], y[test]
    # Patches of 160 x 160 x 16 voxels: train on crops, predict whole volumes.
    roi_size = (64, 64, 16) if FAST else (96, 96, 16)
    max_epochs = 2 if FAST else 40
    print(
        f"BraTS sub-volumes {X.shape[1:]}: {train.sum()} of "
        f"{', '.join(sorted(set(patients[train])))} for training, "
        f"{test.sum()} of {test_patient} for testing"
    )
# sphinx_gallery_end_ignore
else:
    X, y = make_segmentation_phantoms(
        8 if FAST else 16,
        image_size=16 if FAST else 32,
        ndim=3,
        n_channels=4,
        n_classes=4,
        random_state=0,
    )
    n_train = len(X) * 3 // 4
    X_train, y_train = X[:n_train], y[:n_train]
    X_test, y_test = X[n_train:], y[n_train:]
    roi_size = (16, 16, 16) if FAST else (32, 32, 32)
    max_epochs = 2 if FAST else 25
    print(f"synthetic phantoms: volumes {X.shape}, labels {np.unique(y).tolist()}")

# %%
# The BraTS regions
# -----------------
# BraTS is scored on three nested regions rather than on the labels: the whole
# tumour (WT: edema and core, labels 1, 2, 3), the tumour core (TC: what a
# surgeon resects, labels 2 and 3) and the enhancing tumour (ET: label 3).
# In the Decathlon files label 3 is the enhancing tumour, as their
# ``dataset.json`` says; a widely copied tutorial, written for the challenge's
# own files, takes label 2 instead, which here would score the non-enhancing
# core as "enhancing". Check the labels of any data set in its own
# ``dataset.json``.
from skmedimg.segmentation import BRATS_REGIONS

print("BraTS regions:", BRATS_REGIONS)
for name, labels in BRATS_REGIONS.items():
    share = np.isin(y_test, labels).mean()
    print(f"  {name}: {100 * share:.1f} % of the test voxels")

# %%
# SegResNet, with the report's recipe
# -----------------------------------
# SegResNet is an encoder-decoder of residual blocks with group normalisation,
# which trains well at the one or two volumes per batch that 3-D memory allows.
# With ``regions=BRATS_REGIONS`` it has one sigmoid output per region, so a
# voxel can be in WT, TC and ET at once, as the regions are nested. The
# report's recipe maps onto the estimator's parameters: the Dice loss
# (``loss="dice"``), the polynomial learning-rate decay
# :math:`\alpha = \alpha_0 (1 - e / N_e)^{0.9}` (``lr_schedule="poly"``, here
# with Adam), and a random per-channel intensity shift (±0.1 standard
# deviation) and scale (0.9 to 1.1) with a random flip along each axis
# (``augment="report"``),
# applied to the training patches only. Each modality of each volume is first
# brought to zero mean and unit variance (``normalize="channel"``), so that
# scanners' raw intensity scales do not matter. The network trains on random
# crops of ``roi_size`` and predicts whole volumes by sliding a window of that
# size over them. The report trained for 63 epochs on 80 % of 484 patients;
# a few epochs on one or two patients show the steps, not its figures.
from skmedimg.segmentation import CNNSegmenter

recipe = dict(
    regions=BRATS_REGIONS,
    roi_size=roi_size,
    loss="dice",
    optimizer="adam",
    lr=1e-3,
    lr_schedule="poly",
    augment="report",
    normalize="channel",
    max_epochs=max_epochs,
    batch_size=2,
    random_state=0,
)
segresnet = CNNSegmenter("segresnet", network__init_filters=8, **recipe)

# %%
# UNETR
# -----
# UNETR reads the volume as a sequence of 16 x 16 x 16 patches with a vision
# transformer, which relates distant parts of the brain from its first layer,
# and decodes four of its layers with convolutions back to a mask. Its input
# size is fixed (every side of ``roi_size`` a multiple of 16). The report used
# MONAI's default transformer (hidden size 768); a smaller one keeps this
# example within a CPU's reach. The same recipe applies.
unetr = CNNSegmenter(
    "unetr",
    network__feature_size=8,
    network__hidden_size=96,
    network__mlp_dim=192,
    network__num_heads=4,
    **recipe,
)

# %%
# Training both, in the mean ensemble
# -----------------------------------
# The report's ensemble averages the two networks' probability maps voxel by
# voxel before thresholding at 0.5, so that one network's confident voxels can
# outvote the other's doubtful ones. :class:`SegmentationEnsemble` fits a
# clone of each member on the training volumes (equal weights by default), so
# fitting it trains SegResNet and UNETR once each; the fitted members are in
# ``named_estimators_``.
from skmedimg.segmentation import SegmentationEnsemble

ensemble = SegmentationEnsemble([("segresnet", segresnet), ("unetr", unetr)])
ensemble.fit(X_train, y_train)

# %%
# Dice per region
# ---------------
# The Dice coefficient :math:`2|P \cap T| / (|P| + |T|)` is the overlap of
# the predicted region P with the true region T: 1 is a perfect outline, 0 no
# overlap at all. It is computed per test volume and averaged. The enhancing
# tumour is the smallest region, and its Dice is the lowest in the report too
# (SegResNet WT 0.90, TC 0.81, ET 0.58; the ensemble slightly above). The
# report also gives the 95th-percentile Hausdorff distance (``hd95``, in
# voxels here), the distance within which 95 % of the outline lies.
#
# Averaging helps when the members are about equally good and err in
# different places, as the report's two were. A member much weaker than the
# other (here, a small UNETR trained briefly) pulls the mean towards its
# mistakes: compare the members' Dice before trusting the ensemble's.
from skmedimg.segmentation import segmentation_report

models = {**ensemble.named_estimators_, "ensemble": ensemble}
predictions = {}
for name, model in models.items():
    predictions[name] = model.predict(X_test)
    report = segmentation_report(y_test, predictions[name], regions=BRATS_REGIONS)
    dice = "  ".join(
        f"{region} {scores['dice']:.3f}" for region, scores in report["classes"].items()
    )
    print(f"{name:>9} Dice: {dice}  mean {report['mean']['dice']:.3f}")

# %%
# A montage of slices
# -------------------
# The ensemble's masks over the FLAIR channel, on up to four slices of the
# first test volume that hold tumour: solid contours are the ground truth,
# dashed ones the prediction, one colour per region. The ground truth is
# turned into the same region masks as the prediction first.
from skmedimg.segmentation import plot_segmentation

truth = np.stack([np.isin(y_test[0], lab) for lab in BRATS_REGIONS.values()], -1)
plot_segmentation(
    X_test[0],
    truth,
    pred=predictions["ensemble"][0],
    names=list(BRATS_REGIONS),
    channel=0,
    path=out_dir / "brain_tumour_segmentation_slices.png",
)
print(f"done in {time.perf_counter() - start:.0f} s")
