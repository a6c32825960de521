"""A linear head solved as a logistic regression: ``optimizer="logreg-cv"``.

On a frozen backbone the pooled features of every image are computed once;
a linear head on them is a multinomial logistic regression. scikit-learn's
L-BFGS fit of that convex problem, on standardised features with ``C``
chosen by stratified cross-validation of the log-loss, is what a careful
user does by hand: no learning rate or number of epochs to choose. The
fitted coefficients are folded back into the ``nn.Linear`` head (the
standardisation included), so prediction, saving and Grad-CAM see an
ordinary network. ``benchmarks/bench_linear_heads.py`` measures it beside
the ``"linear-probe"`` recipe's head (AdamW, cosine schedule, 60 epochs) on
the same cached features.
"""

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold

__all__ = ["LOGREG_CS", "fit_logistic_head"]

#: The values of ``C`` (inverse regularisation) cross-validated.
LOGREG_CS = tuple(float(c) for c in np.logspace(-4, 1, 6))

#: Folds of the cross-validation choosing ``C`` (fewer when a class has
#: fewer images).
LOGREG_FOLDS = 5


def fit_logistic_head(
    features, y_enc, n_classes, *, class_weight, seed, n_jobs=None
):
    """Fit a multinomial logistic regression with ``C`` chosen by CV.

    Parameters
    ----------
    features : torch.Tensor of shape (n_samples, n_features)
        Pooled backbone features.
    y_enc : ndarray of shape (n_samples,)
        Encoded labels ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes (all present in ``y_enc``).
    class_weight : dict, "balanced" or None
        Per-class weights keyed by encoded label, as in scikit-learn.
    seed : int
        Seed of the shuffled folds.
    n_jobs : int or None
        Parallel folds.

    Returns
    -------
    weight : torch.Tensor of shape (n_classes, n_features)
    bias : torch.Tensor of shape (n_classes,)
        Coefficients for the raw (unstandardised) features: ``features @
        weight.T + bias`` are logits whose softmax is the regression's
        probabilities.
    C : float
        The chosen ``C``.
    """
    X = features.detach().to(torch.float64).cpu().numpy()
    y = np.asarray(y_enc)
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[std < 1e-12] = 1.0
    Z = (X - mean) / std
    estimator = LogisticRegression(max_iter=1000, class_weight=class_weight)
    smallest = int(np.bincount(y, minlength=n_classes).min())
    folds = min(LOGREG_FOLDS, smallest)
    with warnings.catch_warnings():
        # a C whose L-BFGS run stops at max_iter is still scored fairly
        warnings.simplefilter("ignore", ConvergenceWarning)
        if folds >= 2:
            search = GridSearchCV(
                estimator,
                {"C": list(LOGREG_CS)},
                cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                # the log-loss also ranks the values of C that classify the
                # folds equally well, and keeps the probabilities calibrated
                scoring="neg_log_loss",
                n_jobs=n_jobs,
            ).fit(Z, y)
            model, C = search.best_estimator_, float(search.best_params_["C"])
        else:  # a class with one image: no stratified folds
            C = 1.0
            model = estimator.set_params(C=C).fit(Z, y)
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if n_classes == 2 and coef.shape[0] == 1:
        # one logit difference: softmax([-z/2, z/2]) is sigmoid(z)
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = coef / std
    bias = intercept - weight @ mean
    return (
        torch.from_numpy(weight).to(torch.float32),
        torch.from_numpy(bias).to(torch.float32),
        C,
    )
