"""The least-squares datafit's one-pass products and the solver's use of its affine gradient."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn import linear_model as sk
from sklearn.datasets import make_regression
from torch import Tensor

from shrinkage import linear as sh
from shrinkage.linear._datafits import Quadratic, residual_products
from shrinkage.linear._design import SparseDesign
from shrinkage.linear._duality import enet_duality_gap
from shrinkage.linear._problem import enet_penalty
from shrinkage.linear._solver import _fista


def _data(n: int, p: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, dtype=torch.float64, generator=gen)
    y = torch.randn(n, dtype=torch.float64, generator=gen)
    w = torch.randn(p, dtype=torch.float64, generator=gen)
    w[torch.rand(p, generator=gen) < 0.5] = 0.0
    return X, y, w


@pytest.mark.parametrize("block_bytes", [1, 8 * 37 * 5, 8 * 37 * 13, 1 << 30])
def test_residual_products_in_blocks_match_the_plain_products(block_bytes: int) -> None:
    X, y, w = _data(101, 37)  # 101 rows: the last block is ragged
    r, XtR = residual_products(X, y, w, block_bytes=block_bytes)
    expected_r = y - X @ w
    torch.testing.assert_close(r, expected_r, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(XtR, X.T @ expected_r, rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("layout", ["csr", "csc"])
@pytest.mark.parametrize("support", ["none", "few", "many"])
def test_residual_products_on_a_sparse_design_match_the_dense_ones(
    layout: str, support: str
) -> None:
    """Centred and row-scaled, ``w`` zero, on a few columns (read alone from CSC) or on
    many."""
    X, y, w = _data(60, 40, seed=1)
    X[torch.rand(60, 40, generator=torch.Generator().manual_seed(2)) < 0.8] = 0.0
    w = {"none": torch.zeros(40, dtype=torch.float64), "many": w}.get(support, w)
    if support == "few":
        w[5:] = 0.0
        w[:5] = 1.5
    center, scale = np.linspace(-0.3, 0.4, 40), np.linspace(0.5, 2.0, 60)
    design = SparseDesign(sparse.csr_matrix(X.numpy()).asformat(layout), center, scale)
    Z = torch.as_tensor(scale)[:, None] * (X - torch.as_tensor(center))
    r, XtR = residual_products(design, y, w)
    torch.testing.assert_close(r, y - Z @ w, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(XtR, Z.T @ (y - Z @ w), rtol=1e-12, atol=1e-11)


class _Opaque:
    """The same least-squares datafit, hiding that its gradient is affine."""

    def __init__(self, inner: Quadratic) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "affine_grad":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_fista_with_an_affine_gradient_takes_the_same_steps() -> None:
    """``grad(z)`` combined from the gradients at the last two iterates is the gradient at
    ``z``: with the criterion never met, both variants make the same iterates."""
    X, y, _ = _data(60, 150, seed=1)
    lam = 0.2 * float((X.T @ y).abs().max()) / 60
    penalty = enet_penalty(lam, 0.5, None)
    free = torch.zeros(150, dtype=torch.bool)
    w0 = torch.zeros(150, dtype=torch.float64)
    never = lambda w: 1.0  # noqa: E731
    for n_iter in (1, 2, 7, 40):
        fast, it_fast, _ = _fista(Quadratic(X, y), penalty, w0, free, 0.0, n_iter, never)
        plain, it_plain, _ = _fista(
            _Opaque(Quadratic(X, y)),  # type: ignore[arg-type]
            penalty,
            w0,
            free,
            0.0,
            n_iter,
            never,
        )
        assert it_fast == it_plain == n_iter
        torch.testing.assert_close(fast, plain, rtol=1e-9, atol=1e-12)
        assert int((fast != 0).sum()) > 0


def test_fista_stops_at_the_first_iteration_that_meets_tol() -> None:
    X, y, _ = _data(60, 150, seed=2)
    datafit = Quadratic(X, y)
    lam = 0.1 * float((X.T @ y).abs().max()) / 60
    penalty = enet_penalty(lam, 0.7, None)
    free = torch.zeros(150, dtype=torch.bool)
    gaps: list[float] = []

    def gap(w: Tensor) -> float:
        gaps.append(enet_duality_gap(datafit, w, 0.7 * lam, 0.3 * lam))
        return gaps[-1]

    tol = 1e-6 * float(y @ y) / 60
    _, iters, crit = _fista(
        datafit, penalty, torch.zeros(150, dtype=torch.float64), free, tol, 10_000, gap
    )
    assert crit <= tol
    assert len(gaps) >= iters + 1  # checked at the start and after every iteration
    assert all(g > tol for g in gaps[:-1])  # (and at Newton candidates, none accepted)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_wide_problem_read_in_blocks_matches_sklearn(l1_ratio: float) -> None:
    """200 x 2000 in float64 is 3.2 MB, so the residual products run in blocks of rows."""
    X, y = make_regression(
        n_samples=200, n_features=2000, n_informative=15, noise=2.0, random_state=3
    )
    alpha = 0.05 * float(np.abs((X - X.mean(0)).T @ (y - y.mean())).max()) / len(y)
    ours = sh.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-10, max_iter=100_000).fit(X, y)
    theirs = sk.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-10, max_iter=100_000).fit(X, y)
    scale = float(np.abs(theirs.coef_).max())
    assert float(np.abs(ours.coef_ - theirs.coef_).max()) <= 1e-4 * scale
    assert abs(ours.intercept_ - theirs.intercept_) <= 1e-4 * max(1.0, abs(theirs.intercept_))


@pytest.mark.parametrize("weighted", [False, True])
def test_the_multinomial_hessian_on_a_support_is_autograd_s(weighted: bool) -> None:
    """Oracle: the rows and columns ``idx`` of autograd's Hessian of the weighted mean
    cross-entropy, with classes interleaved and missing from the support; exactly
    symmetric."""
    from shrinkage.linear._datafits import Multinomial

    gen = torch.Generator().manual_seed(4)
    X = torch.randn(120, 6, dtype=torch.float64, generator=gen)
    y = torch.randint(0, 4, (120,), generator=gen)
    weights = torch.rand(120, dtype=torch.float64, generator=gen) if weighted else None
    datafit = Multinomial(X, y, 4, weights)
    w = 0.3 * torch.randn(24, dtype=torch.float64, generator=gen)
    idx = torch.tensor([0, 3, 5, 6, 9, 13, 14, 20, 23])  # no coordinate of class 2 but one
    H = datafit.hessian(idx, w)
    full = torch.autograd.functional.hessian(lambda v: datafit.value(v), w)
    torch.testing.assert_close(H, full[idx][:, idx], rtol=1e-10, atol=1e-12)
    assert torch.equal(H, H.T)


def test_newton_waits_while_a_support_whose_hessian_is_dear_still_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A multinomial Hessian on a support of ``m`` coordinates costs ``n m^2`` products over
    the samples, far more than its Cholesky: counted in, Newton's method is not tried on each
    passing support (282 Hessians of up to 372 coordinates before, about 20 now), and the
    fit still converges."""
    from sklearn.datasets import make_classification

    from shrinkage.linear._datafits import Multinomial

    X, y = make_classification(
        n_samples=2500, n_features=200, n_informative=20, n_classes=5, random_state=0
    )
    sizes: list[int] = []
    hessian = Multinomial.hessian

    def counted(self: Multinomial, idx: Tensor, w: Tensor) -> Tensor:
        sizes.append(idx.numel())
        return hessian(self, idx, w)

    monkeypatch.setattr(Multinomial, "hessian", counted)
    ours = sh.LogisticRegression(l1_ratio=1.0, C=0.05, solver="saga", max_iter=1000).fit(X, y)
    assert len(sizes) <= 60
    assert int(ours.n_iter_[0]) < 1000  # it met its tolerance


def test_after_a_step_along_the_null_space_the_hessian_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A step along a multinomial feature's common shift over its classes leaves every
    prediction as it was: the next Newton step takes the kept Hessian's principal
    submatrix instead of forming it, and that equals a freshly formed one to rounding."""
    from sklearn.datasets import make_classification

    from shrinkage.linear import _newton

    X, y = make_classification(
        n_samples=400, n_features=30, n_informative=10, n_classes=5, random_state=0
    )
    errors: list[float] = []
    direction = _newton._newton_direction

    def checked(
        datafit: Any, penalty: Any, current: Tensor, idx: Tensor, loss_hessian: Any, final: bool
    ) -> Any:
        if loss_hessian is not None:
            fresh = datafit.hessian(idx, current)
            errors.append(float((loss_hessian - fresh).abs().max() / fresh.abs().max()))
        return direction(datafit, penalty, current, idx, loss_hessian, final)

    monkeypatch.setattr(_newton, "_newton_direction", checked)
    ours = sh.LogisticRegression(l1_ratio=1.0, C=1.0, solver="saga", max_iter=1000).fit(X, y)
    assert int(ours.n_iter_[0]) < 1000
    assert len(errors) >= 10
    assert max(errors) <= 1e-9


def test_principal_takes_a_subset_and_refuses_the_rest() -> None:
    from shrinkage.linear._newton import _principal

    H = torch.arange(16, dtype=torch.float64).reshape(4, 4)
    kept = torch.tensor([2, 5, 7, 9])
    torch.testing.assert_close(_principal((kept, H), torch.tensor([5, 9])), H[[1, 3]][:, [1, 3]])
    assert _principal((kept, H), torch.tensor([5, 6])) is None
    assert _principal((kept, H), torch.tensor([10])) is None
    assert _principal(None, torch.tensor([5])) is None


def test_newton_follows_a_flat_direction_to_the_kink_it_reaches() -> None:
    """``0.5 (1 - w1 - w2)^2 + lam (|w1| + |w2|)`` from ``(0.8, -0.2)``: the Hessian is
    singular along ``(1, -1)``, where the loss is flat and the L1 term falls until ``w2``
    reaches zero. Newton's method used to stop at ``w1 + w2 = 1`` with ``w2 < 0``; it now
    takes that direction to the kink, then solves the rest: ``(1 - lam, 0)`` exactly."""
    from shrinkage import L1
    from shrinkage.linear._newton import polish

    lam = 0.1
    datafit = Quadratic(torch.ones(1, 2, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    w = torch.tensor([0.8, -0.2], dtype=torch.float64)
    polished = polish(datafit, L1(lam), w, torch.zeros(2, dtype=torch.bool), final=True)
    assert polished is not None and float(polished[1]) == 0.0
    torch.testing.assert_close(polished, torch.tensor([1 - lam, 0.0], dtype=torch.float64))


def test_an_l1_multinomial_fit_leaves_no_flat_direction_unfollowed() -> None:
    """On 5000 x 200 with 5 classes, supports hold every class of some features; Newton's
    method stalled there (700 iterations, 43 s; scikit-learn's saga 354 epochs). Following
    the flat directions it meets its tolerance in about 220."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=5000, n_features=200, n_informative=20, n_classes=5, random_state=0
    )
    ours = sh.LogisticRegression(l1_ratio=1.0, C=0.05, solver="saga", max_iter=1000).fit(X, y)
    assert int(ours.n_iter_[0]) <= 400  # below max_iter: the duality gap met tol


class _Flat:
    """A data term whose value at every point is 1 plus rounding noise, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def value(self, w: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.tensor(1.0 + 1e-17 * self.calls, dtype=torch.float64)


class _Zero:
    def value(self, w: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), dtype=torch.float64)


def test_a_line_search_the_objective_cannot_resolve_gives_up() -> None:
    """Halving a step whose objective stays within round-off of the start cannot find a
    decrease: the search stops after two such steps in a row, not after 40 halvings."""
    from shrinkage.linear._newton import _Search

    datafit, w = _Flat(), torch.ones(3, dtype=torch.float64)
    idx, d = torch.arange(3), -torch.ones(3, dtype=torch.float64)
    limit = (torch.zeros(3, dtype=torch.bool), 1.0, False)
    search = _Search(datafit, _Zero(), w, idx, d, torch.sign(w), limit, False, flat=1e-13)
    accepted, _, _, _ = search.run(best=1.0)
    assert not accepted
    assert datafit.calls == 2


def test_restrictions_kept_as_columns_take_the_designs_lipschitz_bound_once_it_pays() -> None:
    """A restriction to more columns than rows computes its own constant until the
    restrictions have read as many columns as the design has; then, and whenever the
    design's constant is known, it takes that one, which bounds its own (a column subset's
    largest singular value is at most the design's)."""
    X, y, _ = _data(40, 400, seed=5)
    datafit = Quadratic(X, y, use_gram=False, gram_rows=False)
    gen = torch.Generator().manual_seed(6)
    bounds, own = [], []
    for _ in range(8):  # 8 restrictions of 60 columns: the seventh passes 400
        idx = torch.randperm(400, generator=gen)[:60].sort().values
        bounds.append(datafit.restrict(idx)._lipschitz)
        own.append(float(torch.linalg.matrix_norm(X[:, idx], 2)) ** 2 / 40)
    assert bounds[:6] == [None] * 6
    assert bounds[6] == bounds[7] == datafit.lipschitz
    assert min(bounds[6], bounds[7]) >= max(own[6], own[7])
    design = float(torch.linalg.matrix_norm(X, 2)) ** 2 / 40
    assert datafit.lipschitz == pytest.approx(design, rel=0.05)
    fresh = Quadratic(X, y, use_gram=False, gram_rows=False)
    known = fresh.lipschitz  # known: the first restriction takes it
    assert fresh.restrict(torch.arange(60))._lipschitz == known


@pytest.mark.parametrize("target", range(3))
def test_a_single_fit_finds_its_whole_support_before_the_last_polish(target: int) -> None:
    """scikit-learn's sparse multi-target data (100 x 100, half the entries zero, 10
    informative): at ``tol=1e-4`` the gap can be met with a few features of the support still
    out; the final polish's proximal-gradient check brings them in, and each fit lands on the
    converged solution, support and all."""
    rs = np.random.RandomState(42)
    w = rs.randn(100, 3)
    w[10:] = 0.0
    X = rs.randn(100, 100)
    X[rs.uniform(size=(100, 100)) > 0.5] = 0.0
    y = (X @ w)[:, target]
    ours = sh.ElasticNet(alpha=0.01, precompute=False).fit(sparse.csc_matrix(X), y)
    exact = sk.ElasticNet(alpha=0.01, tol=1e-14, max_iter=100_000).fit(X, y)
    np.testing.assert_array_equal(ours.coef_ != 0, exact.coef_ != 0)
    np.testing.assert_allclose(ours.coef_, exact.coef_, rtol=1e-8, atol=1e-10)
