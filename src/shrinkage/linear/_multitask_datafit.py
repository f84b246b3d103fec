"""The multi-task least-squares datafit: several targets fitted jointly, over one
coefficient matrix, for a penalty on each feature's row (MultiTaskLasso, MultiTaskElasticNet).
The mathematics only, as :mod:`shrinkage.linear._datafits` holds the single-target ones."""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from ._datafits import Design
from ._design import columns, gram, principal, transposed_product
from ._duality import ResidualTerms, fenchel_gap, scaled_residual_gap
from ._lipschitz import least_squares_lipschitz

__all__ = ["MultiTaskQuadratic"]


class MultiTaskQuadratic:
    """``f(w) = ||Y - X W||_F^2 / (2n) + l2 / 2 * ||W||_F^2`` on centered data, over ``W [p, T]``
    flattened row by row (``w = W.reshape(-1)``, a feature's ``T`` coefficients contiguous).

    Kept as ``G = X^T X / n [p, p]`` and ``C = X^T Y / n [p, T]`` when ``n >= p``, otherwise as
    ``X [n, p]`` (dense, or a sparse design) and ``C``.
    """

    def __init__(self, X: Design, Y: Tensor, l2: float = 0.0) -> None:
        self.n, self.p = int(X.shape[0]), int(X.shape[1])
        self.tasks, self.l2 = Y.shape[1], float(l2)
        self.yy = float((Y * Y).sum()) / self.n
        self.C = transposed_product(X, Y) / self.n
        self.G: Tensor | None = gram(X) / self.n if self.n >= self.p else None
        self.X: Design | None = None if self.G is not None else X
        self._top: float | None = None

    @property
    def size(self) -> int:
        return self.p * self.tasks

    @property
    def gradient_flops(self) -> int:
        rows = self.p if self.G is not None else 2 * self.n
        return 2 * rows * self.size

    def _products(self, w: Tensor) -> tuple[Tensor, float]:
        """``(X^T X W / n [p, T], ||X W||^2 / n)``."""
        W = w.view(self.p, self.tasks)
        if self.G is not None:
            GW = self.G @ W
            return GW, float((W * GW).sum())
        assert self.X is not None
        XW = self.X @ W
        return transposed_product(self.X, XW) / self.n, float((XW * XW).sum()) / self.n

    def value(self, w: Tensor) -> Tensor:
        _, quadratic = self._products(w)
        cross = float((w.view(self.p, self.tasks) * self.C).sum())
        return w.new_tensor(0.5 * (self.yy - 2 * cross + quadratic) + 0.5 * self.l2 * float(w @ w))

    def grad(self, w: Tensor) -> Tensor:
        GW, _ = self._products(w)
        return (GW - self.C).reshape(-1) + self.l2 * w

    def hessian(self, idx: Tensor, w: Tensor) -> Tensor:
        """``[k, k]``: ``G[j_a, j_b]`` where entries ``a, b`` share a task, plus ``l2 I``."""
        rows, tasks = idx // self.tasks, idx % self.tasks
        if self.G is not None:
            G = principal(self.G, rows)
        else:
            assert self.X is not None
            G = gram(columns(self.X, rows)) / self.n
        same = (tasks[:, None] == tasks[None, :]).to(G.dtype)
        return G * same + self.l2 * torch.eye(idx.numel(), dtype=G.dtype, device=G.device)

    @property
    def hessian_is_cheap(self) -> bool:
        return self.G is not None

    @property
    def lipschitz(self) -> float:
        """The largest eigenvalue of ``X^T X / n`` (formed on first use) plus ``l2``."""
        if self._top is None:
            self._top = least_squares_lipschitz(self.G, self.X, self.n)
        return self._top + self.l2

    def with_l2(self, l2: float) -> MultiTaskQuadratic:
        """The same data term with the ridge strength ``l2`` (a path's next point).

        Args:
            l2: ``alpha * (1 - l1_ratio)``.

        Returns:
            A copy sharing the data (and its largest eigenvalue, if formed).
        """
        out = copy.copy(self)
        out.l2 = float(l2)
        return out

    def restrict(self, idx: Tensor) -> MultiTaskQuadratic:
        """The datafit on the entries ``idx``, which hold whole rows of ``W`` (every task of
        a feature: a working set of the row groups), in order.

        Args:
            idx: ``[k]`` sorted entries of the flattened ``W [p, T]``.

        Returns:
            The same data term on those rows' features.

        Raises:
            ValueError: ``idx`` holds part of a row.
        """
        if idx.numel() == self.size:
            return self
        rows = idx[:: self.tasks] // self.tasks
        if idx.numel() % self.tasks or not torch.equal(
            idx.view(-1, self.tasks),
            rows[:, None] * self.tasks + torch.arange(self.tasks, device=idx.device),
        ):
            raise ValueError("a multi-task datafit is restricted to whole rows of W only")
        sub = copy.copy(self)
        sub.p, sub.C, sub._top = rows.numel(), self.C.index_select(0, rows), None
        if self.G is not None:
            sub.G = principal(self.G, rows)
        else:  # a Gram matrix of the rows' features when its products cost less than X's
            assert self.X is not None
            sub.X = columns(self.X, rows)
            if sub.p <= 2 * self.n:
                sub.G, sub.X = gram(sub.X) / self.n, None
        return sub

    def duality_gap(self, w: Tensor, l1: float) -> float:
        """The smaller duality gap of ``f + l1 * sum_j ||W_j||_2``: the one scikit-learn's
        multi-task coordinate descent computes (the residual ``R = Y - X W`` scaled into the
        dual-feasible set ``max_j ||X_j^T R - n l2 W_j|| <= n l1``), divided by ``n``, and for
        ``l2 > 0`` the Fenchel dual's at ``R / n`` (:mod:`shrinkage.linear._duality`)."""
        n, W = self.n, w.view(self.p, self.tasks)
        GW, quadratic = self._products(w)
        cross = float((W * self.C).sum())
        r_norm2 = n * (self.yy - 2 * cross + quadratic)
        Z = self.C - GW  # X^T R / n
        norms = torch.linalg.vector_norm(W, dim=1)
        row_norms = float(norms.sum())
        smooth = float("inf")
        if self.l2 > 0:
            reach = torch.linalg.vector_norm(Z, dim=1)
            smooth = fenchel_gap(W, Z, reach, norms, l1, self.l2)
        XtA = n * Z - n * self.l2 * W
        dual_norm = float(torch.linalg.vector_norm(XtA, dim=1).max()) if self.p else 0.0
        terms = ResidualTerms(r_norm2, n * (self.yy - cross), dual_norm, row_norms, float(w @ w))
        return min(smooth, scaled_residual_gap(n, l1, self.l2, terms))
