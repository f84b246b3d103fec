"""Penalized linear models with scikit-learn's objectives and attributes, solved in torch."""

from ._cv import ElasticNetCV, LassoCV
from ._glm import GammaRegressor, PoissonRegressor, TweedieRegressor
from ._glm_cv import GammaRegressorCV, PoissonRegressorCV, TweedieRegressorCV
from ._group import GroupLasso, GroupProblem
from ._group_cv import GroupLassoCV
from ._logistic import LogisticRegression
from ._logistic_cv import LogisticRegressionCV
from ._multitask import MultiTaskElasticNet, MultiTaskLasso
from ._multitask_cv import MultiTaskElasticNetCV, MultiTaskLassoCV
from ._problem import LinearProblem
from ._regression import ElasticNet, Lasso, Ridge
from ._ridge_cv import RidgeCV

__all__ = [
    "ElasticNet",
    "ElasticNetCV",
    "GammaRegressor",
    "GammaRegressorCV",
    "GroupLasso",
    "GroupLassoCV",
    "GroupProblem",
    "Lasso",
    "LassoCV",
    "LinearProblem",
    "LogisticRegression",
    "LogisticRegressionCV",
    "MultiTaskElasticNet",
    "MultiTaskElasticNetCV",
    "MultiTaskLasso",
    "MultiTaskLassoCV",
    "PoissonRegressor",
    "PoissonRegressorCV",
    "Ridge",
    "RidgeCV",
    "TweedieRegressor",
    "TweedieRegressorCV",
]
