"""A local web page and JSON endpoint that serve saved models (``app`` extra).

* :func:`serve`: run the upload-and-predict page (``skmedimg serve``): choose
  a model, upload or drop images, see the label, the probability of every
  class and a Grad-CAM overlay (for a 2-D segmenter: the predicted mask over
  the image and the share of every class), the model card of the training
  report, a low-confidence mark, and an export of the session as CSV or JSON.
* :func:`create_app`: the Flask WSGI application behind it, with
  ``POST /predict`` for scripts; for tests and other WSGI servers.
* :func:`load_models`: load the saved models in files and folders.
* :func:`load_model_card`: the training report beside a model file, as the
  model card the page shows.

Importing this subpackage does not import Flask or torch; the functions do,
and say ``pip install 'skmedimg[app]'`` when Flask is missing.
"""

from ._server import (
    DEFAULT_LOW_CONFIDENCE_MARGIN,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_MB,
    MODEL_EXTENSIONS,
    add_serve_parser,
    create_app,
    load_model_card,
    load_models,
    serve,
)

__all__ = [
    "create_app",
    "load_model_card",
    "load_models",
    "serve",
]
