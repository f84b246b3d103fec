"""Penalized linear models with scikit-learn's objectives and attributes, solved in torch."""

from ._estimators import (
    ElasticNet,
    ElasticNetCV,
    Lasso,
    LassoCV,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
)
from ._problem import LinearProblem

__all__ = [
    "ElasticNet",
    "ElasticNetCV",
    "Lasso",
    "LassoCV",
    "LinearProblem",
    "LogisticRegression",
    "LogisticRegressionCV",
    "Ridge",
]
