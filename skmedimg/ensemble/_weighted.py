"""Soft voting weighted by each member's cross-validated score."""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, MetaEstimatorMixin, _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import get_scorer_names
from sklearn.model_selection import check_cv, cross_validate
from sklearn.utils import Bunch, get_tags
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from ..utils import check_labels

__all__ = ["ScoreWeightedVotingClassifier"]


def _fit_member(estimator, X, y):
    return estimator.fit(X, y)


class ScoreWeightedVotingClassifier(
    ClassifierMixin, MetaEstimatorMixin, _BaseComposition
):
    """Soft voting whose weights are the members' cross-validated scores.

    Each member is cross-validated on the training data with ``cv`` and
    ``scoring``; its weight is its mean score divided by the sum of the mean
    scores, so the weights are proportional to the scores and sum to one. Each
    member is then refitted on all the training data, and :meth:`predict_proba`
    is the weighted average of the members' class probabilities. This is the
    accuracy-weighted ensemble of the source reports (DenseNet201,
    MobileNetV3, VGG19 and ResNet50 voting with weights set by their
    accuracy), with the accuracy measured on held-out folds instead of on the
    test set.

    ``X`` is passed to the members untouched: it may be a feature matrix, an
    image array ``(n_samples, height, width[, n_channels])``, a list of file
    paths or anything else the members accept (for example pipelines that start
    with an image step). Only its length is checked.

    Parameters
    ----------
    estimators : list of (str, estimator) tuples
        The members: classifiers with ``predict_proba`` (wrap an
        :class:`~sklearn.svm.SVC` in
        ``CalibratedClassifierCV(SVC(), ensemble=False)``). They are cloned,
        never fitted in place. A member can be left out with ``"drop"``
        (``set_params(name="drop")``), and its parameters are reachable as
        ``name__param`` (for example in
        :class:`~sklearn.model_selection.GridSearchCV`).

    scoring : str or callable, default="accuracy"
        The score that sets the weights: a scorer name (see
        :func:`sklearn.metrics.get_scorer_names`) or a callable
        ``scorer(estimator, X, y)``. Scores must be non-negative, so
        loss-based scorers such as ``"neg_log_loss"`` are refused.

    cv : int, cross-validation generator or iterable, default=5
        How each member is cross-validated; the same splits are used for every
        member. An int gives :class:`~sklearn.model_selection.StratifiedKFold`
        without shuffling, so the weights are deterministic. Any splitter of
        :mod:`sklearn.model_selection` works, and ``groups`` passed to
        :meth:`fit` reach it (for example
        :class:`~sklearn.model_selection.StratifiedGroupKFold` to keep all the
        images of one patient in one fold).

    n_jobs : int, default=None
        Number of jobs for the cross-validation folds of each member and for
        the final refits. ``None`` means 1 unless in a
        :obj:`joblib.parallel_backend` context; ``-1`` means all processors.

    verbose : bool or int, default=False
        Whether to print each member's cross-validated score.

    Attributes
    ----------
    estimators_ : list of estimators
        The members that are not ``"drop"``, fitted on all the training data.

    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The fitted members by name (``"drop"`` for dropped ones).

    classes_ : ndarray of shape (n_classes,)
        The class labels.

    cv_scores_ : ndarray of shape (n_estimators,)
        Mean cross-validated score of each member of ``estimators_``.

    weights_ : ndarray of shape (n_estimators,)
        Voting weight of each member of ``estimators_``:
        ``cv_scores_ / cv_scores_.sum()``.

    cv_results_ : dict of ndarrays
        Per-member table in the form of
        :attr:`sklearn.model_selection.GridSearchCV.cv_results_`, one row per
        member of ``estimators_``; ``pandas.DataFrame(cv_results_)`` shows it.
        Keys: ``"estimator"`` (the names), ``"split{k}_test_score"`` (the score
        on fold ``k``), ``"mean_test_score"``, ``"std_test_score"``,
        ``"mean_fit_time"`` and ``"weight"``.

    n_features_in_ : int
        Number of features seen during :term:`fit`. Only defined if the first
        member exposes such an attribute when fitted.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, from the first member. Only
        defined if that member exposes such an attribute when fitted.

    See Also
    --------
    sklearn.ensemble.VotingClassifier : Soft voting with weights given by hand.
    sklearn.ensemble.StackingClassifier : A final estimator learns how to
        combine the members.

    Notes
    -----
    Fitting costs ``cv + 1`` fits of every member. When all the mean scores
    are zero the weights are uniform (with a warning). ``sample_weight`` is
    not supported; give the members ``class_weight`` instead.

    With scores such as accuracy the weights are usually close to uniform
    (0.90 and 0.80 give 0.53 and 0.47), so the ensemble behaves like plain soft
    voting that leans towards the better members.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skmedimg.ensemble import ScoreWeightedVotingClassifier
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> ensemble = ScoreWeightedVotingClassifier(
    ...     [
    ...         ("logistic", LogisticRegression()),
    ...         ("bayes", GaussianNB()),
    ...         ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
    ...     ],
    ...     cv=3,
    ... ).fit(X, y)
    >>> ensemble.cv_scores_.round(3)
    array([0.925, 0.935, 0.92 ])
    >>> ensemble.weights_.round(3)
    array([0.333, 0.336, 0.331])
    >>> ensemble.predict_proba(X[:3]).round(3)
    array([[0.97 , 0.03 ],
           [0.9  , 0.1  ],
           [0.007, 0.993]])
    >>> ensemble.predict(X[:3])
    array([0, 0, 1])
    """

    _parameter_constraints: dict = {
        "estimators": [list],
        "scoring": [StrOptions(set(get_scorer_names())), callable],
        "cv": ["cv_object"],
        "n_jobs": [None, Integral],
        "verbose": ["verbose"],
    }

    def __init__(
        self, estimators, *, scoring="accuracy", cv=5, n_jobs=None, verbose=False
    ):
        self.estimators = estimators
        self.scoring = scoring
        self.cv = cv
        self.n_jobs = n_jobs
        self.verbose = verbose

    @property
    def named_estimators(self):
        """Dictionary to access any member, unfitted, by name.

        Returns
        -------
        :class:`~sklearn.utils.Bunch`
        """
        return Bunch(**dict(self.estimators))

    def get_params(self, deep=True):
        """Get the parameters of the ensemble and, if deep, of its members.

        Parameters
        ----------
        deep : bool, default=True
            If True, also return the members by name and their parameters as
            ``name__param``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return self._get_params("estimators", deep=deep)

    def set_params(self, **params):
        """Set the parameters of the ensemble or of its members.

        Parameters
        ----------
        **params : dict
            Ensemble parameters, members by name (an estimator or ``"drop"``)
            and member parameters as ``name__param``.

        Returns
        -------
        self : ScoreWeightedVotingClassifier
            This estimator.
        """
        self._set_params("estimators", **params)
        return self

    def _validate_estimators(self):
        if not self.estimators or not all(
            isinstance(item, (tuple, list))
            and len(item) == 2
            and isinstance(item[0], str)
            for item in self.estimators
        ):
            raise ValueError(
                "'estimators' should be a non-empty list of (str, estimator) "
                f"tuples; got {self.estimators!r}."
            )
        names, members = zip(*self.estimators, strict=True)
        self._validate_names(names)
        kept = [(n, e) for n, e in zip(names, members, strict=True) if not _is_drop(e)]
        if not kept:
            raise ValueError("All estimators are dropped; at least one is required.")
        not_estimators = [
            n for n, e in kept if isinstance(e, type) or not hasattr(e, "fit")
        ]
        if not_estimators:
            raise ValueError(
                f"Members {not_estimators} are not estimator instances (or "
                "'drop'); give each member as an estimator, e.g. GaussianNB()."
            )
        not_classifiers = [
            n for n, e in kept if get_tags(e).estimator_type != "classifier"
        ]
        if not_classifiers:
            raise ValueError(
                f"Members {not_classifiers} are not classifiers; every member of "
                f"{type(self).__name__} must be a classifier."
            )
        no_proba = [n for n, e in kept if not hasattr(e, "predict_proba")]
        if no_proba:
            raise ValueError(
                f"Members {no_proba} have no predict_proba; soft voting needs "
                "class probabilities (wrap an SVC in "
                "CalibratedClassifierCV(SVC(), ensemble=False))."
            )
        return kept

    @_fit_context(
        # The members validate their own parameters when they are fitted.
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, *, groups=None):
        """Cross-validate every member, set the weights, refit the members.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or list of length n_samples
            Training samples in any form the members accept (feature matrix,
            image array with the sample axis first, list of paths). Passed to
            the members untouched.
        y : array-like of shape (n_samples,)
            Class labels.
        groups : array-like of shape (n_samples,), default=None
            Group labels (for example patient identifiers) for a group-aware
            ``cv`` splitter.

        Returns
        -------
        self : ScoreWeightedVotingClassifier
            The fitted ensemble.
        """
        members = self._validate_estimators()
        if isinstance(self.scoring, str) and self.scoring.startswith("neg_"):
            # A negated loss is never positive: refuse it before any member is
            # cross-validated, not after.
            raise ValueError(
                f"scoring={self.scoring!r} is a negated loss, never positive; "
                "weights proportional to scores need non-negative scores (use "
                "a scorer such as 'accuracy', 'balanced_accuracy' or 'roc_auc')."
            )
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        check_consistent_length(X, y, groups)
        y = check_labels(column_or_1d(y, warn=True))
        check_classification_targets(y)
        classes = np.unique(y)

        cv = check_cv(self.cv, y, classifier=True)
        splits = list(cv.split(X, y, groups))

        fold_scores, fit_times = [], []
        for name, member in members:
            result = cross_validate(
                clone(member),
                X,
                y,
                scoring=self.scoring,
                cv=splits,
                n_jobs=self.n_jobs,
                error_score="raise",
            )
            fold_scores.append(np.asarray(result["test_score"], dtype=float))
            fit_times.append(result["fit_time"])
            if self.verbose:
                print(
                    f"[{type(self).__name__}] {name}: mean {self._scoring_name()} "
                    f"{fold_scores[-1].mean():.4f} over {len(splits)} folds"
                )
        fold_scores = np.vstack(fold_scores)
        cv_scores = fold_scores.mean(axis=1)
        weights = self._weights_from_scores([n for n, _ in members], cv_scores)

        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(clone(member), X, y) for _, member in members
        )
        for (name, _), estimator in zip(members, fitted, strict=True):
            member_classes = getattr(estimator, "classes_", None)
            if member_classes is None or set(np.asarray(member_classes).tolist()) != (
                set(classes.tolist())
            ):
                raise ValueError(
                    f"Member {name!r} has classes {member_classes!r} after fitting, "
                    f"but y has classes {classes!r}; every member must predict "
                    "the classes of y."
                )

        self.classes_ = classes
        self.estimators_ = fitted
        self.named_estimators_ = Bunch()
        fitted_iter = iter(fitted)
        for name, member in self.estimators:
            estimator = "drop" if _is_drop(member) else next(fitted_iter)
            self.named_estimators_[name] = estimator
        # As n_features_in_: the first member's, and none left from an earlier
        # fit on named columns.
        if hasattr(fitted[0], "feature_names_in_"):
            self.feature_names_in_ = fitted[0].feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.cv_scores_ = cv_scores
        self.weights_ = weights
        self.cv_results_ = {"estimator": np.array([n for n, _ in members])}
        for k in range(fold_scores.shape[1]):
            self.cv_results_[f"split{k}_test_score"] = fold_scores[:, k]
        self.cv_results_["mean_test_score"] = cv_scores
        self.cv_results_["std_test_score"] = fold_scores.std(axis=1)
        self.cv_results_["mean_fit_time"] = np.array([t.mean() for t in fit_times])
        self.cv_results_["weight"] = weights
        return self

    def _scoring_name(self):
        return self.scoring if isinstance(self.scoring, str) else "score"

    def _weights_from_scores(self, names, scores):
        if not np.all(np.isfinite(scores)) or np.any(scores < 0):
            bad = {
                n: float(s) for n, s in zip(names, scores, strict=True) if not s >= 0
            }
            raise ValueError(
                f"Cross-validated {self._scoring_name()} of members {bad} is "
                "negative or not finite; weights proportional to scores need "
                "non-negative scores (use a scorer such as 'accuracy', "
                "'balanced_accuracy' or 'roc_auc')."
            )
        total = scores.sum()
        if total == 0:
            warnings.warn(
                f"Every member has a cross-validated {self._scoring_name()} of 0; "
                "using uniform weights.",
                UserWarning,
                stacklevel=4,  # the caller of fit, through _fit_context
            )
            return np.full(len(scores), 1.0 / len(scores))
        return scores / total

    def predict_proba(self, X):
        """Weighted average of the members' class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or list of length n_samples
            Samples in any form the members accept.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        column = {label: i for i, label in enumerate(self.classes_.tolist())}
        proba = None
        for weight, estimator in zip(self.weights_, self.estimators_, strict=True):
            member_proba = np.asarray(estimator.predict_proba(X), dtype=float)
            if proba is None:
                proba = np.zeros((member_proba.shape[0], len(self.classes_)))
            columns = [column[c] for c in np.asarray(estimator.classes_).tolist()]
            proba[:, columns] += weight * member_proba
        return proba

    def predict(self, X):
        """Predict the class with the largest weighted average probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or list of length n_samples
            Samples in any form the members accept.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted class labels (values of ``classes_``).
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def n_features_in_(self):
        """Number of features seen during :term:`fit` (from the first member)."""
        try:
            check_is_fitted(self)
        except NotFittedError as exc:
            raise AttributeError(
                f"{type(self).__name__} object has no n_features_in_ attribute."
            ) from exc
        return self.estimators_[0].n_features_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            kept = [e for _, e in self.estimators if not _is_drop(e)]
            tags.input_tags.allow_nan = all(
                get_tags(e).input_tags.allow_nan for e in kept
            )
            tags.input_tags.sparse = all(get_tags(e).input_tags.sparse for e in kept)
        except Exception:  # noqa: BLE001
            # Invalid ``estimators`` are reported by fit; keep the default tags.
            pass
        return tags


def _is_drop(estimator):
    return isinstance(estimator, str) and estimator == "drop"
