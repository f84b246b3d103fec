"""Kept columns of a sparse design: a working set's columns serve ``X w`` and the columns
of its subsets without another pass over ``X``, with the products a pass over ``X`` gives,
and a Lasso on a CSR design still meets scikit-learn's answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn import linear_model as sk

from shrinkage import linear as sh
from shrinkage.linear._datafits import Quadratic
from shrinkage.linear._design import KeptColumns, SparseDesign


def _csr(n: int = 60, p: int = 40, seed: int = 0) -> sparse.csr_matrix:
    X = sparse.random(n, p, density=0.2, format="csr", random_state=seed)
    X.data = np.random.default_rng(seed).standard_normal(X.nnz)
    return X


class _Counting(SparseDesign):
    """A design that counts the times its columns are taken and its products ``X^T r``."""

    taken = 0
    products = 0

    def columns(self, idx: torch.Tensor) -> SparseDesign:
        type(self).taken += 1
        return super().columns(idx)

    def rmatvec(self, r: torch.Tensor) -> torch.Tensor:
        type(self).products += 1
        return super().rmatvec(r)


@pytest.mark.parametrize("centered", [False, True])
def test_kept_columns_give_the_products_of_the_whole_design(centered: bool) -> None:
    X = _csr()
    center = np.asarray(X.mean(axis=0)).ravel() if centered else None
    design = _Counting(X, center)
    _Counting.taken = 0
    kept = KeptColumns(design)
    idx = torch.tensor([2, 5, 7, 11, 30])
    part = kept.take(idx)
    sub = kept.take(torch.tensor([5, 30]))
    assert _Counting.taken == 1  # the subset came from the kept columns
    np.testing.assert_array_equal(sub.dense().numpy(), part.dense().numpy()[:, [1, 4]])
    w = torch.zeros(40, dtype=torch.float64)
    w[[5, 7, 30]] = torch.tensor([1.5, -2.0, 0.25], dtype=torch.float64)
    product = kept.product(w)
    assert product is not None
    torch.testing.assert_close(product, design @ w, rtol=1e-14, atol=1e-14)
    w[3] = 1.0  # outside the kept columns: no answer from them
    assert kept.product(w) is None


def test_a_new_working_set_replaces_the_kept_columns() -> None:
    design = _Counting(_csr())
    _Counting.taken = 0
    kept = KeptColumns(design)
    kept.take(torch.tensor([1, 2, 3]))
    kept.take(torch.tensor([3, 4]))  # 4 is not kept: read from X
    kept.take(torch.tensor([4]))
    assert _Counting.taken == 2
    w = torch.zeros(40, dtype=torch.float64)
    w[1] = 1.0  # column 1 was let go with the first set
    assert kept.product(w) is None


def test_restricting_twice_reads_the_design_once() -> None:
    design = _Counting(_csr())
    _Counting.taken = 0
    y = torch.randn(60, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    datafit = Quadratic(design, y, use_gram=False)
    datafit.restrict(torch.tensor([0, 4, 9, 12]))
    datafit.restrict(torch.tensor([4, 12]))
    assert _Counting.taken == 1


def test_the_residual_at_zero_reads_no_column() -> None:
    design = _Counting(_csr())
    y = torch.randn(60, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = design.T @ y
    datafit = Quadratic(design, y, use_gram=False)  # X^T y, once
    _Counting.products = 0
    zero = torch.zeros(40, dtype=torch.float64)
    XtR, rr, ry = datafit.residual_terms(zero)
    assert _Counting.products == 0
    torch.testing.assert_close(XtR, expected, rtol=1e-13, atol=1e-13)
    assert rr == ry == float(y @ y)
    w = zero.clone()
    w[3] = 1.0
    datafit.grad(w)  # elsewhere, one pass
    assert _Counting.products == 1


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_lasso_on_csr_meets_scikit_learn(fit_intercept: bool) -> None:
    rng = np.random.default_rng(3)
    X = sparse.random(400, 2000, density=0.01, format="csr", random_state=3)
    X.data = rng.standard_normal(X.nnz)
    w = np.zeros(2000)
    w[rng.choice(2000, 10, replace=False)] = rng.standard_normal(10)
    y = X @ w + 0.1 * rng.standard_normal(400)
    alpha = 0.1 * np.abs(X.T @ (y - y.mean())).max() / 400
    ours = sh.Lasso(alpha=alpha, fit_intercept=fit_intercept, tol=1e-10).fit(X, y)
    ref = sk.Lasso(alpha=alpha, fit_intercept=fit_intercept, tol=1e-12, max_iter=100000)
    ref.fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(ours.coef_ != 0, ref.coef_ != 0)
