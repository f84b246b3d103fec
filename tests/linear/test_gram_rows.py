"""Kept Gram rows on wide designs: the same products as a pass over ``X``, bought only when
they pay, and cross-validation that uses them (with its folds centred in place) gives
scikit-learn's answers and leaves the user's data as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn import linear_model as sk
from sklearn.datasets import make_regression
from torch import Tensor

from shrinkage import linear as sh
from shrinkage._threads import threads_for
from shrinkage.linear import _design as design
from shrinkage.linear._bound_datafits import LossOptions, SquaredLoss
from shrinkage.linear._datafits import Quadratic
from shrinkage.linear._design import (
    CREDIT,
    THIN_COLUMNS,
    GramRows,
    GramStats,
    SparseDesign,
    principal,
    symmetric_product,
    take_columns,
    transposed_product,
)
from shrinkage.linear._problem import LinearProblem
from shrinkage.path import path


def _design(n: int = 30, p: int = 200, seed: int = 0) -> Tensor:
    return torch.randn(n, p, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _sparse_w(p: int, support: list[int], seed: int = 1) -> Tensor:
    w = torch.zeros(p, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    w[support] = torch.randn(len(support), dtype=torch.float64, generator=gen)
    return w


def test_kept_rows_give_the_products_of_a_pass_over_x() -> None:
    X = _design()
    rows = GramRows(X, limit=40, batch=4)
    priority = torch.rand(200, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for support in ([3, 50, 7], [3, 50, 7, 99], [1, 2, 4, 5, 6, 8, 9, 13, 14]):
        w = _sparse_w(200, support)
        products = rows.products(w, priority)
        assert products is not None
        torch.testing.assert_close(products[0], X @ w, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(products[1], X.T @ (X @ w), rtol=1e-12, atol=1e-10)
    kept = rows.kept
    assert set(kept[:3].tolist()) == {3, 7, 50}  # the support first,
    top = torch.topk(priority.index_fill(0, torch.tensor([3, 7, 50]), -1.0), 1).indices
    assert kept[3] == top[0]  # then the largest priority
    assert len(set(kept.tolist())) == kept.numel()
    torch.testing.assert_close(rows.columns, X[:, kept], rtol=0, atol=0)
    torch.testing.assert_close(rows.rows, X[:, kept].T @ X, rtol=1e-12, atol=1e-10)
    idx = torch.tensor([50, 3, 14])
    torch.testing.assert_close(rows.gram(idx), X[:, idx].T @ X[:, idx], rtol=1e-12, atol=1e-10)
    fitted = rows.fit(_sparse_w(200, [3, 14]))
    assert fitted is not None
    assert rows.fit(_sparse_w(200, [3, 199])) is None  # not kept, and nothing is added


def test_rows_are_refused_beyond_the_limit_and_the_credit() -> None:
    X = _design()
    assert GramRows(X, limit=4, batch=2).products(_sparse_w(200, [1, 2, 3, 4, 5]), None) is None
    rows = GramRows(X, limit=100, batch=1)
    rows.credit = 2.5  # a batch of m rows costs 1 + m / batch passes
    assert rows.products(_sparse_w(200, [1, 2]), None) is None
    assert rows.kept.numel() == 0
    assert rows.products(_sparse_w(200, [1]), None) is not None
    assert rows.credit == pytest.approx(2.5 - 2.0 + 1.0)  # paid 2, earned the pass it saved


def test_a_support_that_keeps_growing_costs_at_most_the_credit() -> None:
    """Each gradient brings new coordinates: rows stop being bought once their cost (in
    passes over X) exceeds what they saved plus the starting credit."""
    X = _design(n=40, p=400)
    rows = GramRows(X, limit=1000, batch=2)
    spent = served = 0.0
    for step in range(1, 60):
        credit = rows.credit
        if rows.products(_sparse_w(400, list(range(0, 6 * step, 1))), None) is not None:
            served += 1
            spent += credit - rows.credit + 1.0
    assert spent <= served + CREDIT
    assert rows.kept.numel() < 6 * 59


def test_the_datafit_on_kept_rows_equals_the_one_on_passes() -> None:
    X, y = _design(n=60, p=300), _design(n=60, p=1, seed=5)[:, 0]
    kept = Quadratic(X, y, use_gram=False)
    plain = Quadratic(X, y, use_gram=False)
    plain._rows = None  # every product a pass over X
    for support in ([], [4], [4, 9, 17], [4, 9, 17, 200, 201, 250]):
        w = _sparse_w(300, support)
        for a, b in zip(kept.residual_terms(w), plain.residual_terms(w), strict=True):
            torch.testing.assert_close(
                torch.as_tensor(a), torch.as_tensor(b), rtol=1e-10, atol=1e-9
            )
        torch.testing.assert_close(kept.grad(w), plain.grad(w), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(kept.value(w), plain.value(w), rtol=1e-12, atol=1e-12)
    idx = torch.tensor([4, 9, 17])
    torch.testing.assert_close(kept.hessian(idx, w), plain.hessian(idx, w), rtol=1e-10, atol=1e-10)
    sub, sub_plain = kept.restrict(idx), plain.restrict(idx)
    torch.testing.assert_close(sub.grad(w[idx]), sub_plain.grad(w[idx]), rtol=1e-10, atol=1e-10)


def _wide(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return make_regression(
        n_samples=120, n_features=1500, n_informative=12, noise=1.0, random_state=seed
    )


@pytest.mark.parametrize("weighted", [False, True])
def test_wide_lasso_cv_matches_sklearn_and_leaves_x_as_it_was(weighted: bool) -> None:
    X, y = _wide()
    weights = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    before = X.copy()
    ours = sh.LassoCV(cv=4, tol=1e-8).fit(X, y, sample_weight=weights)
    theirs = sk.LassoCV(cv=4, tol=1e-8, max_iter=100_000).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(X, before)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-12)
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=1e-4)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4 * np.abs(theirs.coef_).max())


def test_folds_given_as_slices_or_masks_are_copied_not_centred_in_place() -> None:
    X, y = _wide(seed=1)
    before = X.copy()
    first = np.arange(120) < 90
    given = [(slice(0, 90), slice(90, 120)), (~first, first)]
    ours = sh.LassoCV(cv=given).fit(X, y)
    np.testing.assert_array_equal(X, before)
    indices = [(np.arange(90), np.arange(90, 120)), (np.arange(90, 120), np.arange(90))]
    same = sh.LassoCV(cv=indices).fit(X, y)
    assert ours.alpha_ == same.alpha_
    np.testing.assert_allclose(ours.mse_path_, same.mse_path_, rtol=1e-12)


def test_centring_in_place_gives_the_same_loss() -> None:
    X, y = _wide(seed=2)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    for sample_weight in (None, weights):
        options = LossOptions(True, torch.device("cpu"), sample_weight=sample_weight)
        copy = X.copy()
        plain = SquaredLoss(X, y, options)
        in_place = SquaredLoss(copy, y, LossOptions(**{**vars(options), "overwrite_X": True}))
        assert not np.array_equal(copy, X)  # the copy was the design
        w = _sparse_w(X.shape[1], [0, 5, 99])
        torch.testing.assert_close(
            in_place.datafit.grad(w), plain.datafit.grad(w), rtol=1e-12, atol=1e-10
        )


def test_the_retired_expected_support_hint_warns_and_changes_nothing() -> None:
    X, y = _wide(seed=3)
    alpha = 0.1 * float(np.abs((X - X.mean(0)).T @ (y - y.mean())).max()) / len(y)
    common = dict(loss="squared", l1_ratio=1.0, tol=1e-10, max_iter=100_000)
    plain = LinearProblem(X, y, **common)
    with pytest.warns(FutureWarning, match="expected_support"):
        hinted = LinearProblem(X, y, expected_support=np.arange(0, 1500, 7), **common)
    w0 = plain.initial_state()
    torch.testing.assert_close(hinted.fit(alpha, w0)[0], plain.fit(alpha, w0)[0], rtol=0, atol=0)


def test_a_single_fit_keeps_no_rows_and_a_path_does() -> None:
    X, y = _wide(seed=4)
    common = dict(loss="squared", l1_ratio=1.0, tol=1e-8, max_iter=100_000)
    single = LinearProblem(X, y, finish=True, **common)
    along = LinearProblem(X, y, **common)
    assert isinstance(single.loss.datafit, Quadratic) and single.loss.datafit._rows is None
    assert isinstance(along.loss.datafit, Quadratic) and along.loss.datafit._rows is not None
    alpha = 0.1 * float(np.abs((X - X.mean(0)).T @ (y - y.mean())).max()) / len(y)
    (alone,) = path(single, [alpha])
    (on_rows,) = path(along, [alpha])
    np.testing.assert_allclose(alone.coef, on_rows.coef, atol=1e-6 * np.abs(on_rows.coef).max())


def test_an_uncentred_unweighted_design_is_read_in_place_and_left_as_it_was() -> None:
    X, y = _wide(seed=5)
    before = X.copy()
    problem = LinearProblem(X, y, loss="squared", l1_ratio=1.0, tol=1e-8, max_iter=10_000,
                            fit_intercept=False, finish=True)  # fmt: skip
    design = problem.loss.datafit.X
    assert isinstance(design, Tensor) and design.data_ptr() == X.ctypes.data  # no copy
    centred = LinearProblem(X, y, loss="squared", l1_ratio=1.0, tol=1e-8, max_iter=10_000)
    assert centred.loss.datafit.X.data_ptr() != X.ctypes.data  # centring takes a copy
    model = sh.Lasso(alpha=1.0, fit_intercept=False, tol=1e-10).fit(X, y)
    np.testing.assert_array_equal(X, before)
    theirs = sk.Lasso(alpha=1.0, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(model.coef_, theirs.coef_, atol=1e-6 * np.abs(theirs.coef_).max())


@pytest.mark.parametrize("support", [[], [3], [0, 5, 17], list(range(0, 40, 2)), list(range(40))])
def test_gram_statistics_give_the_weighted_squared_error(support: list[int]) -> None:
    """From the summary of ``(X, y, s)``, the error of a coefficient vector with an empty, a
    small, a half and a full support, against the sum over the rows."""
    rng = np.random.default_rng(0)
    X, y, s = rng.standard_normal((70, 40)), rng.standard_normal(70), rng.uniform(0.2, 3.0, 70)
    stats = GramStats.of(X, y, s, torch.device("cpu"))
    coef = _sparse_w(40, support)
    expected = float(np.sum(s * (y - X @ coef.numpy() - 0.7) ** 2))
    assert stats.squared_error(coef, 0.7) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("p", [5, 256, 257, 300, 513])
def test_the_symmetric_product_is_the_full_one_and_exactly_symmetric(p: int) -> None:
    """Widths at, below and past the blocks' edges; weighted rows as the statistics use."""
    X = _design(n=70, p=p, seed=p)
    s = torch.rand(70, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    G = symmetric_product(X * s, X)
    torch.testing.assert_close(G, (X * s).T @ X, rtol=1e-13, atol=1e-13)
    assert torch.equal(G, G.T)
    stats = GramStats.of(X.numpy(), np.ones(70), s.numpy().ravel(), torch.device("cpu"))
    assert torch.equal(stats.XtX, G)


def test_the_symmetric_product_runs_on_the_threads_its_work_is_worth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside a fit sized for one pass over ``X`` (one thread), the Gram matrix, ``p / 2``
    times that work, is formed on both threads the user allows; the fit's one thread is
    restored after it."""
    seen: list[int] = []

    @contextmanager
    def spy(work: float) -> Iterator[int]:
        with threads_for(work) as count:
            seen.append(torch.get_num_threads())
            yield count

    monkeypatch.setattr(design, "threads_for", spy, raising=False)
    X = _design(n=4000, p=600, seed=1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads_for(4000 * 600):  # what fit_threads gives this X: one thread
            outer = torch.get_num_threads()
            symmetric_product(X, X)
            after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert (outer, seen, after) == (1, [2], 1)


@pytest.mark.parametrize("k", [None, 1, 2, THIN_COLUMNS, THIN_COLUMNS + 1])
def test_the_transposed_product_is_x_transposed_times_m(k: int | None) -> None:
    """Vectors, thin and wider blocks of columns, on a dense design and on a sparse one
    (centred and weighted) alike."""
    X = _design(n=60, p=9, seed=4)
    gen = torch.Generator().manual_seed(5)
    M = torch.randn(60, dtype=torch.float64, generator=gen)
    if k is not None:
        M = torch.randn(60, k, dtype=torch.float64, generator=gen)
    out = transposed_product(X, M)
    torch.testing.assert_close(out, X.T @ M, rtol=1e-13, atol=1e-13)
    assert out.is_contiguous()
    s, m = np.linspace(0.5, 2.0, 60), X.numpy().mean(axis=0)
    Z = torch.from_numpy(np.sqrt(s)[:, None] * (X.numpy() - m))
    design = SparseDesign(sparse.csr_matrix(X.numpy()), center=m, row_scale=np.sqrt(s))
    torch.testing.assert_close(transposed_product(design, M), Z.T @ M, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("picked", [[], [3], [0, 7, 2, 7], list(range(9))])
def test_taken_columns_and_principal_blocks_are_index_selects(picked: list[int]) -> None:
    """Any order, repeats and none; from a contiguous matrix and from a transposed view: the
    very values of ``index_select``, contiguous."""
    idx = torch.tensor(picked, dtype=torch.long)
    X = _design(n=5, p=9, seed=6)
    G = X.T @ X
    for M in (X, G, X.T.contiguous().T, torch.cat([G, G], dim=1)[:, ::2]):
        out = take_columns(M, idx)
        assert torch.equal(out, M.index_select(1, idx))
        assert out.is_contiguous() and out.shape == (M.shape[0], len(picked))
    assert torch.equal(principal(G, idx), G.index_select(0, idx).index_select(1, idx))
