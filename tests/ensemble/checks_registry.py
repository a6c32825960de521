"""Fast instances of the ensemble estimators for scikit-learn's checks."""

from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier

from skmedimg.ensemble import ScoreWeightedVotingClassifier

ESTIMATORS = [
    ScoreWeightedVotingClassifier(
        [
            ("logistic", LogisticRegression()),
            ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
            ("bayes", GaussianNB()),
        ],
        cv=3,
    ),
]

EXPECTED_FAILED_CHECKS = {}
