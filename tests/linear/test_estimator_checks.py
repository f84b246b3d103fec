"""scikit-learn's own estimator checks over every shrinkage estimator."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from shrinkage import linear, neural

ESTIMATORS = [
    linear.Lasso(alpha=0.1),
    linear.ElasticNet(alpha=0.1),
    linear.Ridge(),
    linear.RidgeCV(),
    linear.GroupLasso(alpha=0.1, groups=None, tol=1e-10, max_iter=10_000),
    linear.GroupLasso(alpha=0.1, groups=None, l1_ratio=0.5, tol=1e-10, max_iter=10_000),
    linear.GroupLassoCV(cv=3, alphas=5, tol=1e-12, max_iter=100_000),
    linear.LogisticRegression(),
    # sample_weight is checked equivalent to repeated rows to 1e-7 on a rank-deficient design:
    # the two fits agree to the solver's tolerance, so it is set tight here (at the default
    # 1e-4, two fits of that 15 x 30 l1 problem within tolerance differ by 0.06 in a
    # coefficient, and which one a fit stops at depends on the thread count; at 1e-10 the
    # weighted and repeated fits agree to 3e-14)
    linear.LogisticRegression(penalty="l1", C=10.0, tol=1e-10, max_iter=10_000),
    linear.LassoCV(cv=3, alphas=10, tol=1e-12, max_iter=100_000),
    linear.ElasticNetCV(cv=3, alphas=10, tol=1e-12, max_iter=100_000),
    linear.LogisticRegressionCV(Cs=3, cv=3),
    linear.PoissonRegressor(alpha=0.1, l1_ratio=0.5),
    linear.GammaRegressor(),
    linear.TweedieRegressor(power=1.5, alpha=0.05, l1_ratio=1.0),
    linear.TweedieRegressor(),
    linear.PoissonRegressorCV(cv=3, alphas=5),
    linear.MultiTaskLasso(alpha=0.1),
    linear.MultiTaskElasticNet(alpha=0.1),
    linear.MultiTaskElasticNetCV(cv=3, alphas=5, tol=1e-12, max_iter=100_000),
    linear.MultiTaskLassoCV(cv=3, alphas=5, tol=1e-12, max_iter=100_000),
    neural.MLPRegressor((16,), learning_rate=1e-2, max_epochs=100, random_state=0),
    neural.MLPClassifier((16,), learning_rate=1e-2, max_epochs=100, random_state=0),
    neural.MLPRegressor(
        (8,), penalty="group_inputs", learning_rate=1e-2, max_epochs=50, random_state=0
    ),
]


def expected_failed_checks(estimator):  # type: ignore[no-untyped-def]
    """The checks scikit-learn also expects its own estimator of the name to fail."""
    if isinstance(estimator, linear.Ridge):
        return {"check_non_transformer_estimators_n_iter": "n_iter_ is None: a direct solve"}
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
