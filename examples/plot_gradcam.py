"""
=====================================================
Grad-CAM on correct and misclassified images
=====================================================

Two source reports used Grad-CAM to see where their CNN looked, on correctly
classified images and, to understand the errors, on misclassified ones. Here
you learn how :func:`~skmedimg.inspection.gradcam` computes the heat maps of a
fitted :class:`~skmedimg.neural.CNNClassifier` (or of a pipeline ending in
one) for the predicted class or for any class you name, and how
:func:`~skmedimg.inspection.plot_gradcam` overlays them with the true and
predicted labels (wrong predictions in red).

It runs offline on synthetic phantoms, whose lesions are where the evidence
should be, with the real ImageNet weights of EfficientNet-Lite0 when the
``weights`` extra is installed (a tiny random network otherwise). To use a real
``<class>/<image>`` folder, give it as the first argument or set the
environment variable ``SKMEDIMG_DATA``. The figures are saved as
``gradcam_predicted.png`` and ``gradcam_true_class.png`` in the folder named by
``SKMEDIMG_EXAMPLES_OUT`` (default: the current directory).
"""

# %%
# A model to explain
# ------------------
# A head trained on a frozen backbone is enough to show the method; a
# fine-tuned network usually gives sharper maps.
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from skmedimg.datasets import PHANTOM_CLASSES, load_image_folder, make_phantoms
from skmedimg.neural import CNNClassifier, shipped_weights_path

# (Hidden here: FAST, a quicker run when SKMEDIMG_EXAMPLES_FAST=1, and
# out_dir, the folder of the saved figures, SKMEDIMG_EXAMPLES_OUT.)
# sphinx_gallery_start_ignore
FAST = os.environ.get("SKMEDIMG_EXAMPLES_FAST", "0") not in ("", "0")
out_dir = Path(os.environ.get("SKMEDIMG_EXAMPLES_OUT", "."))
out_dir.mkdir(parents=True, exist_ok=True)
# sphinx_gallery_end_ignore
n_images, image_size = (100, 64) if FAST else (400, 128)

# (Hidden here: folder, a data folder given on the command line or in
# SKMEDIMG_DATA, else None.)
# sphinx_gallery_start_ignore
folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKMEDIMG_DATA")
if folder and (Path(folder) / "brain_tumor_mri" / "Training").is_dir():
    folder = Path(folder) / "brain_tumor_mri" / "Training"
# sphinx_gallery_end_ignore
if folder:
    data = load_image_folder(folder)
    X, y = data.filenames, data.labels
    if len(X) > n_images:
        X, _, y, _ = train_test_split(
            X, y, train_size=n_images, stratify=y, random_state=0
        )
else:
    X, y = make_phantoms(n_images, image_size=image_size, random_state=0)
    y = np.asarray(PHANTOM_CLASSES)[y]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

if shipped_weights_path("tf_efficientnet_lite0") is not None:
    backbone = {"model_name": "tf_efficientnet_lite0", "pretrained": True}
else:
    print("EfficientNet-Lite0 weights not installed: using a tiny random network")
    backbone = {"model_name": "test_efficientnet", "pretrained": False}

clf = CNNClassifier(
    **backbone,
    freeze="backbone",
    image_size=image_size,
    lr=1e-2,
    max_epochs=20,
    random_state=0,
).fit(X_train, y_train)
y_pred = clf.predict(X_test)
print(f"test accuracy {np.mean(y_pred == y_test):.3f}")

# %%
# Correct and misclassified test images
# -------------------------------------
# Up to four of each. :func:`~skmedimg.inspection.gradcam` reads the images as
# ``predict`` does and returns one map per image in ``[0, 1]``, at the model's
# input size; by default it explains the predicted class from the output of
# the backbone's last stage.
from skmedimg.inspection import gradcam, plot_gradcam

right = np.flatnonzero(y_pred == y_test)[:4]
wrong = np.flatnonzero(y_pred != y_test)[:4]
index = np.concatenate([right, wrong])
images = X_test[index]
print(f"{len(right)} correct and {len(wrong)} misclassified images")

maps = gradcam(clf, images)
print("heat maps:", maps.shape, maps.dtype)
png = out_dir / "gradcam_predicted.png"
plot_gradcam(images, maps, y_true=y_test[index], y_pred=y_pred[index], path=png)
print(f"saved {png}")

# %%
# The evidence for the true class
# -------------------------------
# For a misclassified image, ``target=`` names the class to explain: here the
# true one, to see whether the model saw the lesion and weighed it too little,
# or did not see it at all. Labels are class labels, as in ``classes_``.
if len(wrong):
    maps_true = gradcam(clf, X_test[wrong], target=y_test[wrong])
    png = out_dir / "gradcam_true_class.png"
    plot_gradcam(
        X_test[wrong], maps_true, y_true=y_test[wrong], y_pred=y_pred[wrong], path=png
    )
else:  # a perfect model: explain the second most probable class instead
    second = clf.classes_[np.argsort(clf.predict_proba(X_test[right]), axis=1)[:, -2]]
    maps_true = gradcam(clf, X_test[right], target=second)
    png = out_dir / "gradcam_true_class.png"
    plot_gradcam(
        X_test[right], maps_true, y_true=y_test[right], y_pred=second, path=png
    )
print(f"saved {png}")

# %%
# ``method="gradcam++"`` and ``method="layercam"`` are the variants, and
# ``layer="blocks.4"`` (any name of
# ``clf.net_.module_.backbone.named_modules()``) explains an earlier, finer
# layer. The command line writes the same figure for a trained model with
# ``skmedimg explain MODEL IMAGE``.
