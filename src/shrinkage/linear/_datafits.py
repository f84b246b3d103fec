"""Smooth data terms ``f(w)`` of the linear models, over a flat coefficient vector ``w``.

Each datafit knows its value, gradient, the Hessian on a subset of coordinates (and, the
quadratic one, its Hessian's product with a vector), a Lipschitz constant of its gradient,
and how to restrict itself to a subset of coordinates (the others held at zero) for
working-set solvers. The solver never looks inside one.
"""

from __future__ import annotations

import functools
from typing import TypeVar

import torch
from torch import Tensor

from ._design import (
    GramRows,
    KeptColumns,
    SparseDesign,
    columns,
    gram,
    principal,
    stored_values,
    symmetric_product,
    transposed_product,
)
from ._lipschitz import largest_singular_value_sq, least_squares_lipschitz

Design = Tensor | SparseDesign
"""A design matrix: a dense float64 tensor, or a sparse one used as an operator."""


def residual_products(
    X: Design, y: Tensor, w: Tensor, block_bytes: int = 1 << 21, Xw: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``(r, X^T r)`` with ``r = y - X w`` (``X [n, p]`` row-major, ``y [n]``, ``w [p]``).

    On the CPU, in one pass over ``X``: it is read by blocks of rows small enough to stay in
    cache (``block_bytes``), each used twice while there, for ``r_B = y_B - X_B w`` and then
    ``X^T r += X_B^T r_B``. When ``X`` is much larger than the cache this costs about two
    thirds of the two plain products, which read it twice. Elsewhere (a GPU, a sparse design),
    the two plain products; on a sparse design ``X w`` is skipped for ``w = 0`` and, when
    column-major, reads only the columns ``w`` uses when they are under a quarter of them, and
    ``Xw``, when given (from columns kept by the caller), is used as ``X w``.
    """
    if isinstance(X, SparseDesign):
        r = y - (_sparse_product(X, w) if Xw is None else Xw)
        return r, X.T @ r
    n, p = X.shape
    rows = max(4, block_bytes // max(1, p * X.element_size()))
    if X.device.type != "cpu" or rows >= n:
        r = y - X @ w
        return r, X.T @ r
    r = torch.empty_like(y)
    XtR = torch.zeros(p, dtype=X.dtype, device=X.device)
    for start in range(0, n, rows):
        X_b, r_b = X[start : start + rows], r[start : start + rows]
        torch.addmv(y[start : start + rows], X_b, w, alpha=-1.0, out=r_b)
        XtR.addmv_(X_b.T, r_b)
    return r, XtR


def _sparse_product(X: SparseDesign, w: Tensor) -> Tensor:
    """``X w`` ``[n]``: zeros for ``w = 0``; from the columns ``w`` uses when ``X`` is
    column-major and they are under a quarter of them; else a product with all of ``X``."""
    used = torch.nonzero(w).reshape(-1)
    if not used.numel():
        return w.new_zeros(X.shape[0])
    if X.column_major and 4 * used.numel() < X.shape[1]:
        return X.columns(used) @ w[used]
    return X @ w


_Cached = TypeVar("_Cached", bound=tuple[Tensor, ...])


def _hit(cached: _Cached | None, w: Tensor) -> _Cached | None:
    """``cached`` (products remembered with the point ``cached[0]``) if that point is ``w``."""
    if cached is not None and cached[0].shape == w.shape and torch.equal(cached[0], w):
        return cached
    return None


class Quadratic:
    """``f(w) = ||y - X w||^2 / (2n)`` on centered data (``X [n, p]``, ``y [n]``).

    With ``use_gram=True`` it keeps ``G = X^T X / n [p, p]`` and ``c = X^T y / n [p]`` and never
    touches ``X`` again (fast when ``n >> p``). Without, it keeps ``X`` row-major and computes
    the residual and its correlations with the features in one pass
    (:func:`residual_products`); on a dense ``X`` it also keeps the Gram rows of the
    coordinates sparse solutions use (:class:`GramRows`, at most ``n / 4`` of them; none
    with ``gram_rows=False``), and a gradient at a ``w`` whose support they cover costs
    ``|S| (n + p)``, not ``2 n p``. On a sparse ``X`` it keeps the columns of the last
    restriction (:class:`KeptColumns`), which serve ``X w`` for a ``w`` supported on them
    and the restrictions to their subsets.

    The gradient is affine in ``w`` (``affine_grad``); the products with ``X`` or ``G`` behind
    it are remembered for the last ``w``, so the value, the gradient and the duality gap at
    one point share them.
    """

    affine_grad = True

    def __init__(
        self,
        X: Design,
        y: Tensor,
        *,
        use_gram: bool | None = None,
        gram_rows: bool = True,
    ) -> None:
        self.n = X.shape[0]
        self.yy = float(y @ y)
        self.c = X.T @ y / self.n
        if use_gram is None:
            use_gram = X.shape[0] >= X.shape[1]
        self.X: Design | None = None
        if not use_gram:
            self.X = X.contiguous() if isinstance(X, Tensor) else X
        self.y = y
        self.G: Tensor | None = gram(X) / self.n if use_gram else None
        self._lipschitz: float | None = None
        self._columns_bounded = 0  # see _column_bound
        self._last: tuple[Tensor, Tensor, Tensor] | None = None
        self._last_gram: tuple[Tensor, Tensor] | None = None
        self._rows: GramRows | None = None
        self._columns: KeptColumns | None = None
        if isinstance(self.X, Tensor) and gram_rows:
            self._rows = GramRows(self.X, limit=self.n // 4)
        elif isinstance(self.X, SparseDesign):
            self._columns = KeptColumns(self.X)

    @classmethod
    def from_gram(cls, G: Tensor, c: Tensor, yy: float, n: int) -> Quadratic:
        return cls._of(n, yy, c, G=G, X=None, y=c.new_zeros(0))

    @classmethod
    def _of(
        cls, n: int, yy: float, c: Tensor, *, G: Tensor | None, X: Design | None, y: Tensor
    ) -> Quadratic:
        """A datafit from its parts, with empty caches (a restriction of a larger one)."""
        self = cls.__new__(cls)
        self.n, self.yy, self.c, self.G, self.X, self.y = n, yy, c, G, X, y
        self._lipschitz = None
        self._columns_bounded = 0
        self._last = None
        self._last_gram = None
        self._rows = None
        self._columns = None
        return self

    @property
    def size(self) -> int:
        return int(self.c.shape[0])

    @property
    def gradient_flops(self) -> int:
        """About what one gradient costs: a product with ``G``, or two with ``X``."""
        if self.G is not None:
            return 2 * self.size * self.size
        assert self.X is not None
        return 2 * product_flops(self.X)

    @property
    def hessian_is_cheap(self) -> bool:
        """Whether the Hessian on a support is a slice of a kept Gram matrix."""
        return self.G is not None

    def _residual(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """``(R, X^T R)`` with ``R = y - X w``, remembered for the last ``w`` (the gradient,
        the value and the gap at the same point share them)."""
        assert self.X is not None
        cached = _hit(self._last, w)
        if cached is not None:
            return cached[1], cached[2]
        if not bool(w.any()):  # at zero, R = y and X^T R = X^T y, kept as n c: no pass over X
            r, XtR = self.y.clone(), self.n * self.c
            self._last = (w.clone(), r, XtR)
            return r, XtR
        # rows to add are ranked by the last |X^T R|: the coordinates likeliest to enter next
        last = None if self._last is None else self._last[2]
        kept = None if self._rows is None else self._rows.products(w, last)
        if kept is not None:  # X^T (y - X w) = X^T y - (X_S^T X)^T w_S
            r, XtR = self.y - kept[0], self.n * self.c - kept[1]
        else:  # on a sparse X, X w from the kept columns when they hold w's support
            Xw = None if self._columns is None else self._columns.product(w)
            r, XtR = residual_products(self.X, self.y, w, Xw=Xw)
        self._last = (w.clone(), r, XtR)
        return r, XtR

    def _gram_product(self, w: Tensor) -> Tensor:
        """``G w``, remembered for the last ``w``; from the rows of ``w``'s support when it
        holds at most a quarter of the coordinates (``G`` is symmetric: ``G w = G_S^T w_S``),
        which reads that share of ``G`` only."""
        assert self.G is not None
        cached = _hit(self._last_gram, w)
        if cached is not None:
            return cached[1]
        used = torch.nonzero(w).reshape(-1)
        few = 4 * used.numel() <= w.numel()
        Gw = w[used] @ self.G.index_select(0, used) if few else self.G @ w
        self._last_gram = (w.clone(), Gw)
        return Gw

    def value(self, w: Tensor) -> Tensor:
        if self.G is not None:
            return 0.5 * (self.yy / self.n - 2 * (w @ self.c) + w @ self._gram_product(w))
        assert self.X is not None
        cached = _hit(self._last, w)
        if cached is not None:
            r = cached[1]
        else:  # without a remembered residual, no X^T R: a line search asks for values only
            Xw = None if self._rows is None else self._rows.fit(w)
            if Xw is None and self._columns is not None:
                Xw = self._columns.product(w)
            r = self.y - (self.X @ w if Xw is None else Xw)
        return 0.5 * (r @ r) / self.n

    def grad(self, w: Tensor) -> Tensor:
        if self.G is not None:
            return self._gram_product(w) - self.c
        return -self._residual(w)[1] / self.n

    def hessian(self, idx: Tensor, w: Tensor) -> Tensor:
        if self.G is not None:
            if idx.numel() == self.size:
                return self.G
            return principal(self.G, idx)
        assert self.X is not None
        if self._rows is not None and self._rows.covers(idx):
            return self._rows.gram(idx) / self.n
        return gram(self._take(idx)) / self.n

    @property
    def matrix_free_newton(self) -> bool:
        """Whether Newton steps by Hessian products (:mod:`._newton_cg`) pay here: on a kept
        Gram matrix or a dense design; on the sparse path of ``docs/benchmarks.md`` they saved
        no time and raised the peak memory."""
        return not isinstance(self.X, SparseDesign)

    def hessian_product(self, v: Tensor) -> Tensor:
        """``H v = X^T X v / n`` (``v [p]``, the Hessian is constant): ``G v`` from a kept
        Gram matrix, else one pass over ``X`` (both products read it once on the CPU)."""
        if self.G is not None:
            return self.G @ v
        assert self.X is not None
        _, XtXv = residual_products(self.X, v.new_zeros(self.n), -v)
        return XtXv / self.n

    def _take(self, idx: Tensor) -> Design:
        """``X[:, idx]``, through the kept columns of a sparse ``X``."""
        assert self.X is not None
        return columns(self.X, idx) if self._columns is None else self._columns.take(idx)

    @property
    def lipschitz(self) -> float:
        if self._lipschitz is None:
            self._lipschitz = least_squares_lipschitz(self.G, self.X, self.n)
        return self._lipschitz

    def restrict(self, idx: Tensor) -> Quadratic:
        if self.G is not None:
            if idx.numel() == self.size:
                return self
            G = principal(self.G, idx)
            return Quadratic.from_gram(G, self.c[idx], self.yy, self.n)
        assert self.X is not None
        if idx.numel() == self.size:
            return self
        m = idx.numel()
        if self._rows is not None and m <= self.n and self._rows.covers(idx):
            return Quadratic.from_gram(self._rows.gram(idx) / self.n, self.c[idx], self.yy, self.n)
        Xs = self._take(idx)
        if m > self.n or m * m > product_flops(Xs):
            # a Gram larger than the data, or than the sparse columns: stay on the columns
            sub = Quadratic._of(self.n, self.yy, self.c[idx], G=None, X=Xs, y=self.y)
            sub._lipschitz = self._column_bound(m)
            return sub
        return Quadratic.from_gram(gram(Xs) / self.n, self.c[idx], self.yy, self.n)

    def _column_bound(self, m: int) -> float | None:
        """A Lipschitz constant for a restriction to ``m`` columns kept as such, or ``None``
        for it to compute its own. ``sigma_max(X_S) <= sigma_max(X)``: this datafit's constant
        bounds them all. It is used once known, or once the restrictions' power iterations
        have read as many columns as ``X`` has (it is then computed, once, for about what they
        cost); the working sets' inner solves, a few steps each, lose little to the shorter
        step (``docs/benchmarks.md``, the wide Elastic Net path)."""
        if self._lipschitz is None:
            self._columns_bounded += m
            if self._columns_bounded < self.size:
                return None
        return self.lipschitz

    def residual_terms(self, w: Tensor) -> tuple[Tensor, float, float]:
        """``(X^T R, ||R||^2, R^T y)`` with ``R = y - X w``, for the duality gap."""
        if self.G is not None:
            Gw = self._gram_product(w)
            wc = float(w @ self.c)
            return (
                self.n * (self.c - Gw),
                self.yy - 2 * self.n * wc + self.n * float(w @ Gw),
                self.yy - self.n * wc,
            )
        r, XtR = self._residual(w)
        return XtR, float(r @ r), float(r @ self.y)


def product_flops(X: Design) -> int:
    """Floating-point operations of ``X @ v`` (or ``X^T @ r``): twice the stored values."""
    return 2 * stored_values(X)


def _weighted_mean(values: Tensor, weights: Tensor | None) -> Tensor:
    if weights is None:
        return values.mean()
    return (weights * values).sum() / weights.sum()


def _dense_columns(X: Design, idx: Tensor) -> Tensor:
    chosen = columns(X, idx)
    return chosen.dense() if isinstance(chosen, SparseDesign) else chosen


def _weighted_lipschitz(X: Design, weights: Tensor | None, total: float, over: int) -> float:
    """``max_i s_i * ||X||_2^2 / (over * sum_i s_i)``: a Lipschitz constant of the gradient of
    a weighted mean of per-sample losses of ``x_i^T w`` whose second derivative is at most
    ``1 / over`` (4 for the logistic loss, 2 for the softmax cross-entropy)."""
    top = float(weights.max()) if weights is not None else 1.0
    return top * largest_singular_value_sq(X) / (over * total)


class PerSampleTerm:
    """A weighted mean of per-sample losses of ``x_i^T w`` over a design ``X [n, d]``: its
    size and what one gradient costs (two products with ``X``)."""

    X: Design

    @property
    def size(self) -> int:
        return int(self.X.shape[1])

    @property
    def gradient_flops(self) -> int:
        return 2 * product_flops(self.X)


class Logistic(PerSampleTerm):
    """``f(w) = sum_i s_i log(1 + exp(-y_i x_i^T w)) / sum_i s_i`` with ``y_i = +-1`` and
    sample weights ``s`` (all 1 when ``None``).

    ``X [n, d]`` (dense, or a sparse design) already carries a column of ones when there is
    an intercept.
    """

    def __init__(self, X: Design, signs: Tensor, weights: Tensor | None = None) -> None:
        self.X, self.s, self.n, self.weights = X, signs, X.shape[0], weights
        self._total = float(weights.sum()) if weights is not None else float(self.n)

    def _per_sample(self, v: Tensor) -> Tensor:
        return v if self.weights is None else self.weights * v

    def value(self, w: Tensor) -> Tensor:
        return _weighted_mean(torch.nn.functional.softplus(-self.s * (self.X @ w)), self.weights)

    def grad(self, w: Tensor) -> Tensor:
        z = self.s * (self.X @ w)
        return self.X.T @ self._per_sample(-self.s * torch.sigmoid(-z)) / self._total

    def hessian(self, idx: Tensor, w: Tensor) -> Tensor:
        p = torch.sigmoid(self.X @ w)
        Xs = _dense_columns(self.X, idx)
        return (Xs * self._per_sample(p * (1 - p))[:, None]).T @ Xs / self._total

    @functools.cached_property
    def lipschitz(self) -> float:
        return _weighted_lipschitz(self.X, self.weights, self._total, 4)

    def restrict(self, idx: Tensor) -> Logistic:
        if idx.numel() == self.size:
            return self
        return Logistic(columns(self.X, idx), self.s, self.weights)


class Multinomial:
    """``f(W) = sum_i s_i CE(softmax(x_i^T W), y_i) / sum_i s_i`` with ``W [d, K]`` flattened
    row-major and sample weights ``s`` (all 1 when ``None``).

    ``X [n, d]`` (dense, or a sparse design) already carries a column of ones when there is
    an intercept.
    """

    def __init__(self, X: Design, y: Tensor, n_classes: int, weights: Tensor | None = None) -> None:
        self.X, self.y, self.n, self.k, self.weights = X, y, X.shape[0], n_classes, weights
        self._total = float(weights.sum()) if weights is not None else float(self.n)
        self.Y = torch.nn.functional.one_hot(y, n_classes).to(torch.float64)

    @property
    def size(self) -> int:
        return int(self.X.shape[1] * self.k)

    @property
    def gradient_flops(self) -> int:
        return 2 * self.k * product_flops(self.X)

    def _logits(self, w: Tensor) -> Tensor:
        return self.X @ w.view(self.X.shape[1], self.k)

    def _rows(self, M: Tensor) -> Tensor:
        return M if self.weights is None else self.weights[:, None] * M

    def value(self, w: Tensor) -> Tensor:
        losses = torch.nn.functional.cross_entropy(self._logits(w), self.y, reduction="none")
        return _weighted_mean(losses, self.weights)

    def grad(self, w: Tensor) -> Tensor:
        P = torch.softmax(self._logits(w), dim=1)
        return (transposed_product(self.X, self._rows(P - self.Y)) / self._total).reshape(-1)

    def hessian(self, idx: Tensor, w: Tensor) -> Tensor:
        P = torch.softmax(self._logits(w), dim=1)  # [n, K]
        feat, cls = idx // self.k, idx % self.k
        Xs = _dense_columns(self.X, feat)  # [n, m]
        Pa = P[:, cls]  # [n, m]
        # d2 f / dW[a,k] dW[b,l] = sum_i s_i x_ia x_ib p_ik (delta_kl - p_il) / S
        # = ((X P)^T S X) on the blocks k = l, less (X P)^T S (X P): symmetric products,
        # n m^2 / 2 and n m_k^2 / 2 per class k, no [n, m, m] intermediate
        XP = Xs * Pa
        H = -symmetric_product(self._rows(XP), XP)
        for c in torch.unique(cls):  # the first product lives on each class's own block
            block = torch.nonzero(cls == c).reshape(-1)
            own, columns_k = XP[:, block], Xs[:, block]
            H[block[:, None], block] += symmetric_product(self._rows(own), columns_k)
        return H / self._total

    @functools.cached_property
    def lipschitz(self) -> float:
        return _weighted_lipschitz(self.X, self.weights, self._total, 2)

    def restrict(self, idx: Tensor) -> Multinomial:
        raise NotImplementedError("the multinomial datafit is solved on all coordinates")
