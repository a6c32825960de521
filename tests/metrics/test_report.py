import json

import numpy as np
import pytest
from imblearn.metrics import specificity_score
from sklearn.metrics import (
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from skmedimg.metrics import classification_summary, sensitivity_specificity

# Three classes, hand-checked confusion matrix (rows true, columns predicted):
#              glioma  meningioma  pituitary
# glioma          3        1           0
# meningioma      1        2           1
# pituitary       0        0           2
Y_TRUE = ["glioma"] * 4 + ["meningioma"] * 4 + ["pituitary"] * 2
Y_PRED = [
    *["glioma", "glioma", "glioma", "meningioma"],
    *["glioma", "meningioma", "meningioma", "pituitary"],
    *["pituitary", "pituitary"],
]
LABELS = ["glioma", "meningioma", "pituitary"]


def test_sensitivity_specificity_by_hand():
    sensitivity, specificity = sensitivity_specificity(Y_TRUE, Y_PRED)
    # glioma: TP 3, FN 1, FP 1, TN 5; meningioma: TP 2, FN 2, FP 1, TN 5;
    # pituitary: TP 2, FN 0, FP 1, TN 7.
    np.testing.assert_allclose(sensitivity, [3 / 4, 2 / 4, 2 / 2])
    np.testing.assert_allclose(specificity, [5 / 6, 5 / 6, 7 / 8])
    np.testing.assert_allclose(sensitivity, recall_score(Y_TRUE, Y_PRED, average=None))
    np.testing.assert_allclose(
        specificity, specificity_score(Y_TRUE, Y_PRED, average=None)
    )


def test_sensitivity_specificity_pos_label_and_label_order():
    y_true = [1, 1, 1, 1, 0, 0, 0]
    y_pred = [1, 1, 1, 0, 0, 0, 1]
    assert sensitivity_specificity(y_true, y_pred, pos_label=1) == (0.75, 2 / 3)
    assert sensitivity_specificity(y_true, y_pred, pos_label=0) == (2 / 3, 0.75)
    sensitivity, specificity = sensitivity_specificity(y_true, y_pred, labels=[1, 0])
    np.testing.assert_allclose(sensitivity, [0.75, 2 / 3])
    np.testing.assert_allclose(specificity, [2 / 3, 0.75])


def test_sensitivity_specificity_absent_class_is_zero_without_warning(recwarn):
    sensitivity, specificity = sensitivity_specificity(
        [0, 0, 1], [0, 0, 1], labels=[0, 1, 2]
    )
    np.testing.assert_allclose(sensitivity, [1, 1, 0])
    np.testing.assert_allclose(specificity, [1, 1, 1])
    assert not recwarn.list


def test_sensitivity_specificity_errors():
    with pytest.raises(ValueError, match="pos_label='x' is not one of the labels"):
        sensitivity_specificity([0, 1], [0, 1], pos_label="x")
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        sensitivity_specificity([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        sensitivity_specificity([], [])


def test_summary_multiclass_matches_sklearn():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=len(Y_TRUE))
    summary = classification_summary(Y_TRUE, Y_PRED, y_proba=proba)

    assert summary["labels"] == LABELS
    assert summary["n_samples"] == 10
    assert summary["accuracy"] == pytest.approx(0.7)
    assert summary["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(Y_TRUE, Y_PRED)
    )
    assert summary["confusion_matrix"] == [[3, 1, 0], [1, 2, 1], [0, 0, 2]]
    assert summary["confusion_matrix"] == confusion_matrix(Y_TRUE, Y_PRED).tolist()
    assert "pos_label" not in summary and "sensitivity" not in summary

    report = classification_report(Y_TRUE, Y_PRED, output_dict=True)
    for label in LABELS:
        row = summary["per_class"][label]
        assert row["precision"] == pytest.approx(report[label]["precision"])
        assert row["recall"] == pytest.approx(report[label]["recall"])
        assert row["sensitivity"] == row["recall"]
        assert row["f1"] == pytest.approx(report[label]["f1-score"])
        assert row["support"] == report[label]["support"]
    assert summary["per_class"]["glioma"]["specificity"] == pytest.approx(5 / 6)
    assert summary["per_class"]["pituitary"]["specificity"] == pytest.approx(7 / 8)
    for ours, theirs in [("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")]:
        assert summary[ours]["precision"] == pytest.approx(report[theirs]["precision"])
        assert summary[ours]["recall"] == pytest.approx(report[theirs]["recall"])
        assert summary[ours]["f1"] == pytest.approx(report[theirs]["f1-score"])
        assert summary[ours]["support"] == 10
    assert summary["macro_avg"]["specificity"] == pytest.approx(
        np.mean([5 / 6, 5 / 6, 7 / 8])
    )
    assert summary["weighted_avg"]["specificity"] == pytest.approx(
        (4 * 5 / 6 + 4 * 5 / 6 + 2 * 7 / 8) / 10
    )

    assert summary["roc_auc"] == pytest.approx(
        roc_auc_score(Y_TRUE, proba, multi_class="ovr", average="macro")
    )
    y_true = np.asarray(Y_TRUE)
    for i, label in enumerate(LABELS):
        assert summary["per_class"][label]["roc_auc"] == pytest.approx(
            roc_auc_score(y_true == label, proba[:, i])
        )


def test_summary_is_json_serialisable_with_plain_python_types():
    y_true = np.array([0, 1, 1, 0, 1], dtype=np.uint8)
    y_pred = np.array([0, 1, 0, 0, 1], dtype=np.uint8)
    proba = np.array([[0.8, 0.2], [0.1, 0.9], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    summary = classification_summary(y_true, y_pred, y_proba=proba)
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text) == json.loads(json.dumps(summary))
    # pos_label as the estimator's classes_ give it: a numpy scalar
    chosen = classification_summary(y_true, y_pred, pos_label=np.unique(y_true)[1])
    assert json.loads(json.dumps(chosen))["pos_label"] == 1

    def walk(value):
        if isinstance(value, dict):
            assert all(isinstance(key, str) for key in value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            assert value is None or type(value) in (int, float, str, bool), value

    walk(summary)
    assert summary["labels"] == [0, 1]
    assert type(summary["labels"][0]) is int
    assert summary["pos_label"] == 1


def test_summary_binary_by_hand():
    y_true = ["benign"] * 5 + ["malignant"] * 3
    y_pred = ["benign"] * 4 + ["malignant"] + ["malignant"] * 2 + ["benign"]
    proba_malignant = np.array([0.1, 0.2, 0.3, 0.4, 0.7, 0.9, 0.8, 0.35])
    proba = np.column_stack([1 - proba_malignant, proba_malignant])
    summary = classification_summary(y_true, y_pred, y_proba=proba)

    assert summary["pos_label"] == "malignant"
    assert summary["sensitivity"] == pytest.approx(2 / 3)  # TP 2, FN 1
    assert summary["specificity"] == pytest.approx(4 / 5)  # TN 4, FP 1
    assert summary["per_class"]["benign"]["sensitivity"] == pytest.approx(4 / 5)
    assert summary["per_class"]["benign"]["specificity"] == pytest.approx(2 / 3)
    assert summary["per_class"]["malignant"]["precision"] == pytest.approx(
        precision_score(y_true, y_pred, pos_label="malignant")
    )
    assert summary["per_class"]["malignant"]["f1"] == pytest.approx(
        f1_score(y_true, y_pred, pos_label="malignant")
    )
    expected_auc = roc_auc_score(np.array(y_true) == "malignant", proba_malignant)
    # 13 of the 15 (malignant, benign) pairs are ranked right (0.35 < 0.4, 0.7).
    assert expected_auc == pytest.approx(13 / 15)
    assert summary["roc_auc"] == pytest.approx(expected_auc)
    assert summary["per_class"]["benign"]["roc_auc"] == pytest.approx(expected_auc)

    # A 1-D score is the score of pos_label.
    one_d = classification_summary(y_true, y_pred, y_proba=proba_malignant)
    assert one_d["roc_auc"] == pytest.approx(expected_auc)
    flipped = classification_summary(
        y_true, y_pred, y_proba=1 - proba_malignant, pos_label="benign"
    )
    assert flipped["roc_auc"] == pytest.approx(expected_auc)
    assert flipped["sensitivity"] == pytest.approx(4 / 5)
    assert flipped["specificity"] == pytest.approx(2 / 3)


def test_summary_labels_absent_from_test_set():
    # The classifier knows three classes; the test set holds two of them.
    y_true = [0, 0, 1, 1]
    y_pred = [0, 1, 1, 1]
    proba = np.array(
        [[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]]
    )
    with pytest.raises(ValueError, match="pass the classifier's classes_"):
        classification_summary(y_true, y_pred, y_proba=proba)
    summary = classification_summary(y_true, y_pred, y_proba=proba, labels=[0, 1, 2])
    assert summary["per_class"]["2"] == {
        "precision": 0.0,
        "recall": 0.0,
        "sensitivity": 0.0,
        "specificity": 1.0,
        "f1": 0.0,
        "support": 0,
        "roc_auc": None,
    }
    assert summary["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y_true, y_pred)
    )
    assert summary["per_class"]["0"]["roc_auc"] == pytest.approx(1.0)
    assert summary["roc_auc"] == pytest.approx(
        np.mean([summary["per_class"]["0"]["roc_auc"], 1.0])
    )
    assert summary["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]


def test_summary_errors():
    with pytest.raises(ValueError, match=r"labels \['c'\] that are not in"):
        classification_summary(["a", "b"], ["a", "c"], labels=["a", "b"])
    with pytest.raises(ValueError, match="only meaningful for two classes"):
        classification_summary(Y_TRUE, Y_PRED, pos_label="glioma")
    with pytest.raises(ValueError, match="1-D y_proba .* needs two classes"):
        classification_summary(Y_TRUE, Y_PRED, y_proba=np.zeros(10))
    with pytest.raises(ValueError, match="has 2 rows, but y_true has 10"):
        classification_summary(Y_TRUE, Y_PRED, y_proba=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        classification_summary(Y_TRUE, Y_PRED, y_proba=np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="labels must be unique"):
        classification_summary([0, 1], [0, 1], labels=[0, 1, 1])


def test_missing_labels_are_named_not_a_type_error():
    with pytest.raises(ValueError, match="y_true: label at index 1 is missing"):
        classification_summary(["a", None, "b"], ["a", "b", "b"])
    with pytest.raises(ValueError, match="y_pred: label at index 2 is missing"):
        sensitivity_specificity(["a", "a", "b"], np.array(["a", "b", np.nan], object))


def test_sensitivity_specificity_agree_with_the_confusion_matrix():
    # the figures come from imbalanced-learn; check them against the
    # one-vs-rest confusion matrices on random labels, absent classes included
    from sklearn.metrics import multilabel_confusion_matrix

    rng = np.random.default_rng(0)
    labels = ["a", "b", "c", "d", "e"]
    for _ in range(20):
        y_true = rng.choice(labels[:4], size=40)
        y_pred = rng.choice(labels[:4], size=40)
        sens, spec = sensitivity_specificity(y_true, y_pred, labels=labels)
        mcm = multilabel_confusion_matrix(y_true, y_pred, labels=labels)
        tn, fp, fn, tp = mcm[:, 0, 0], mcm[:, 0, 1], mcm[:, 1, 0], mcm[:, 1, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            expected_sens = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
            expected_spec = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
        np.testing.assert_allclose(sens, expected_sens)
        np.testing.assert_allclose(spec, expected_spec)
