"""The design matrix as the solvers see it: dense or sparse, Gram statistics, kept Gram rows.

**Sparse designs**, never densified. :class:`SparseDesign` is the operator
``Z = diag(s) (X - 1 m^T)``: ``X [n, p]`` sparse (CSR or CSC as given, never copied; other
formats as CSC), ``m [p]`` the centering (column means, for an intercept fitted on centered
data; zeros otherwise) and ``s [n]`` a row scaling (square roots of sample weights; ones
otherwise), applied in each product, never to ``X`` itself:

* ``Z @ v = s * (X v - (m . v))``;
* ``Z.T @ r = X^T (s * r) - m * (s . r)``;
* ``Z[:, J]^T Z[:, J] = X_J^T S^2 X_J - m_J t^T - t m_J^T + (s . s) m_J m_J^T``, with
  ``t = X_J^T s^2``.

The datafits call it as a dense tensor: ``@``, ``.T @``, ``.shape``, :func:`columns`,
:func:`gram`. Its products run in SciPy, on float64 tensors shared with torch without copies.

**Gram statistics** of weighted least squares (:class:`GramStats`), which cross-validation
downdates fold by fold when ``n >> p``; the float64 tensors the models compute on
(:func:`as_tensor`); dense products (:func:`transposed_product`, :func:`symmetric_product`,
:func:`take_columns`).

**Kept Gram rows** of ``X^T X`` for the coordinates a sparse solution uses (glmnet's
"covariance updates"). On a wide design a gradient ``X^T (y - X w)`` reads all of ``X``
(``2 n p`` multiply-accumulates); with ``w`` supported on ``S`` it is
``X^T y - (X_S^T X)^T w_S``, which costs ``|S| (n + p)`` once the rows ``X_S^T X`` are kept.
Rows are added in batches (one product reading ``X`` once): the coordinates that just entered
the support, and those most likely to enter next (the largest ``|x_j^T r|``). A support that
outgrows the budget falls back to the plain products. Rows are bought with what they saved:
each gradient they serve earns the plain pass it replaced, a batch of ``m`` rows costs about
``1 + m / BATCH`` passes, and no batch is added that the savings (plus a starting ``CREDIT``)
cannot pay for, so the kept rows cost at most ``CREDIT`` passes more than the plain products.
A single fit keeps none: paths and cross-validation folds do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import Tensor

from .._threads import threads_for

__all__ = [
    "CREDIT",
    "GramRows",
    "GramStats",
    "SparseDesign",
    "as_tensor",
    "columns",
    "gram",
    "held_out_product",
    "is_sparse",
    "principal",
    "stored_values",
    "take_columns",
]


def is_sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy sparse matrix or array."""
    return bool(sparse.issparse(X))


def stored_values(X: Any) -> int:
    """The values a product ``X v`` reads (its multiply-accumulates): ``nnz`` of a sparse ``X``
    (scipy or :class:`SparseDesign`), ``n * p`` of a dense ``X [n, p]``."""
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
        kept = X.format in ("csr", "csc") and X.dtype == np.float64  # no copy of CSR or CSC
        self.X = X if kept else sparse.csc_matrix(X, dtype=np.float64)
        n, p = self.X.shape
        self.center = np.zeros(p) if center is None else np.asarray(center, dtype=np.float64)
        self.row_scale = np.ones(n) if row_scale is None else np.asarray(row_scale, np.float64)
        # terms that are no-ops for the plain design are skipped (exact either way)
        self._centered = bool(self.center.any())
        self._scaled = not bool((self.row_scale == 1.0).all())
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
        out = self.X @ x
        if self._centered:
            out = out - (self.center @ x)
        if self._scaled:
            out = (self.row_scale if x.ndim == 1 else self.row_scale[:, None]) * out
        return torch.from_numpy(np.ascontiguousarray(out))

    def rmatvec(self, r: Tensor) -> Tensor:
        """``Z^T @ r`` (``r [n]`` or ``[n, k]``)."""
        x = _numpy(r)
        if self._scaled:
            x = (self.row_scale if x.ndim == 1 else self.row_scale[:, None]) * x
        out = self.X.T @ x
        if self._centered:
            out = out - np.multiply.outer(self.center, x.sum(axis=0))
        return torch.from_numpy(np.ascontiguousarray(out))

    @property
    def T(self) -> _Transposed:
        return _Transposed(self)

    @property
    def column_major(self) -> bool:
        """Whether a few columns are cheap to take (CSC: they are slices; from CSR each
        selection reads every stored value, more than one product ``X v``)."""
        return bool(self.X.format == "csc")

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


class KeptColumns:
    """The columns of a sparse design that a working set last took, kept for what follows.

    Taking columns of a row-major (CSR) design reads every stored value, whatever their
    number. A solver with working sets takes a set of columns, solves on them, then asks for
    ``X w`` with ``w`` supported on that set, and for a subset of it (the support to polish):
    both are served from the kept columns instead of the whole design.

    Example:
        >>> from scipy import sparse
        >>> X = SparseDesign(sparse.random(6, 5, density=0.5, format="csr", random_state=0))
        >>> kept = KeptColumns(X)
        >>> part = kept.take(torch.tensor([1, 3, 4]))  # reads X
        >>> sub = kept.take(torch.tensor([3, 4]))  # reads the three kept columns only
        >>> w = torch.tensor([0.0, 1.0, 0.0, 2.0, 0.0], dtype=torch.float64)
        >>> bool(torch.allclose(kept.product(w), X @ w))
        True
    """

    def __init__(self, X: SparseDesign) -> None:
        self.X = X
        self._idx = torch.zeros(0, dtype=torch.long)  # the kept columns' indices, in order
        self._cols: SparseDesign | None = None
        self._where = torch.full((X.shape[1],), -1, dtype=torch.long)  # position, or -1

    def take(self, idx: Tensor) -> SparseDesign:
        """``X[:, idx]``: from the kept columns when they hold every index, else from ``X``
        (and those are kept from then on)."""
        if self._cols is not None and bool((self._where[idx] >= 0).all()):
            return self._cols.columns(self._where[idx])
        self._where[self._idx] = -1
        self._idx = idx.clone()
        self._where[idx] = torch.arange(idx.numel())
        self._cols = self.X.columns(idx)
        return self._cols

    def product(self, w: Tensor) -> Tensor | None:
        """``X w`` ``[n]`` from the kept columns when they hold the support of ``w`` (``[p]``);
        ``None`` when they do not."""
        if self._cols is None:
            return None
        used = torch.nonzero(w).reshape(-1)
        if not bool((self._where[used] >= 0).all()):
            return None
        return self._cols @ w[self._idx]


@dataclass(frozen=True)
class _Transposed:
    """``Z.T``: what ``Z.T @ r`` needs."""

    design: SparseDesign

    def __matmul__(self, r: Tensor) -> Tensor:
        return self.design.rmatvec(r)


def columns(X: Tensor | SparseDesign, idx: Tensor) -> Tensor | SparseDesign:
    """``X[:, idx]`` of a dense tensor or a sparse design."""
    return X.columns(idx) if isinstance(X, SparseDesign) else take_columns(X, idx)


def take_columns(M: Tensor, idx: Tensor) -> Tensor:
    """``M[:, idx]`` (``[r, m]``) of ``M [r, c]``, ``idx [m]``: ``M.index_select(1, idx)``,
    which took 1.2 to 12 times longer on a 2-core CPU (``benchmarks/column_take.py``).

    Example:
        >>> take_columns(torch.arange(6.0).reshape(2, 3), torch.tensor([2, 0]))
        tensor([[2., 0.],
                [5., 3.]])
    """
    return torch.gather(M, 1, idx.expand(M.shape[0], idx.numel()))


def principal(M: Tensor, idx: Tensor) -> Tensor:
    """``M[idx][:, idx]`` (``[m, m]``) of a square ``M [c, c]``: rows, then columns."""
    return take_columns(M.index_select(0, idx), idx)


def gram(X: Tensor | SparseDesign) -> Tensor:
    """``X^T X`` of a dense tensor or a sparse design."""
    return X.gram() if isinstance(X, SparseDesign) else symmetric_product(X, X)


THIN_COLUMNS = 16
"""The widest ``M`` that :func:`transposed_product` multiplies as ``(M^T X)^T``."""


def transposed_product(X: Tensor | SparseDesign, M: Tensor) -> Tensor:
    """``X^T M`` of a dense tensor or a sparse design.

    ``X [n, p]``, ``M [n]`` or ``[n, k]``; returns ``[p]`` or ``[p, k]``. With a dense ``X`` and
    ``2 <= k <= THIN_COLUMNS`` the product is formed as ``(M^T X)^T``, which reads ``X`` in its
    own row order: torch's ``X.T @ M`` packs the transposed tall operand first (2 to 4 times
    slower at ``k`` from 2 to 10, on 20000 x 500 and 2000 x 20000 designs). Either form is a
    fixed order of operations, so a result repeats exactly.

    Example:
        >>> X = torch.randn(100, 7, dtype=torch.float64)
        >>> M = torch.randn(100, 3, dtype=torch.float64)
        >>> torch.allclose(transposed_product(X, M), X.T @ M)
        True
    """
    if isinstance(X, SparseDesign):
        return X.rmatvec(M)
    if M.dim() == 2 and 2 <= M.shape[1] <= THIN_COLUMNS:
        return (M.T @ X).T.contiguous()
    return X.T @ M


SYMMETRIC_BLOCK = 128
"""The width of the column blocks of :func:`symmetric_product`."""


def symmetric_product(A: Tensor, X: Tensor) -> Tensor:
    """``A^T X`` when it is symmetric (``A = S X`` for a diagonal ``S``), from the blocks on
    and above the diagonal only.

    ``A [n, p]`` and ``X [n, p]``; returns ``[p, p]``. With column blocks of width ``b``
    (:data:`SYMMETRIC_BLOCK`) the products cost ``n p (p + b) / 2`` multiply-adds instead of
    ``n p^2`` (torch has no symmetric rank-k update). Each block below the diagonal is the
    transpose of the one above it, and each diagonal block keeps its upper triangle, so the
    result is exactly symmetric.

    Example:
        >>> X = torch.randn(50, 300, dtype=torch.float64)
        >>> torch.allclose(symmetric_product(X, X), X.T @ X)
        True
    """
    n, p = X.shape
    out = X.new_empty(p, p)
    with threads_for(n * p * (p + SYMMETRIC_BLOCK) / 2):
        for i in range(0, p, SYMMETRIC_BLOCK):
            j = min(i + SYMMETRIC_BLOCK, p)
            row = A[:, i:j].T @ X[:, i:]
            diagonal = row[:, : j - i]
            out[i:j, i:j] = diagonal.triu() + diagonal.triu(1).T
            out[i:j, j:] = row[:, j - i :]
            out[j:, i:j] = row[:, j - i :].T
    return out


def as_tensor(a: np.ndarray, device: torch.device | str) -> Tensor:
    """A float64 tensor on ``device`` from an array, copying read-only arrays (memory maps)
    rather than aliasing memory that torch could write to."""
    array = np.require(a, dtype=np.float64, requirements=["C", "W"])
    return torch.as_tensor(array, device=device)


def held_out_product(X: Any, coef: np.ndarray) -> np.ndarray:
    """``X @ coef`` of held-out data ``X [n, p]`` (dense or scipy sparse), ``coef [p]`` or
    ``[p, k]``, in float64; from the columns of a support under a quarter of ``p``.

    A dense ``X`` is multiplied in torch, on the solver's threads: numpy's BLAS leaves threads
    of its own spinning after a product, which then take turns with the solver's for the
    cores (on 2 cores a wide cross-validation ran a fifth longer, ``docs/benchmarks.md``)."""
    if is_sparse(X):
        return np.asarray(X @ coef)
    c = torch.as_tensor(np.asarray(coef, dtype=np.float64))
    Xt = as_tensor(np.asarray(X), "cpu")
    used = torch.nonzero(c.reshape(c.shape[0], -1).abs().sum(dim=1)).reshape(-1)
    if 4 * used.numel() < c.shape[0]:
        return (take_columns(Xt, used) @ c.index_select(0, used)).numpy()
    return (Xt @ c).numpy()


@dataclass(eq=False)
class GramStats:
    """Sufficient statistics of weighted least squares on ``(X [n, p], y [n])`` with sample
    weights ``s``: ``X^T S X``, ``X^T S y``, ``y^T S y``, ``X^T s``, ``y^T s``, ``n = sum s``
    and the number of ``rows``. Subtracting a fold's statistics from the whole data's gives
    the statistics of the rest."""

    XtX: Tensor
    Xty: Tensor
    yy: float
    x_sum: Tensor
    y_sum: float
    n: float
    rows: int

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
                symmetric_product(scaled, Xt), scaled.T @ yt, float(st @ (yt * yt)), scaled.sum(0),
                float(st @ yt), float(st.sum()), int(X.shape[0]),
            )  # fmt: skip
        return cls(
            as_tensor(XtX, device), as_tensor(Xty, device), float(s @ (y * y)),
            as_tensor(x_sum, device), float(s @ y), float(s.sum()), int(X.shape[0]),
        )  # fmt: skip

    def _combine(self, other: GramStats, sign: float) -> GramStats:
        return GramStats(
            self.XtX + sign * other.XtX, self.Xty + sign * other.Xty, self.yy + sign * other.yy,
            self.x_sum + sign * other.x_sum, self.y_sum + sign * other.y_sum,
            self.n + sign * other.n, self.rows + int(sign) * other.rows,
        )  # fmt: skip

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
        """``sum_i s_i (y_i - x_i^T coef - intercept)^2`` of the data summarised; the quadratic
        term ``coef^T X^T S X coef`` read from the rows and columns of ``coef``'s support
        when it is under half the features."""
        b = intercept
        yb = self.yy - 2 * b * self.y_sum + self.n * b * b
        cross = float(coef @ self.Xty) - b * float(coef @ self.x_sum)
        used = torch.nonzero(coef).reshape(-1)
        if 2 * used.numel() > coef.numel():
            quadratic = float(coef @ (self.XtX @ coef))
        else:
            c = coef[used]
            quadratic = float(c @ (principal(self.XtX, used) @ c))
        return yb - 2 * cross + quadratic


BATCH = 32
"""Rows added at once: on a CPU a ``[32, n] x [n, p]`` product costs about two plain passes
over ``X``, and each later gradient on those rows costs a small fraction of one."""

CREDIT = 8.0
"""Plain passes over ``X`` the rows may cost before they have saved any."""


class GramRows:
    """``X[:, K]`` (``[n, k]``) and ``X[:, K]^T X`` (``[k, p]``) for a growing set ``K`` of at
    most ``limit`` coordinates of the design ``X [n, p]`` (``limit * (n + p)`` values at most;
    the buffers grow as rows are added)."""

    def __init__(self, X: Tensor, limit: int, batch: int = BATCH) -> None:
        n, p = X.shape
        self.X = X
        self.limit = max(int(limit), 0)
        self.batch = max(int(batch), 1)
        self.credit = CREDIT
        self.position = torch.full((p,), -1, dtype=torch.long, device=X.device)
        self.kept = torch.empty(0, dtype=torch.long, device=X.device)
        self._columns = X.new_empty(0, n)  # X[:, K]^T, room for ``limit`` rows
        self._rows = X.new_empty(0, p)  # X[:, K]^T X, room for ``limit`` rows

    @property
    def columns(self) -> Tensor:
        """``X[:, K]``, ``[n, k]``."""
        return self._columns[: self.kept.numel()].T

    @property
    def rows(self) -> Tensor:
        """``X[:, K]^T X``, ``[k, p]``."""
        return self._rows[: self.kept.numel()]

    def covers(self, idx: Tensor) -> bool:
        """Whether every coordinate in ``idx`` is kept."""
        return bool((self.position[idx] >= 0).all())

    def gram(self, idx: Tensor) -> Tensor:
        """``X[:, idx]^T X[:, idx]`` (``[m, m]``) from kept rows (``idx`` must be kept)."""
        return take_columns(self.rows.index_select(0, self.position[idx]), idx)

    def fit(self, w: Tensor) -> Tensor | None:
        """``X w`` (``[n]``) from the kept columns, or ``None`` if ``w``'s support is not
        kept (nothing is added)."""
        support = torch.nonzero(w).flatten()
        if not self.covers(support):
            return None
        return self.columns @ w[self.kept]

    def include(self, idx: Tensor, priority: Tensor | None) -> bool:
        """Keep the coordinates ``idx``: those not yet kept are added, with, to fill the
        batch, those of largest ``|priority|`` (``[p]``) not yet kept. ``False`` (nothing
        added) when they do not fit in ``limit`` rows or the credit cannot pay for them."""
        if idx.numel() > self.limit:
            return False
        missing = idx[self.position[idx] < 0]
        if not missing.numel():
            return True
        new = self._batch(missing, priority)
        if new is None:
            return False
        self._append(new)
        return True

    def products(self, w: Tensor, priority: Tensor | None) -> tuple[Tensor, Tensor] | None:
        """``(X w, X^T X w)`` (``[n]``, ``[p]``) from kept rows, the support of ``w`` first
        included (:meth:`include`); ``None`` when it cannot be."""
        if not self.include(torch.nonzero(w).flatten(), priority):
            return None
        self.credit += 1.0  # the plain pass this replaces
        wk = w[self.kept]
        return self.columns @ wk, wk @ self.rows

    def _batch(self, missing: Tensor, priority: Tensor | None) -> Tensor | None:
        """``missing`` and, up to a batch, the coordinates of largest ``|priority|``; ``None``
        if there is no room or credit for them."""
        room = self.limit - self.kept.numel()
        planned = min(room, max(self.batch, missing.numel()))
        if missing.numel() > room or 1.0 + planned / self.batch > self.credit:
            return None
        score = priority.abs() if priority is not None else torch.full_like(self.X[0], -torch.inf)
        score[self.kept] = -torch.inf
        score[missing] = -torch.inf
        extra = min(planned - missing.numel(), int((score > -torch.inf).sum()))
        return torch.cat([missing, torch.topk(score, extra).indices]) if extra > 0 else missing

    def _append(self, new: Tensor) -> None:
        """Compute and keep the rows of ``new``: one product ``X[:, new]^T X``."""
        k, m = self.kept.numel(), new.numel()
        if k + m > self._rows.shape[0]:  # grow the buffers, doubling, up to ``limit`` rows
            capacity = min(self.limit, max(2 * self._rows.shape[0], k + m, 2 * self.batch))
            n, p = self.X.shape
            self._columns = torch.cat([self.columns.T, self.X.new_empty(capacity - k, n)])
            self._rows = torch.cat([self.rows, self.X.new_empty(capacity - k, p)])
        self.credit -= 1.0 + m / self.batch
        columns = self._columns[k : k + m]
        columns.copy_(take_columns(self.X, new).T)
        torch.matmul(columns, self.X, out=self._rows[k : k + m])
        self.position[new] = torch.arange(k, k + m, device=new.device)
        self.kept = torch.cat([self.kept, new])
