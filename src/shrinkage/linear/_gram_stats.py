"""Sufficient statistics of weighted least squares (:class:`GramStats`), which
cross-validation downdates fold by fold when ``n >> p``, and the float64 tensor the linear
models compute on (:func:`as_tensor`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import Tensor

from ._sparse import is_sparse

__all__ = ["GramStats", "as_tensor"]


def as_tensor(a: np.ndarray, device: torch.device | str) -> Tensor:
    """A float64 tensor on ``device`` from an array, copying read-only arrays (memory maps)
    rather than aliasing memory that torch could write to."""
    array = np.require(a, dtype=np.float64, requirements=["C", "W"])
    return torch.as_tensor(array, device=device)


class GramStats:
    """Sufficient statistics of weighted least squares on ``(X [n, p], y [n])`` with sample
    weights ``s``: ``X^T S X``, ``X^T S y``, ``y^T S y``, ``X^T s``, ``y^T s``, ``n = sum s``
    and the number of ``rows``. Subtracting a fold's statistics from the whole data's gives
    the statistics of the rest."""

    def __init__(
        self,
        XtX: Tensor,
        Xty: Tensor,
        yy: float,
        x_sum: Tensor,
        y_sum: float,
        n: float,
        rows: int,
    ) -> None:
        self.XtX, self.Xty, self.yy = XtX, Xty, yy
        self.x_sum, self.y_sum, self.n, self.rows = x_sum, y_sum, n, rows

    @classmethod
    def of(
        cls, X: Any, y: np.ndarray, weights: np.ndarray | None, device: torch.device
    ) -> GramStats:
        """The statistics of ``X`` (dense or scipy sparse), ``y`` and the weights."""
        s = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if is_sparse(X):
            Xs = sparse.csr_matrix(X, dtype=np.float64)
            XtX = (Xs.T @ sparse.diags(s) @ Xs).toarray()
            Xty, x_sum = Xs.T @ (s * y), Xs.T @ s
        else:  # in torch, on its threads (a NumPy product would leave BLAS threads spinning)
            Xt, st = as_tensor(X, device), as_tensor(s, device)
            yt = as_tensor(y, device)
            scaled = Xt if weights is None else Xt * st[:, None]
            return cls(
                scaled.T @ Xt, scaled.T @ yt, float(st @ (yt * yt)), scaled.sum(0),
                float(st @ yt), float(st.sum()), int(X.shape[0]),
            )  # fmt: skip
        return cls(
            as_tensor(XtX, device),
            as_tensor(Xty, device),
            float(s @ (y * y)),
            as_tensor(x_sum, device),
            float(s @ y),
            float(s.sum()),
            int(X.shape[0]),
        )

    def _combine(self, other: GramStats, sign: float) -> GramStats:
        return GramStats(
            self.XtX + sign * other.XtX,
            self.Xty + sign * other.Xty,
            self.yy + sign * other.yy,
            self.x_sum + sign * other.x_sum,
            self.y_sum + sign * other.y_sum,
            self.n + sign * other.n,
            self.rows + int(sign) * other.rows,
        )

    def __add__(self, other: GramStats) -> GramStats:
        return self._combine(other, 1.0)

    def __sub__(self, other: GramStats) -> GramStats:
        return self._combine(other, -1.0)

    def normalized(self) -> GramStats:
        """The same data with the weights rescaled to sum to the number of rows (what
        scikit-learn fits): every statistic times ``rows / n``."""
        if self.n == self.rows:
            return self
        k = self.rows / self.n
        return GramStats(
            k * self.XtX, k * self.Xty, k * self.yy, k * self.x_sum, k * self.y_sum,
            float(self.rows), self.rows,
        )  # fmt: skip

    def squared_error(self, coef: Tensor, intercept: float) -> float:
        """``sum_i s_i (y_i - x_i^T coef - intercept)^2`` of the data summarised."""
        b = intercept
        yb = self.yy - 2 * b * self.y_sum + self.n * b * b
        cross = float(coef @ self.Xty) - b * float(coef @ self.x_sum)
        return yb - 2 * cross + float(coef @ (self.XtX @ coef))
