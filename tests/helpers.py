"""Small fitted models shared by tests of different subpackages."""

import numpy as np


def phantom_model(labels=None, **params):
    """A tiny CNNClassifier fitted for one epoch on 24 two-class phantoms.

    ``labels`` maps the classes 0 and 1 to other labels (``["10", "2"]``);
    ``params`` override the constructor's. Returns ``(model, X, y)`` with
    ``y`` the labels the model was fitted on.
    """
    from skmedimg.datasets import make_phantoms
    from skmedimg.neural import CNNClassifier

    X, y = make_phantoms(24, n_classes=2, image_size=32, random_state=0)
    if labels is not None:
        y = np.asarray(labels)[y]
    defaults = dict(
        pretrained=False, max_epochs=1, image_size=32, batch_size=8, random_state=0
    )
    model = CNNClassifier("test_efficientnet", **{**defaults, **params}).fit(X, y)
    return model, X, y
