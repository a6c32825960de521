"""Fast instances of skmedimg.preprocessing's estimators for sklearn's checks.

Every estimator here takes images (file paths, PIL images or image arrays of
shape (n_samples, height, width[, n_channels])), not a 2-D feature matrix, so the
scikit-learn checks that fit on a 2-D matrix cannot apply: the image input
helper ``check_images`` rejects it. Each such check has its image version in
``tests/preprocessing/test_estimator_contract.py`` (named in the reason).
"""

from skmedimg.preprocessing import (
    ImageRandomOverSampler,
    ImageRandomUnderSampler,
    ImageResizer,
    ImageValidator,
    IntensityFeatures,
    IntensityKMeans,
    SizeOutlierRejector,
)

ESTIMATORS = [
    ImageValidator(),
    SizeOutlierRejector(),
    ImageResizer(image_size=8),
    IntensityFeatures(),
    IntensityKMeans(n_clusters=2, n_init=1, random_state=0),
    ImageRandomOverSampler(random_state=0),
    ImageRandomUnderSampler(random_state=0),
]

_2D = (
    "not applicable: input is images; the check fits on a 2-D feature matrix, "
    "which check_images rejects as not an image array"
)


def _image_version(test):
    return f"{_2D}; image version: test_estimator_contract.py::{test}"


_COMMON = {
    "check_complex_data": (
        f"{_2D}; complex pixel values are rejected as an unsupported dtype "
        "(test_bad_inputs.py::test_complex_images_rejected)"
    ),
    "check_dict_unchanged": _image_version("test_methods_do_not_change_state"),
    "check_dont_overwrite_parameters": _image_version(
        "test_fit_does_not_mutate_params"
    ),
    "check_dtype_object": (
        f"{_2D}; a 1-D object array of paths/arrays is the image form of object "
        "input (test_estimator_contract.py::test_object_array_of_paths)"
    ),
    "check_estimators_dtypes": _image_version("test_image_dtypes"),
    "check_estimators_empty_data_messages": (
        f"{_2D}; empty image input raises ImageReadError 'empty input' "
        "(test_bad_inputs.py::test_empty_input)"
    ),
    "check_estimators_fit_returns_self": _image_version("test_fit_returns_self"),
    "check_estimators_nan_inf": (
        f"{_2D}; NaN/inf images are named in ImageReadError or dropped by "
        "ImageValidator (test_bad_inputs.py::test_nan_images)"
    ),
    "check_estimators_overwrite_params": _image_version(
        "test_fit_does_not_mutate_params"
    ),
    "check_estimators_pickle": _image_version("test_pickle_round_trip"),
    "check_f_contiguous_array_estimator": _image_version("test_image_dtypes"),
    "check_fit2d_1feature": (
        "not applicable: input is images, which have no features; the check "
        "expects the 2-D '1 feature(s)' message"
    ),
    "check_fit2d_1sample": (
        f"{_2D}; the check expects the 2-D '1 sample' message "
        "(one image is fine for the stateless steps)"
    ),
    "check_fit2d_predict1d": _image_version("test_one_image_not_a_sequence"),
    "check_fit_check_is_fitted": _image_version("test_fitted_state"),
    "check_fit_idempotent": _image_version("test_refit_is_deterministic"),
    "check_fit_score_takes_y": _image_version("test_fit_returns_self"),
    "check_methods_sample_order_invariance": _image_version("test_sample_order"),
    "check_methods_subset_invariance": _image_version("test_sample_order"),
    "check_n_features_in": (
        "not applicable: images have no n_features_in_; the fixed image shape "
        "is not a feature count (inputs of varying size are accepted)"
    ),
    "check_n_features_in_after_fitting": (
        "not applicable: images have no n_features_in_; the fixed image shape "
        "is not a feature count (inputs of varying size are accepted)"
    ),
    "check_pipeline_consistency": _image_version("test_pipeline_consistency"),
    "check_positive_only_tag_during_fit": (
        f"{_2D}; negative pixel values are accepted and rescaled by the "
        "documented bit-depth rule (test_estimator_contract.py::test_image_dtypes)"
    ),
    "check_readonly_memmap_input": _image_version("test_readonly_images"),
}

_TRANSFORMER = {
    "check_transformer_data_not_an_array": (
        f"{_2D}; image version of array-likes: lists and pandas Series of paths "
        "(test_estimator_contract.py::test_container_kinds)"
    ),
    "check_transformer_general": _image_version("test_n_samples_preserved"),
    "check_transformer_preserve_dtypes": _image_version("test_output_dtypes"),
    "check_transformers_unfitted_stateless": _image_version("test_fitted_state"),
}

EXPECTED_FAILED_CHECKS = {
    "ImageValidator": dict(_COMMON),
    "SizeOutlierRejector": dict(_COMMON),
    "ImageResizer": {**_COMMON, **_TRANSFORMER},
    "IntensityFeatures": {**_COMMON, **_TRANSFORMER},
    "IntensityKMeans": {
        **_COMMON,
        "check_transformer_data_not_an_array": _TRANSFORMER[
            "check_transformer_data_not_an_array"
        ],
        "check_transformer_general": _TRANSFORMER["check_transformer_general"],
        "check_transformer_n_iter": (
            f"{_2D}; image version: test_intensity.py::"
            "test_kmeans_attributes_and_summary"
        ),
        "check_clustering": (
            f"{_2D}; image version: test_intensity.py::"
            "test_kmeans_attributes_and_summary"
        ),
    },
    "ImageRandomOverSampler": dict(_COMMON),
    "ImageRandomUnderSampler": dict(_COMMON),
}
