"""scikit-learn's own estimator checks over every shrinkage estimator."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from shrinkage import linear, neural

ESTIMATORS = [
    linear.Lasso(alpha=0.1),
    linear.ElasticNet(alpha=0.1),
    linear.Ridge(),
    linear.LogisticRegression(),
    linear.LogisticRegression(penalty="l1", C=10.0),
    linear.LassoCV(cv=3, alphas=10),
    linear.ElasticNetCV(cv=3, alphas=10),
    linear.LogisticRegressionCV(Cs=3, cv=3),
    neural.MLPRegressor((16,), learning_rate=1e-2, max_epochs=100, random_state=0),
    neural.MLPClassifier((16,), learning_rate=1e-2, max_epochs=100, random_state=0),
    neural.MLPRegressor(
        (8,), penalty="group_inputs", learning_rate=1e-2, max_epochs=50, random_state=0
    ),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)
