"""
==============================================================
Fine-tuning with early stopping and ReduceLROnPlateau
==============================================================

The best brain MRI result of the source reports (ResNet-50, 98.9% test
accuracy) came from training the whole network, unfrozen, with light
augmentation, early stopping and Keras' ``ReduceLROnPlateau``. Here you learn
the same recipe as constructor parameters of
:class:`~skmedimg.neural.CNNClassifier`: ``freeze="none"``,
``augment="light"``, ``early_stopping`` (patience on a validation split, best
weights restored) and ``lr_schedule="plateau"``; how to tune the schedule with
routed ``callbacks__`` parameters; and how to read ``history_`` and plot it
with :func:`~skmedimg.metrics.plot_training_curves`.

It runs offline on synthetic phantoms with the real ImageNet weights of
EfficientNet-Lite0 when the ``weights`` extra is installed (a tiny random
network otherwise). Fine-tuning runs the whole network every epoch, so it is
the slowest example; on a GPU it is the method of choice. To use a real
``<class>/<image>`` folder, give it as the first argument or set the
environment variable ``SKMEDIMG_DATA``. The curves are saved as
``fine_tuning_training_curves.png`` in the folder named by
``SKMEDIMG_EXAMPLES_OUT`` (default: the current directory).
"""

# %%
# Data and backbone
# -----------------
# As in the transfer learning example: phantoms or a real folder, and the
# offline EfficientNet-Lite0 weights when installed.
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
n_images, image_size, max_epochs = (80, 32, 3) if FAST else (320, 64, 12)

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

# %%
# The recipe as parameters
# ------------------------
# ``early_stopping=3`` holds out ``validation_fraction`` of the training images
# (stratified), stops after 3 epochs without a lower validation loss and
# restores the best weights. ``lr_schedule="plateau"`` divides the learning
# rate by 5 after 2 epochs without improvement; the routed parameter
# ``callbacks__lr_scheduler__patience=1`` shortens that wait, as Keras'
# ``patience`` argument would. ``augment="light"`` is the reports' ResNet-50
# recipe (horizontal flip, rotation 10 degrees, shifts 5%), applied to training
# batches only. ``verbose=1`` would show a progress bar.
clf = CNNClassifier(
    **backbone,
    freeze="none",
    augment="light",
    image_size=image_size,
    lr=1e-3,
    max_epochs=max_epochs,
    early_stopping=3,
    validation_fraction=0.2,
    lr_schedule="plateau",
    callbacks__lr_scheduler__patience=1,
    random_state=0,
)
clf.fit(X_train, y_train)
print(
    f"{clf.n_epochs_} epochs run; the model holds the weights of epoch "
    f"{clf.best_epoch_}"
)

# %%
# The history
# -----------
# ``history_`` holds one value per epoch for each key: losses, accuracies, the
# learning rate and the duration.
print("epoch  train_loss  valid_loss  valid_acc        lr")
for row in zip(
    clf.history_["epoch"],
    clf.history_["train_loss"],
    clf.history_["valid_loss"],
    clf.history_["valid_acc"],
    clf.history_["lr"],
    strict=True,
):
    print("{:5d} {:11.4f} {:11.4f} {:10.3f} {:9.1e}".format(*row))
print(f"test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# :func:`~skmedimg.metrics.plot_training_curves` draws one panel for the
# losses, one for the accuracies and one for the learning rate (log scale).
# It also accepts a Keras ``history.history`` dict.
import matplotlib.pyplot as plt

from skmedimg.metrics import plot_training_curves

fig = plot_training_curves(clf.history_, title=f"Fine-tuning {backbone['model_name']}")
png = out_dir / "fine_tuning_training_curves.png"
fig.savefig(png, dpi=100, bbox_inches="tight")
plt.close(fig)
print(f"saved {png}")

# %%
# Between frozen and unfrozen, ``freeze=k`` freezes the first ``k`` stages of
# the backbone (see :func:`~skmedimg.neural.list_stages`) and fine-tunes the
# rest, and ``lr_schedule="cosine"`` anneals the learning rate to zero over
# ``max_epochs``.
