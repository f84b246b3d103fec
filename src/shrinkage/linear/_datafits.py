"""Smooth data terms ``f(w)`` of the linear models, over a flat coefficient vector ``w``.

Each datafit knows its value, gradient, the Hessian on a subset of coordinates, a Lipschitz
constant of its gradient, and how to restrict itself to a subset of coordinates (the others
held at zero) for working-set solvers. The solver never looks inside one.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Quadratic:
    """``f(w) = ||y - X w||^2 / (2n)`` on centered data (``X [n, p]``, ``y [n]``).

    With ``gram=True`` it keeps ``G = X^T X / n [p, p]`` and ``c = X^T y / n [p]`` and never
    touches ``X`` again (fast when ``n >> p``).
    """

    def __init__(self, X: Tensor, y: Tensor, *, gram: bool | None = None) -> None:
        self.n = X.shape[0]
        self.yy = float(y @ y)
        self.c = X.T @ y / self.n
        use_gram = gram if gram is not None else X.shape[0] >= X.shape[1]
        self.X: Tensor | None = None if use_gram else X
        self.y = y
        self.G: Tensor | None = X.T @ X / self.n if use_gram else None
        self._lipschitz: float | None = None

    @classmethod
    def from_gram(cls, G: Tensor, c: Tensor, yy: float, n: int) -> Quadratic:
        self = cls.__new__(cls)
        self.n, self.yy, self.c, self.G, self.X, self.y = n, yy, c, G, None, c.new_zeros(0)
        self._lipschitz = None
        return self

    @property
    def size(self) -> int:
        return int(self.c.shape[0])

    def value(self, w: Tensor) -> Tensor:
        if self.G is not None:
            return 0.5 * (self.yy / self.n - 2 * (w @ self.c) + w @ (self.G @ w))
        assert self.X is not None
        r = self.y - self.X @ w
        return 0.5 * (r @ r) / self.n

    def grad(self, w: Tensor) -> Tensor:
        if self.G is not None:
            return self.G @ w - self.c
        assert self.X is not None
        return self.X.T @ (self.X @ w - self.y) / self.n

    def hessian(self, idx: Tensor, w: Tensor) -> Tensor:
        if self.G is not None:
            return self.G[idx][:, idx]
        assert self.X is not None
        Xs = self.X[:, idx]
        return Xs.T @ Xs / self.n

    @property
    def lipschitz(self) -> float:
        if self._lipschitz is None:
            if self.G is not None:
                self._lipschitz = float(torch.linalg.eigvalsh(self.G)[-1]) if self.size else 0.0
            else:
                assert self.X is not None
                self._lipschitz = float(torch.linalg.matrix_norm(self.X, ord=2) ** 2) / self.n
        return self._lipschitz

    def restrict(self, idx: Tensor) -> Quadratic:
        if self.G is not None:
            return Quadratic.from_gram(self.G[idx][:, idx], self.c[idx], self.yy, self.n)
        assert self.X is not None
        Xs = self.X[:, idx]
        return Quadratic.from_gram(Xs.T @ Xs / self.n, self.c[idx], self.yy, self.n)

    def residual_terms(self, w: Tensor) -> tuple[Tensor, float, float]:
        """``(X^T R, ||R||^2, R^T y)`` with ``R = y - X w``, for the duality gap."""
        if self.G is not None:
            Gw = self.G @ w
            wc = float(w @ self.c)
            return (
                self.n * (self.c - Gw),
                self.yy - 2 * self.n * wc + self.n * float(w @ Gw),
                self.yy - self.n * wc,
            )
        assert self.X is not None
        r = self.y - self.X @ w
        return self.X.T @ r, float(r @ r), float(r @ self.y)


class Logistic:
    """``f(w) = mean_i log(1 + exp(-s_i * (x_i^T w)))`` with ``s_i = +-1``.

    ``X [n, d]`` already carries a column of ones when there is an intercept.
    """

    def __init__(self, X: Tensor, signs: Tensor) -> None:
        self.X, self.s, self.n = X, signs, X.shape[0]
        self._lipschitz: float | None = None

    @property
    def size(self) -> int:
        return int(self.X.shape[1])

    def value(self, w: Tensor) -> Tensor:
        return torch.nn.functional.softplus(-self.s * (self.X @ w)).mean()

    def grad(self, w: Tensor) -> Tensor:
        z = self.s * (self.X @ w)
        return self.X.T @ (-self.s * torch.sigmoid(-z)) / self.n

    def hessian(self, idx: Tensor, w: Tensor) -> Tensor:
        p = torch.sigmoid(self.X @ w)
        Xs = self.X[:, idx]
        return (Xs * (p * (1 - p))[:, None]).T @ Xs / self.n

    @property
    def lipschitz(self) -> float:
        if self._lipschitz is None:
            self._lipschitz = float(torch.linalg.matrix_norm(self.X, ord=2) ** 2) / (4 * self.n)
        return self._lipschitz

    def restrict(self, idx: Tensor) -> Logistic:
        return Logistic(self.X[:, idx], self.s)


class Multinomial:
    """``f(W) = mean_i CE(softmax(x_i^T W), y_i)`` with ``W [d, K]`` flattened row-major.

    ``X [n, d]`` already carries a column of ones when there is an intercept.
    """

    def __init__(self, X: Tensor, y: Tensor, n_classes: int) -> None:
        self.X, self.y, self.n, self.k = X, y, X.shape[0], n_classes
        self.Y = torch.nn.functional.one_hot(y, n_classes).to(X.dtype)
        self._lipschitz: float | None = None

    @property
    def size(self) -> int:
        return int(self.X.shape[1] * self.k)

    def _logits(self, w: Tensor) -> Tensor:
        return self.X @ w.view(self.X.shape[1], self.k)

    def value(self, w: Tensor) -> Tensor:
        return torch.nn.functional.cross_entropy(self._logits(w), self.y)

    def grad(self, w: Tensor) -> Tensor:
        P = torch.softmax(self._logits(w), dim=1)
        return (self.X.T @ (P - self.Y) / self.n).reshape(-1)

    def hessian(self, idx: Tensor, w: Tensor) -> Tensor:
        P = torch.softmax(self._logits(w), dim=1)  # [n, K]
        feat, cls = idx // self.k, idx % self.k
        Xs = self.X[:, feat]  # [n, m]
        Pa = P[:, cls]  # [n, m]
        same = (cls[:, None] == cls[None, :]).to(P.dtype)
        # d2 f / dW[a,k] dW[b,l] = mean_i x_ia x_ib p_ik (delta_kl - p_il)
        weights = Pa[:, :, None] * (same[None] - Pa[:, None, :])  # [n, m, m]
        return torch.einsum("ia,ib,iab->ab", Xs, Xs, weights) / self.n

    @property
    def lipschitz(self) -> float:
        if self._lipschitz is None:
            self._lipschitz = float(torch.linalg.matrix_norm(self.X, ord=2) ** 2) / (2 * self.n)
        return self._lipschitz

    def restrict(self, idx: Tensor) -> Multinomial:
        raise NotImplementedError("the multinomial datafit is solved on all coordinates")
