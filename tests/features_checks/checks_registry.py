"""A fast CNNFeatureExtractor for scikit-learn's checks (see tests/test_common.py).

CNNFeatureExtractor takes images (an array ``(n_samples, height, width[,
n_channels])`` or a sequence of paths / PIL images / arrays), not a 2-D feature
matrix, so the checks that fit or transform a 2-D matrix cannot apply: the
image input helper ``check_images`` rejects it with an ImageReadError. Each
such check has an image version in ``tests/neural/test_features.py``, named in
its reason. The checks that do not feed data (clone, repr, tags, get/set_params,
unfitted errors, no attributes set in ``__init__``, mixin order) pass, and so
do the sparse-input checks (check_images names sparse input in its error).

This registry lives in its own package because ``tests/neural/checks_registry.py``
belongs to the CNNClassifier's tests.
"""

from skmedimg.neural import CNNFeatureExtractor

ESTIMATORS = [
    CNNFeatureExtractor(
        "test_resnet", pretrained=False, image_size=16, batch_size=8, random_state=0
    )
]

_2D = (
    "not applicable: input is images; the check fits on a 2-D feature matrix, "
    "which check_images rejects as not an image array"
)


def _image_version(test):
    return f"{_2D}; image version: tests/neural/test_features.py::{test}"


_NO_FEATURES_IN = (
    "not applicable: images have no n_features_in_; the image shape is not a "
    "feature count (inputs of varying size are accepted and resized)"
)

EXPECTED_FAILED_CHECKS = {
    "CNNFeatureExtractor": {
        "check_complex_data": _image_version("test_bad_images"),
        "check_dict_unchanged": _image_version("test_transform_does_not_change_state"),
        "check_dont_overwrite_parameters": _image_version(
            "test_fit_returns_self_and_does_not_mutate_params"
        ),
        "check_dtype_object": (
            f"{_2D}; a 1-D object array of paths is the image form of object input "
            "(test_features.py::"
            "test_paths_pil_images_and_arrays_give_the_same_features)"
        ),
        "check_estimators_dtypes": _image_version("test_image_dtypes_and_layouts"),
        "check_estimators_empty_data_messages": _image_version("test_bad_images"),
        "check_estimators_fit_returns_self": _image_version(
            "test_fit_returns_self_and_does_not_mutate_params"
        ),
        "check_estimators_nan_inf": _image_version("test_bad_images"),
        "check_estimators_overwrite_params": _image_version(
            "test_fit_returns_self_and_does_not_mutate_params"
        ),
        "check_estimators_pickle": _image_version("test_pickle_round_trip"),
        "check_f_contiguous_array_estimator": _image_version(
            "test_image_dtypes_and_layouts"
        ),
        "check_fit2d_1feature": (
            "not applicable: input is images, which have no features; the check "
            "expects the 2-D '1 feature(s)' message"
        ),
        "check_fit2d_1sample": _image_version(
            "test_n_samples_preserved_across_batches[1] (one image is fine)"
        ),
        "check_fit2d_predict1d": _image_version("test_bad_images (1-D input)"),
        "check_fit_check_is_fitted": _image_version("test_not_fitted_errors"),
        "check_fit_idempotent": _image_version(
            "test_refit_is_deterministic_and_leaves_torch_rng_alone"
        ),
        "check_fit_score_takes_y": _image_version(
            "test_fit_returns_self_and_does_not_mutate_params"
        ),
        "check_methods_sample_order_invariance": _image_version(
            "test_sample_order_and_subsets"
        ),
        "check_methods_subset_invariance": _image_version(
            "test_sample_order_and_subsets"
        ),
        "check_n_features_in": _NO_FEATURES_IN,
        "check_n_features_in_after_fitting": _NO_FEATURES_IN,
        "check_pipeline_consistency": _image_version(
            "test_features_svm_pipeline and test_refit_is_deterministic_..."
        ),
        "check_positive_only_tag_during_fit": _image_version(
            "test_image_dtypes_and_layouts (negative values are rescaled by the "
            "reader's documented bit-depth rule)"
        ),
        "check_readonly_memmap_input": _image_version("test_image_dtypes_and_layouts"),
        "check_transformer_data_not_an_array": _image_version(
            "test_paths_pil_images_and_arrays_give_the_same_features (lists, "
            "object arrays, pandas Series)"
        ),
        "check_transformer_general": _image_version(
            "test_n_samples_preserved_across_batches"
        ),
    }
}
