"""scikit-learn's estimator checks over every public skmedimg estimator.

The registry of fast constructor settings and the expected failures (each with
its reason) live beside the tests of each subpackage, in
``tests/<subpackage>/checks_registry.py``, which define ``ESTIMATORS`` (a list of
instances) and ``EXPECTED_FAILED_CHECKS`` (a dict: class name -> {check name:
reason}). This file gathers them into one run.
"""

import importlib
import pkgutil

import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)

import tests


def _registries():
    for info in pkgutil.iter_modules(tests.__path__):
        if not info.ispkg:
            continue
        try:
            yield importlib.import_module(f"tests.{info.name}.checks_registry")
        except ModuleNotFoundError as exc:
            if exc.name != f"tests.{info.name}.checks_registry":
                raise


ESTIMATORS = []
EXPECTED_FAILED_CHECKS = {}
for _registry in _registries():
    ESTIMATORS.extend(_registry.ESTIMATORS)
    EXPECTED_FAILED_CHECKS.update(_registry.EXPECTED_FAILED_CHECKS)


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_every_public_estimator_is_registered():
    """A public estimator missing from the registries would escape the checks."""
    from sklearn.base import BaseEstimator

    registered = {type(est) for est in ESTIMATORS}
    missing = []
    for name in ["preprocessing", "neural", "ensemble"]:
        try:
            module = importlib.import_module(f"skmedimg.{name}")
        except ModuleNotFoundError:
            continue
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if isinstance(obj, type) and issubclass(obj, BaseEstimator):
                if obj not in registered:
                    missing.append(f"skmedimg.{name}.{attr}")
    assert not missing, f"estimators without checks: {missing}"


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda est: type(est).__name__)
def test_invalid_parameters_are_reported_before_any_work(estimator):
    # parametrize_with_checks does not yield this check: every invalid value
    # of a constrained parameter must raise sklearn's InvalidParameterError
    # from fit (and fit_transform / fit_resample ...), before the input is read.
    if not hasattr(estimator, "_parameter_constraints"):
        pytest.skip(f"{type(estimator).__name__} declares no parameter constraints")
    check_param_validation(type(estimator).__name__, clone(estimator))
