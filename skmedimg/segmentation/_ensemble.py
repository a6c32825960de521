"""The mean of several segmenters' probability maps."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import MetaEstimatorMixin, clone
from sklearn.model_selection import KFold, cross_val_score
from sklearn.utils import Bunch
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted

from ._data import check_masks
from ._metrics import dice_scorer, mean_dice

__all__ = ["SegmentationEnsemble"]


def _n_samples(X):
    return len(X)


class SegmentationEnsemble(MetaEstimatorMixin, _BaseComposition):
    """Mean of the members' probability maps, optionally weighted by CV Dice.

    Every member (a :class:`CNNSegmenter` or anything with the same
    ``fit`` / ``predict_proba`` / ``classes_`` / ``regions_``) is fitted on
    the training data; :meth:`predict_proba` is the (weighted) mean of their
    probability maps, sample by sample. With equal weights this is the mean
    ensemble of SegResNet and UNETR of the BraTS report. With
    ``weights="cv"`` each member's weight is its mean Dice over ``cv``
    folds of the training data, normalised to sum to one, as
    :class:`skmedimg.ensemble.ScoreWeightedVotingClassifier` does for
    classification.

    Parameters
    ----------
    estimators : list of (str, estimator) tuples
        The members; cloned, never fitted in place. Their parameters are
        reachable as ``name__param``.
    weights : list of float, "cv" or None, default=None
        ``None``: equal weights; a list: one non-negative weight per member
        (normalised to sum to one); ``"cv"``: cross-validated Dice weights.
    cv_weights : bool, default=False
        ``True`` is the same as ``weights="cv"``.
    cv : int, default=3
        Folds (:class:`~sklearn.model_selection.KFold`, no shuffling) of the
        cross-validated weights.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members.
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The fitted members by name.
    weights_ : ndarray of shape (n_estimators,)
        The weight of each member, summing to one.
    cv_scores_ : ndarray of shape (n_estimators,) or None
        Mean cross-validated Dice of each member with CV weights, else None.
    classes_ : ndarray of shape (n_classes,)
        The labels (the members').
    regions_ : list of str or None
        The region names (the members').

    See Also
    --------
    CNNSegmenter, skmedimg.ensemble.ScoreWeightedVotingClassifier

    Notes
    -----
    Fitting costs one fit per member, plus ``cv`` more per member with CV
    weights.

    Examples
    --------
    >>> import numpy as np
    >>> from skmedimg.segmentation import CNNSegmenter, SegmentationEnsemble
    >>> X = np.zeros((4, 16, 16), dtype=np.float32); X[:, 4:10, 4:10] = 1
    >>> y = (X > 0).astype(int)
    >>> members = [(f"unet{s}", CNNSegmenter(network__channels=(4, 8),
    ...             max_epochs=1, random_state=s)) for s in (0, 1)]
    >>> ensemble = SegmentationEnsemble(members).fit(X, y)
    >>> ensemble.predict_proba(X).shape, ensemble.weights_.tolist()
    ((4, 16, 16, 2), [0.5, 0.5])
    """

    def __init__(self, estimators, *, weights=None, cv_weights=False, cv=3):
        self.estimators = estimators
        self.weights = weights
        self.cv_weights = cv_weights
        self.cv = cv

    def get_params(self, deep=True):
        """Get the parameters of the ensemble and, if deep, of its members.

        Parameters
        ----------
        deep : bool, default=True
            If True, also the members by name and their ``name__param``.

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
            Ensemble parameters, members by name and ``name__param``.

        Returns
        -------
        self : SegmentationEnsemble
            This estimator.
        """
        self._set_params("estimators", **params)
        return self

    def _check(self):
        if not self.estimators or not all(
            isinstance(item, tuple | list)
            and len(item) == 2
            and isinstance(item[0], str)
            for item in self.estimators
        ):
            raise ValueError(
                "estimators must be a non-empty list of (str, estimator) tuples, "
                f"got {self.estimators!r}"
            )
        names = [n for n, _ in self.estimators]
        self._validate_names(names)
        bad = [n for n, e in self.estimators if not hasattr(e, "predict_proba")]
        if bad:
            raise ValueError(f"members {bad} have no predict_proba")
        use_cv = self.cv_weights or (
            isinstance(self.weights, str) and self.weights == "cv"
        )
        if isinstance(self.weights, str) and self.weights != "cv":
            raise ValueError(
                f"weights must be None, 'cv' or a list of floats, got {self.weights!r}"
            )
        if use_cv and self.weights is not None and not isinstance(self.weights, str):
            raise ValueError(
                "cv_weights=True computes the weights; give weights=None with it, "
                f"not {self.weights!r}"
            )
        if not use_cv and self.weights is not None:
            w = list(self.weights)
            if len(w) != len(names) or not all(
                isinstance(v, Real) and np.isfinite(v) and v >= 0 for v in w
            ):
                raise ValueError(
                    f"weights must hold {len(names)} non-negative numbers, one per "
                    f"member {names}, got {self.weights!r}"
                )
            if sum(w) == 0:
                raise ValueError("weights sum to 0; at least one must be positive")
        return use_cv

    def fit(self, X, y):
        """Fit every member (and cross-validate it for ``weights="cv"``).

        Parameters
        ----------
        X : array-like or list
            Images, as the members take them.
        y : array-like or list
            Label masks.

        Returns
        -------
        self : SegmentationEnsemble
            The fitted ensemble.
        """
        use_cv = self._check()
        names = [n for n, _ in self.estimators]
        if use_cv:
            y_cv = np.asarray(y) if not isinstance(y, list) else y
            scores = np.array(
                [
                    cross_val_score(
                        clone(member),
                        X,
                        y_cv,
                        cv=KFold(int(self.cv)),
                        scoring=dice_scorer,
                        error_score="raise",
                    ).mean()
                    for _, member in self.estimators
                ]
            )
            total = scores.sum()
            weights = (
                scores / total if total > 0 else np.full(len(scores), 1 / len(scores))
            )
            self.cv_scores_ = scores
        else:
            w = (
                np.ones(len(names))
                if self.weights is None
                else np.asarray(self.weights)
            )
            weights = np.asarray(w, dtype=float) / float(np.sum(w))
            self.cv_scores_ = None
        fitted = [clone(member).fit(X, y) for _, member in self.estimators]
        first = fitted[0]
        for name, est in zip(names, fitted, strict=True):
            if not np.array_equal(est.classes_, first.classes_) or (
                getattr(est, "regions_", None) != getattr(first, "regions_", None)
            ):
                raise ValueError(
                    f"member {name!r} predicts classes {est.classes_.tolist()} / "
                    f"regions {getattr(est, 'regions_', None)}, but member "
                    f"{names[0]!r} predicts {first.classes_.tolist()} / "
                    f"{getattr(first, 'regions_', None)}; they must agree"
                )
        self.estimators_ = fitted
        self.named_estimators_ = Bunch(**dict(zip(names, fitted, strict=True)))
        self.weights_ = weights
        self.classes_ = first.classes_
        self.regions_ = getattr(first, "regions_", None)
        self._regions = getattr(first, "_regions", None)
        return self

    def _iter_proba(self, X):
        check_is_fitted(self)
        for i in range(_n_samples(X)):
            item = X[i : i + 1]
            maps = [est.predict_proba(item) for est in self.estimators_]
            maps = [m[0] for m in maps]
            yield sum(w * m for w, m in zip(self.weights_, maps, strict=True)).astype(
                np.float32
            )

    @staticmethod
    def _stack(items):
        return np.stack(items) if len({i.shape for i in items}) == 1 else items

    def predict_proba(self, X):
        """Weighted mean of the members' probability maps.

        Parameters
        ----------
        X : array-like or list
            Images.

        Returns
        -------
        proba : ndarray of shape (n_samples, \\*spatial, n_outputs) or list
            float32 maps, channels last (a list when shapes differ).
        """
        return self._stack(list(self._iter_proba(X)))

    def predict(self, X):
        """Masks from the mean probability maps.

        Parameters
        ----------
        X : array-like or list
            Images.

        Returns
        -------
        masks : ndarray of shape (n_samples, \\*spatial) or list
            Labels from ``classes_``; with regions, boolean masks
            ``(n_samples, *spatial, n_regions)``.
        """
        out = [
            p > 0.5 if self.regions_ is not None else self.classes_[p.argmax(-1)]
            for p in self._iter_proba(X)
        ]
        return self._stack(out)

    def score(self, X, y):
        """Mean Dice over classes except background (or over regions).

        As :meth:`CNNSegmenter.score`.

        Parameters
        ----------
        X : array-like or list
            Images.
        y : array-like or list
            True label masks.

        Returns
        -------
        score : float
            The mean Dice.
        """
        return mean_dice(check_masks(y), list(self.predict(X)), self)
