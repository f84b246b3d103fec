"""What every linear regressor shares, as scikit-learn's ``_base.LinearModel`` keeps it once:
predictions on dense or sparse ``X``, ``sparse_coef_``, the tags, and the strength at which
every coefficient is zero."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._design import as_tensor, transposed_product

__all__ = ["LinearRegressorMixin"]


class LinearRegressorMixin(RegressorMixin):
    """``predict``, ``sparse_coef_`` and the tags of a fitted ``coef_`` and ``intercept_``
    (``multi_output``: whether the class fits a 2-D ``y``)."""

    multi_output: ClassVar[bool] = True
    coef_: Any
    intercept_: Any
    fit_intercept: bool
    positive: bool

    def alpha_max(self, X: Any, y: np.ndarray, weights: np.ndarray | None) -> float:
        """The smallest ``alpha * l1_ratio`` at which every coefficient is zero.

        ``max_j |x_j^T S (y - mean(y))| / sum s`` (the signed maximum under ``positive``),
        ``x_j`` centred when an intercept is fitted; for ``[n, T]`` targets fitted jointly,
        the norm over the tasks, ``max_j ||x_j^T S (Y - mean(Y))||_2 / sum s``. Computed from
        the data, as scikit-learn computes its grid, so that a constant ``y`` gives exactly 0;
        :meth:`~shrinkage.linear.LinearProblem.lambda_max` is the same quantity read from a
        built problem's gradient, which paths use.

        Args:
            X: ``[n, p]``, dense or scipy sparse.
            y: ``[n]``, or ``[n, T]`` (joint fits).
            weights: ``[n]`` sample weights, or ``None``.

        Returns:
            ``alpha_max >= 0``.
        """
        s = np.ones(X.shape[0]) if weights is None else weights
        Y = y.reshape(len(y), -1)
        sy = s[:, None] * (Y - s @ Y / s.sum() if self.fit_intercept else Y)
        both = np.column_stack([sy, s])
        if sparse.issparse(X):
            products = np.asarray(X.T @ both)
        else:  # in torch, on its threads, like the solver that follows
            products = transposed_product(as_tensor(X, "cpu"), as_tensor(both, "cpu")).numpy()
        Xy = products[:, :-1]
        if self.fit_intercept:
            Xy = Xy - products[:, -1:] / s.sum() * sy.sum(axis=0)
        if Y.shape[1] > 1:
            reach = np.sqrt((Xy**2).sum(axis=1))
        else:
            reach = Xy[:, 0] if getattr(self, "positive", False) else np.abs(Xy[:, 0])
        return max(float(reach.max()), 0.0) / float(s.sum()) if reach.size else 0.0

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
