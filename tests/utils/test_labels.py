import numpy as np
import pandas as pd
import pytest

from skmedimg.utils import check_labels


@pytest.mark.parametrize(
    "y",
    [
        ["a", "b", "a"],
        np.array([0, 1, 2]),
        np.array([0.0, 1.0]),
        pd.Series(["x", "y"]),
        np.array([True, False]),
    ],
)
def test_complete_labels_pass_through(y):
    out = check_labels(y)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, np.asarray(y))


def test_the_same_array_is_returned():
    y = np.array(["a", "b"], dtype=object)
    assert check_labels(y) is y


@pytest.mark.parametrize(
    "y, indices",
    [
        (["a", "b", "a", None, "b", "a", "b", None], "labels at index 3, 7 are"),
        (np.array([0.0, np.nan, 1.0]), "label at index 1 is"),
        (pd.Series(["a", pd.NA, "b"]), "label at index 1 is"),
        (np.array(["a", float("nan"), None], dtype=object), "labels at index 1, 2"),
        (pd.Series([1.0, None]), "label at index 1 is"),
    ],
)
def test_missing_labels_are_named_by_index(y, indices):
    with pytest.raises(ValueError, match=indices + ".* missing \\(None/NaN\\)"):
        check_labels(y)


def test_many_missing_labels_are_counted():
    with pytest.raises(ValueError, match=r"9, \.\.\. \(25 in all\)"):
        check_labels([None] * 25 + ["a"], name="labels")
    with pytest.raises(ValueError, match="^labels: "):
        check_labels([None, "a"], name="labels")
