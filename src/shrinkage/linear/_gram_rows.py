"""Rows of the Gram matrix ``X^T X`` kept for the coordinates a sparse solution uses.

A least-squares gradient on a wide design (``n < p``) reads all of ``X`` (``X^T (y - X w)``,
``2 n p`` multiply-accumulates, limited by memory bandwidth). When ``w`` is sparse, with
support ``S``,

    X^T (y - X w) = X^T y - (X_S^T X)^T w_S,

and the rows ``X_S^T X`` (``[|S|, p]``) can be kept once computed: each later gradient then
costs ``|S| (n + p)`` instead of ``2 n p``. That is glmnet's "covariance updates". Rows are
added in batches (one matrix-matrix product, which reads ``X`` once for the whole batch): the
coordinates that just entered the support, plus those most likely to enter next (the largest
``|x_j^T r|`` at the last gradient, the order in which a decreasing path of strengths lets
coordinates in). A solution whose support outgrows the kept rows' budget falls back to the
plain products.

Rows are bought with what they saved: each gradient they serve earns the plain pass it
replaced, a batch of ``m`` rows costs about ``1 + m / BATCH`` passes, and no batch is added
that the savings (plus a starting ``CREDIT``) cannot pay for. Where supports grow faster than
rows get reused (an Elastic Net whose support reaches thousands), the kept rows cost at most
``CREDIT`` passes more than the plain products.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["GramRows"]

BATCH = 32
"""Rows added at once: on a CPU a ``[32, n] x [n, p]`` product costs about two plain passes
over ``X``, and each later gradient on those rows costs a small fraction of one."""

CREDIT = 8.0
"""Plain passes over ``X`` the rows may cost before they have saved any."""


class GramRows:
    """``X[:, K]`` (``[n, k]``) and ``X[:, K]^T X`` (``[k, p]``) for a growing set ``K`` of at
    most ``limit`` coordinates of the design ``X [n, p]`` (``limit * (n + p)`` values at most;
    the buffers grow as rows are added). ``expected``: coordinates (any integer array) to add
    at the first need, e.g. those that other folds' paths used."""

    def __init__(self, X: Tensor, limit: int, batch: int = BATCH, expected: Any = None) -> None:
        n, p = X.shape
        self.X = X
        self.expected = (
            torch.empty(0, dtype=torch.long, device=X.device)
            if expected is None
            else torch.as_tensor(expected, dtype=torch.long, device=X.device).reshape(-1)
        )
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
        return self.rows.index_select(0, self.position[idx]).index_select(1, idx)

    def fit(self, w: Tensor) -> Tensor | None:
        """``X w`` (``[n]``) from the kept columns, or ``None`` if ``w``'s support is not
        kept (nothing is added)."""
        support = torch.nonzero(w).flatten()
        if not self.covers(support):
            return None
        return self.columns @ w[self.kept]

    def include(self, idx: Tensor, priority: Tensor | None) -> bool:
        """Keep the coordinates ``idx``: those not yet kept are added, with, to fill the
        batch, the expected coordinates and then those of largest ``|priority|`` (``[p]``) not
        yet kept. ``False`` (nothing added) when they do not fit in ``limit`` rows or the
        credit cannot pay for them."""
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
        """``missing`` and, up to a batch, the expected coordinates then those of largest
        ``|priority|``; ``None`` if there is no room or credit for them."""
        room = self.limit - self.kept.numel()
        expected = self.expected[self.position[self.expected] < 0]
        planned = min(room, max(self.batch, missing.numel() + expected.numel()))
        if 1.0 + planned / self.batch > self.credit:  # without the expected ones
            expected = expected[:0]
            planned = min(room, max(self.batch, missing.numel()))
        if missing.numel() > room or 1.0 + planned / self.batch > self.credit:
            return None
        score = priority.abs() if priority is not None else torch.full_like(self.X[0], -torch.inf)
        score[expected] = torch.inf
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
        torch.index_select(self.X, 1, new, out=columns.T)
        torch.matmul(columns, self.X, out=self._rows[k : k + m])
        self.position[new] = torch.arange(k, k + m, device=new.device)
        self.kept = torch.cat([self.kept, new])
