"""What every linear regressor shares, as scikit-learn's ``_base.LinearModel`` keeps it once:
predictions on dense or sparse ``X``, ``sparse_coef_``, and the tags."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["LinearRegressorMixin"]


class LinearRegressorMixin(RegressorMixin):
    """``predict``, ``sparse_coef_`` and the tags of a fitted ``coef_`` and ``intercept_``
    (``multi_output``: whether the class fits a 2-D ``y``)."""

    multi_output: ClassVar[bool] = True
    coef_: Any
    intercept_: Any

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_.T + intercept_``: ``[n_samples]``, or ``[n_samples, n_targets]`` for a
        2-D ``coef_``; ``X`` dense or scipy sparse (CSR or CSC).

        Example:
            >>> import numpy as np
            >>> from shrinkage.linear import Lasso
            >>> Lasso(alpha=0.01).fit(np.eye(3), [1.0, 2.0, 3.0]).predict(np.eye(3)).round(2)
            array([1.03, 2.  , 2.97])
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], reset=False
        )
        return np.asarray(X @ np.asarray(self.coef_).T) + self.intercept_

    @property
    def sparse_coef_(self) -> Any:
        """``coef_`` as a scipy CSR matrix, ``[n_targets, n_features]``."""
        return sparse.csr_matrix(np.atleast_2d(self.coef_))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = self.multi_output
        return tags
