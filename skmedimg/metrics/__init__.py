"""The report users expect: metrics per class, ROC-AUC and figures.

:func:`sklearn.metrics.classification_report` and the other scikit-learn
metrics work unchanged on the predictions of skmedimg estimators; this module
adds specificity, one JSON-ready summary of everything, and the figures of the
report (matplotlib is imported only when a figure is drawn).
"""

from ._plot import plot_confusion_matrix, plot_training_curves
from ._report import classification_summary, sensitivity_specificity

__all__ = [
    "classification_summary",
    "plot_confusion_matrix",
    "plot_training_curves",
    "sensitivity_specificity",
]
