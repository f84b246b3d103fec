"""A pytest plugin that runs scikit-learn's own test files for its linear models against
``shrinkage.linear``: the estimator classes are substituted in ``sklearn.linear_model`` before
the test modules import them, and the tests listed in ``expected_failures.txt`` (each with a
reason) are expected to fail, strictly: a listed test that passes fails the run, so the list
shrinks as features land, and a test not listed that fails fails the run.

    make test-conformance
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FILES = ("test_coordinate_descent.py", "test_ridge.py", "test_logistic.py")
SUBSTITUTED = (
    "ElasticNet",
    "ElasticNetCV",
    "Lasso",
    "LassoCV",
    "LogisticRegression",
    "LogisticRegressionCV",
    "Ridge",
)


def expected_failures() -> dict[str, str]:
    """``{test id: reason}`` from ``expected_failures.txt`` (``id  # reason`` per line)."""
    out: dict[str, str] = {}
    for line in (HERE / "expected_failures.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        test_id, _, reason = line.partition("  # ")
        out[test_id.strip()] = reason.strip()
    return out


def pytest_configure(config: pytest.Config) -> None:
    import sklearn.linear_model

    import shrinkage.linear

    for name in SUBSTITUTED:
        setattr(sklearn.linear_model, name, getattr(shrinkage.linear, name))


def _short(nodeid: str) -> str:
    """``test_ridge.py::test_x[param]`` from the node id under site-packages."""
    return nodeid.rsplit("/", 1)[-1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expected = expected_failures()
    seen = set()
    for item in items:
        key = _short(item.nodeid)
        if key in expected:
            seen.add(key)
            item.add_marker(pytest.mark.xfail(reason=expected[key], strict=True))
    missing = sorted(set(expected) - seen)
    if missing:
        raise pytest.UsageError(
            f"expected_failures.txt lists {len(missing)} tests that were not collected, "
            f"e.g. {missing[:3]}"
        )
