"""Ensembles of classifiers: soft voting weighted by cross-validated scores."""

from ._weighted import ScoreWeightedVotingClassifier

__all__ = ["ScoreWeightedVotingClassifier"]
