"""Sparse designs: a scipy sparse ``X`` used by the solvers without ever being densified.

:class:`SparseDesign` is the operator ``Z = diag(s) (X - 1 m^T)``: ``X [n, p]`` sparse (CSC),
``m [p]`` the centering (column means, for an intercept fitted on centered data; zeros
otherwise) and ``s [n]`` a row scaling (square roots of sample weights; ones otherwise).
The centering and the scaling are applied in each product, never to ``X`` itself:

* ``Z @ v = s * (X v - (m . v))``;
* ``Z.T @ r = X^T (s * r) - m * (s . r)``;
* ``Z[:, J]^T Z[:, J] = X_J^T S^2 X_J - m_J t^T - t m_J^T + (s . s) m_J m_J^T``, with
  ``t = X_J^T s^2``.

The datafits call it where they would call a dense tensor: ``@``, ``.T @``, ``.shape``,
and :func:`columns` / :func:`gram` for subsets of columns. Products run in NumPy / SciPy on
the CPU, on float64 tensors shared with torch without copies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import Tensor

__all__ = ["SparseDesign", "columns", "gram", "is_sparse", "stored_values"]


def is_sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy sparse matrix or array."""
    return bool(sparse.issparse(X))


def stored_values(X: Any) -> int:
    """The values a product ``X v`` reads, i.e. its multiply-accumulates: ``nnz`` of a sparse
    ``X`` (scipy, or a :class:`SparseDesign`), ``n * p`` of a dense ``X [n, p]`` (array or
    tensor)."""
    if isinstance(X, SparseDesign) or is_sparse(X):
        return int(X.nnz)
    return int(X.shape[0]) * int(X.shape[1])


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


class SparseDesign:
    """``diag(s) (X - 1 m^T)`` over a scipy sparse ``X`` (see the module docstring)."""

    def __init__(
        self, X: Any, center: np.ndarray | None = None, row_scale: np.ndarray | None = None
    ) -> None:
        self.X = sparse.csc_matrix(X, dtype=np.float64)
        n, p = self.X.shape
        self.center = np.zeros(p) if center is None else np.asarray(center, dtype=np.float64)
        self.row_scale = np.ones(n) if row_scale is None else np.asarray(row_scale, np.float64)
        self.shape = (n, p)
        self.dtype = torch.float64
        self.device = torch.device("cpu")

    @property
    def nnz(self) -> int:
        """Stored values of ``X``."""
        return int(self.X.nnz)

    def numel(self) -> int:
        return self.shape[0] * self.shape[1]

    def __matmul__(self, v: Tensor) -> Tensor:
        x = _numpy(v)
        out = self.X @ x - (self.center @ x)
        scale = self.row_scale if x.ndim == 1 else self.row_scale[:, None]
        return torch.from_numpy(np.ascontiguousarray(scale * out))

    def rmatvec(self, r: Tensor) -> Tensor:
        """``Z^T @ r`` (``r [n]`` or ``[n, k]``)."""
        x = _numpy(r)
        scaled = (self.row_scale if x.ndim == 1 else self.row_scale[:, None]) * x
        out = self.X.T @ scaled - np.multiply.outer(self.center, scaled.sum(axis=0))
        return torch.from_numpy(np.ascontiguousarray(out))

    @property
    def T(self) -> _Transposed:
        return _Transposed(self)

    def columns(self, idx: Tensor) -> SparseDesign:
        """``Z[:, idx]``, still sparse."""
        j = _numpy(idx)
        return SparseDesign(self.X[:, j], self.center[j], self.row_scale)

    def gram(self) -> Tensor:
        """``Z^T Z`` as a dense ``[p, p]`` tensor."""
        s2 = self.row_scale**2
        weighted = self.X.T @ sparse.diags(s2) @ self.X
        t = self.X.T @ s2
        m = self.center
        out = weighted.toarray() - np.outer(m, t) - np.outer(t, m) + s2.sum() * np.outer(m, m)
        return torch.from_numpy(np.ascontiguousarray(out))

    def dense(self) -> Tensor:
        """``Z`` as a dense tensor (for a few columns only)."""
        out = self.row_scale[:, None] * (self.X.toarray() - self.center)
        return torch.from_numpy(np.ascontiguousarray(out))


class _Transposed:
    """``Z.T``: what ``Z.T @ r`` needs."""

    def __init__(self, design: SparseDesign) -> None:
        self.design = design

    def __matmul__(self, r: Tensor) -> Tensor:
        return self.design.rmatvec(r)


def columns(X: Tensor | SparseDesign, idx: Tensor) -> Tensor | SparseDesign:
    """``X[:, idx]`` of a dense tensor or a sparse design."""
    return X.columns(idx) if isinstance(X, SparseDesign) else X.index_select(1, idx)


def gram(X: Tensor | SparseDesign) -> Tensor:
    """``X^T X`` of a dense tensor or a sparse design."""
    return X.gram() if isinstance(X, SparseDesign) else X.T @ X
