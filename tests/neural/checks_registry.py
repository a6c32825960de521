"""CNNClassifier in scikit-learn's estimator checks (gathered by test_common.py).

scikit-learn's data checks fit on 2-D feature matrices ``(n_samples,
n_features)``; a CNN's ``X`` is images, and ``check_images`` rejects a 2-D
matrix (or sparse / object matrices) with an ``ImageReadError`` naming the
shape. Those checks are expected failures; each important one has an image
version in ``tests/neural/test_estimator_contract.py`` (named in the reason).
The API checks (``get_params``, ``clone``, ``__init__`` stores only, tags,
``NotFittedError`` before fit ...) run and pass.
"""

from skmedimg.neural import CNNClassifier

ESTIMATORS = [
    CNNClassifier(
        "test_resnet",
        pretrained=False,
        freeze="backbone",
        image_size=32,
        max_epochs=2,
        batch_size=16,
        device="cpu",
        random_state=0,
    ),
]

_NA = "not applicable: input is images; the check fits on a 2-D feature matrix"


def _na(image_version):
    return f"{_NA}; image version: {image_version}"


EXPECTED_FAILED_CHECKS = {
    "CNNClassifier": {
        "check_fit_score_takes_y": _na("test_fit_returns_self_and_score"),
        "check_estimators_overwrite_params": _na("test_fit_does_not_mutate_params"),
        "check_dont_overwrite_parameters": _na("test_fit_does_not_mutate_params"),
        "check_estimators_fit_returns_self": _na("test_fit_returns_self_and_score"),
        "check_readonly_memmap_input": _na("test_readonly_images"),
        "check_n_features_in_after_fitting": (
            f"{_NA}; images have no fixed n_features (any size is resized), so "
            "CNNClassifier has no n_features_in_ by design (image_size_ instead)"
        ),
        "check_n_features_in": (
            f"{_NA}; no n_features_in_ by design (image_size_ instead)"
        ),
        "check_positive_only_tag_during_fit": _NA,
        "check_estimators_dtypes": _na("test_input_dtypes"),
        "check_dtype_object": (
            f"{_NA}; an object array must be a 1-D sequence of paths / images"
        ),
        "check_estimators_empty_data_messages": (
            f"{_NA}; empty image input raises ImageReadError (a ValueError) with "
            "its own message, not the feature-matrix one"
        ),
        "check_pipeline_consistency": _na("test_refit_determinism"),
        "check_estimators_nan_inf": _na("test_nan_images"),
        "check_estimators_pickle": _na("test_pickle_round_trip"),
        "check_estimators_pickle(readonly_memmap=True)": _na("test_pickle_round_trip"),
        "check_f_contiguous_array_estimator": _na("test_readonly_images"),
        "check_classifier_data_not_an_array": _na("test_list_of_images"),
        "check_classifiers_one_label": _na("test_one_class_only"),
        "check_classifiers_classes": _na("test_string_and_noncontiguous_labels"),
        "check_classifiers_train": _na("test_string_and_noncontiguous_labels"),
        "check_classifiers_train(readonly_memmap=True)": _na("test_readonly_images"),
        "check_classifiers_train(readonly_memmap=True,X_dtype=float32)": _na(
            "test_input_dtypes"
        ),
        "check_supervised_y_2d": _na("test_y_column_vector_warns"),
        "check_class_weight_classifiers": _na("test_class_weight"),
        "check_methods_sample_order_invariance": _na("test_prediction_invariance"),
        "check_methods_subset_invariance": _na("test_prediction_invariance"),
        "check_fit2d_1sample": _na("test_one_class_only"),
        "check_fit2d_1feature": _NA,
        "check_dict_unchanged": _na("test_predict_does_not_change_state"),
        "check_fit_idempotent": _na("test_refit_determinism"),
        "check_fit_check_is_fitted": _na("test_predict_before_fit"),
        "check_fit2d_predict1d": _na("test_bad_input_shapes"),
    }
}
