"""scikit-learn's own estimator checks over every shrinkage estimator."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from shrinkage import linear

ESTIMATORS = [
    linear.Lasso(alpha=0.1),
    linear.ElasticNet(alpha=0.1),
    linear.Ridge(),
    linear.LogisticRegression(),
    linear.LogisticRegression(penalty="l1", C=10.0),
    linear.LassoCV(cv=3, alphas=10),
    linear.ElasticNetCV(cv=3, alphas=10),
    linear.LogisticRegressionCV(Cs=3, cv=3),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
