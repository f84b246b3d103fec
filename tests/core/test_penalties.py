"""One contract test over every penalty: value, prox and lambda_max against independent
closed forms written here in NumPy, and the prox against its own optimality condition."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shrinkage import L1, L2, ElasticNet, GroupLasso, Penalty


@pytest.fixture(autouse=True)
def float64() -> Iterator[None]:
    """The closed forms are checked to 1e-10: compute in double precision."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- independent reference formulas (NumPy, written from the textbook definitions) ----------
def group_ids(shape: tuple[int, ...], groups: str | np.ndarray) -> np.ndarray:
    if isinstance(groups, np.ndarray):
        return groups
    grid = np.indices(shape)
    return grid[0] if groups == "outputs" else grid[1]


def reference_value(penalty: Penalty, w: np.ndarray) -> float:
    cfg = penalty.get_config()
    lam = cfg["lam"]
    f = np.ones_like(w) if cfg["factor"] is None else cfg["factor"].numpy()
    if isinstance(penalty, L1):
        return lam * float(np.sum(f * np.abs(w)))
    if isinstance(penalty, L2):
        return lam * float(np.sum(f * w**2))
    if isinstance(penalty, ElasticNet):
        r = cfg["l1_ratio"]
        return lam * (r * float(np.sum(f * np.abs(w))) + (1 - r) * float(np.sum(f * w**2)))
    assert isinstance(penalty, GroupLasso)
    ids = group_ids(w.shape, _np_groups(penalty))
    total = 0.0
    for g in np.unique(ids):
        members = w[ids == g]
        fg = 1.0 if cfg["factor"] is None else float(cfg["factor"].numpy().reshape(-1)[g])
        total += fg * math.sqrt(members.size) * float(np.linalg.norm(members))
    return lam * total


def reference_prox(penalty: Penalty, v: np.ndarray, step: float) -> np.ndarray:
    cfg = penalty.get_config()
    lam = cfg["lam"]
    if isinstance(penalty, L1 | L2 | ElasticNet):
        f = (
            np.ones_like(v)
            if cfg["factor"] is None
            else np.broadcast_to(cfg["factor"].numpy(), v.shape)
        )
        r = 1.0 if isinstance(penalty, L1) else 0.0 if isinstance(penalty, L2) else cfg["l1_ratio"]
        soft = np.sign(v) * np.maximum(np.abs(v) - step * lam * r * f, 0.0)
        return soft / (1.0 + 2.0 * step * lam * (1.0 - r) * f)
    assert isinstance(penalty, GroupLasso)
    ids = group_ids(v.shape, _np_groups(penalty))
    out = np.zeros_like(v)
    for g in np.unique(ids):
        mask = ids == g
        fg = 1.0 if cfg["factor"] is None else float(cfg["factor"].numpy().reshape(-1)[g])
        t = step * lam * fg * math.sqrt(mask.sum())
        norm = float(np.linalg.norm(v[mask]))
        out[mask] = v[mask] * max(1.0 - t / norm, 0.0) if norm > 0 else 0.0
    return out


def _np_groups(penalty: GroupLasso) -> str | np.ndarray:
    g = penalty.groups
    return g if isinstance(g, str) else g.numpy()


# -- strategies ------------------------------------------------------------------------------
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
lams = st.one_of(st.just(0.0), st.floats(1e-3, 3.0))
steps = st.floats(1e-3, 2.0)


@st.composite
def penalty_and_tensor(draw: st.DrawFn) -> tuple[Penalty, torch.Tensor]:
    kind = draw(st.sampled_from(["l1", "l2", "enet", "group"]))
    shape = draw(shapes)
    lam = draw(lams)
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=gen) * draw(st.floats(0.1, 3.0))
    if draw(st.booleans()):  # exact zeros in the input exercise the subdifferential branches
        w = torch.where(torch.rand(shape, generator=gen) < 0.3, 0.0, w)
    if kind == "group":
        layouts = ["outputs", "index"] + (["inputs"] if len(shape) >= 2 else [])
        layout = draw(st.sampled_from(layouts))
        if layout == "index":
            n_groups = draw(st.integers(1, 4))
            groups: str | torch.Tensor = torch.randint(0, n_groups, shape, generator=gen)
            count = int(groups.max()) + 1
        else:
            groups = layout
            count = shape[0] if layout == "outputs" else shape[1]
        factor = torch.rand(count, generator=gen) * 2 if draw(st.booleans()) else None
        return GroupLasso(lam, groups=groups, factor=factor), w
    factor = torch.rand(shape, generator=gen) * 2 if draw(st.booleans()) else None
    if kind == "l1":
        return L1(lam, factor=factor), w
    if kind == "l2":
        return L2(lam, factor=factor), w
    return ElasticNet(lam, l1_ratio=draw(st.floats(0.0, 1.0)), factor=factor), w


# -- the contract ----------------------------------------------------------------------------
@SETTINGS
@given(penalty_and_tensor())
def test_value_matches_formula(case: tuple[Penalty, torch.Tensor]) -> None:
    penalty, w = case
    assert penalty.value(w).item() == pytest.approx(
        reference_value(penalty, w.numpy()), rel=1e-10, abs=1e-12
    )


@SETTINGS
@given(penalty_and_tensor(), steps)
def test_prox_matches_closed_form_and_solves_its_problem(
    case: tuple[Penalty, torch.Tensor], step: float
) -> None:
    penalty, v = case
    x = penalty.prox_(v.clone(), step)
    np.testing.assert_allclose(
        x.numpy(), reference_prox(penalty, v.numpy(), step), rtol=1e-10, atol=1e-12
    )
    # x minimises 1/2 ||x - v||^2 / step + P(x): -grad of the smooth part lies in dP(x).
    residual = penalty.optimality(x, (x - v) / step).item()
    assert residual <= 1e-9 * (1.0 + float(v.abs().max()) / step)


@SETTINGS
@given(penalty_and_tensor(), st.integers(0, 2**16))
def test_prox_with_elementwise_steps_solves_its_problem(
    case: tuple[Penalty, torch.Tensor], seed: int
) -> None:
    """Element-wise steps (a diagonal metric, as in proximal Adam): still exactly optimal."""
    penalty, v = case
    step = 0.05 + torch.rand(v.shape, generator=torch.Generator().manual_seed(seed))
    x = penalty.prox_(v.clone(), step)
    residual = penalty.optimality(x, (x - v) / step).item()
    assert residual <= 1e-8 * (1.0 + float((v / step).abs().max()))


@pytest.mark.parametrize("groups", ["outputs", "inputs", "ids"])
def test_group_prox_in_blocks_is_the_prox_at_once(
    groups: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Element-wise steps on groups along dim 0 are solved a block of whole groups at a time
    (``_group_layout.BLOCK`` entries): the same answer, bit for bit, as all groups at once,
    each group with its own weight, some groups zero and some not, the last block short.
    Other layouts are solved at once whatever ``BLOCK``."""
    from shrinkage import _group_layout

    gen = torch.Generator().manual_seed(0)
    v = torch.randn(37, 5, 3, generator=gen) * torch.linspace(0.01, 2.0, 37).view(-1, 1, 1)
    step = 0.05 + torch.rand(v.shape, generator=gen)
    ids = torch.randint(0, 6, v.shape, generator=gen) if groups == "ids" else None
    layout = groups if ids is None else ids
    factor = torch.linspace(0.5, 2.0, {"outputs": 37, "inputs": 5, "ids": 6}[groups])
    penalty = GroupLasso(lam=0.3, groups=layout, factor=factor)
    at_once = penalty.prox_(v.clone(), step)
    monkeypatch.setattr(_group_layout, "BLOCK", 40)  # 2 groups of 15 entries a block
    blocked = penalty.prox_(v.clone(), step)
    assert torch.equal(blocked, at_once)
    if groups == "outputs":
        norms = _group_layout.GroupLayout(v.shape, layout, v.device).norms(blocked)
        assert 0 < int((norms == 0).sum()) < norms.numel()
    assert penalty.optimality(blocked, (blocked - v) / step).item() <= 1e-9


@pytest.mark.parametrize("step_shape", [(), (1,), (1, 1)])
@pytest.mark.parametrize("ids", [[[0]], [[2]]])
def test_group_prox_with_a_one_element_step_tensor(
    step_shape: tuple[int, ...], ids: list[list[int]]
) -> None:
    """A step tensor of one element, whatever its shape (an element-wise step on a 1 x 1
    parameter), is the scalar step, also when group ids leave groups empty."""
    penalty = GroupLasso(lam=1.0, groups=torch.tensor(ids))
    v = torch.tensor([[1.541]], dtype=torch.float64)
    step = torch.full(step_shape, 0.3, dtype=torch.float64)
    x = penalty.prox_(v.clone(), step)
    assert x.shape == v.shape
    torch.testing.assert_close(x, torch.tensor([[1.541 - 0.3]], dtype=torch.float64))
    torch.testing.assert_close(x, penalty.prox_(v.clone(), 0.3))


@SETTINGS
@given(penalty_and_tensor(), steps)
def test_prox_is_nonexpansive(case: tuple[Penalty, torch.Tensor], step: float) -> None:
    penalty, u = case
    v = u + 0.5 * torch.randn(u.shape, generator=torch.Generator().manual_seed(1))
    pu, pv = penalty.prox_(u.clone(), step), penalty.prox_(v.clone(), step)
    assert (
        float(torch.linalg.vector_norm(pu - pv)) <= float(torch.linalg.vector_norm(u - v)) + 1e-12
    )


@SETTINGS
@given(penalty_and_tensor())
def test_lambda_max_is_where_zero_becomes_optimal(case: tuple[Penalty, torch.Tensor]) -> None:
    penalty, grad = case
    lam_max = penalty.lambda_max(grad)
    zero = torch.zeros_like(grad)
    if math.isinf(lam_max):
        assert penalty.with_lam(1e6).optimality(zero, grad).item() > 0
        return
    assert penalty.with_lam(lam_max).optimality(zero, grad).item() <= 1e-10 * (
        1 + float(grad.abs().max())
    )
    if lam_max > 0:
        assert penalty.with_lam(0.99 * lam_max).optimality(zero, grad).item() > 0


@SETTINGS
@given(penalty_and_tensor())
def test_optimality_is_zero_at_a_stationary_point_and_positive_elsewhere(
    case: tuple[Penalty, torch.Tensor],
) -> None:
    """For a smooth part f(w) = 1/2 ||w - c||^2 the minimiser is prox(c, 1); the condition
    holds there with grad = w - c and fails at a point moved away from it."""
    penalty, c = case
    w = penalty.prox_(c.clone(), 1.0)
    assert penalty.optimality(w, w - c).item() <= 1e-9 * (1 + float(c.abs().max()))
    moved = w + 0.5
    assert penalty.optimality(moved, moved - c).item() > 1e-6


@SETTINGS
@given(penalty_and_tensor())
def test_value_gradient_matches_subgradient(case: tuple[Penalty, torch.Tensor]) -> None:
    """Autograd of value() is a subgradient: optimality(w, -grad_value) == 0."""
    penalty, w = case
    w = w.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(penalty.value(w), w, allow_unused=True, materialize_grads=True)
    assert torch.isfinite(grad).all()
    assert penalty.optimality(w.detach(), -grad).item() <= 1e-9 * (1 + float(grad.abs().max()))


@pytest.mark.parametrize(
    "penalty",
    [
        L1(0.2),
        L2(0.2),
        ElasticNet(0.2, 0.3),
        L1(0.2, factor=torch.rand(4, 3)),
        ElasticNet(0.1, 0.6, factor=torch.rand(3)),
    ],
    ids=repr,
)
@pytest.mark.parametrize("elementwise", [False, True])
def test_foreach_and_per_tensor_tiers_agree_bit_for_bit(
    penalty: Penalty, elementwise: bool
) -> None:
    gen = torch.Generator().manual_seed(0)
    ws = [torch.randn(4, 3, generator=gen) for _ in range(3)]
    step: float | list[torch.Tensor] = 0.3
    if elementwise:
        step = [0.1 + torch.rand(4, 3, generator=gen) for _ in ws]
    a, b = [w.clone() for w in ws], [w.clone() for w in ws]
    penalty.prox_list_(a, step, foreach=True)
    penalty.prox_list_(b, step, foreach=False)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    single = [
        penalty.prox_(w.clone(), s)
        for w, s in zip(ws, step if elementwise else [0.3] * 3, strict=True)
    ]
    for x, y in zip(a, single, strict=True):
        assert torch.equal(x, y)


def test_zero_lam_prox_leaves_tensor_untouched_bit_for_bit() -> None:
    w = torch.tensor([-0.0, 0.0, 1e-300, -2.5, float("nan")])
    for penalty in (L1(0.0), L2(0.0), ElasticNet(0.0, 0.5), GroupLasso(0.0)):
        x = penalty.prox_(w.clone(), 0.7)
        assert torch.equal(x.view(torch.int64), w.view(torch.int64))


def test_group_lasso_zeros_whole_groups() -> None:
    w = torch.tensor([[3.0, 4.0], [0.1, 0.1], [-1.0, 0.0]])
    GroupLasso(1.0, "outputs").prox_(w, 0.5)  # threshold 0.5 * sqrt(2) per row
    assert torch.equal(w[1], torch.zeros(2))
    assert (w[0] != 0).all() and w[2, 0] != 0
    cols = torch.tensor([[3.0, 0.1], [4.0, -0.1]])
    GroupLasso(1.0, "inputs").prox_(cols, 0.5)
    assert torch.equal(cols[:, 1], torch.zeros(2)) and (cols[:, 0] != 0).all()


def test_group_lasso_on_conv_kernel_groups_filters() -> None:
    w = torch.randn(6, 3, 2, 2)
    w[2] *= 1e-3
    GroupLasso(0.1, "outputs").prox_(w, 1.0)
    assert torch.equal(w[2], torch.zeros(3, 2, 2))
    assert int((w.flatten(1).abs().sum(1) == 0).sum()) == 1


def test_a_group_lasso_used_on_other_shapes_and_groups_answers_as_a_new_one() -> None:
    """The layout a penalty keeps between calls is the one of the tensor in hand: other
    shapes, dtypes and a reassigned ``groups`` give what a new penalty gives."""
    rng = torch.Generator().manual_seed(0)
    ids = torch.tensor([[0, 0, 1], [1, 2, 2]])
    penalty = GroupLasso(0.3, groups=ids)
    for dtype in (torch.float64, torch.float32):
        for shape_ids in (ids, torch.tensor([[0, 1, 1], [1, 1, 0]]), ids):
            penalty.groups = shape_ids
            w = torch.randn(2, 3, generator=rng, dtype=dtype)
            fresh = GroupLasso(0.3, groups=shape_ids)
            assert torch.equal(penalty.value(w), fresh.value(w))
            assert torch.equal(penalty.prox_(w.clone(), 0.5), fresh.prox_(w.clone(), 0.5))
    rows = GroupLasso(0.3)
    for shape in ((4, 3), (2, 5), (4, 3)):
        w = torch.randn(*shape, generator=rng)
        assert torch.equal(rows.prox_(w.clone(), 0.5), GroupLasso(0.3).prox_(w.clone(), 0.5))


def test_with_lam_and_equality() -> None:
    assert L1(0.1).with_lam(0.5) == L1(0.5)
    assert ElasticNet(0.1, 0.3).with_lam(2.0) == ElasticNet(2.0, 0.3)
    assert L1(0.1) != L2(0.1)
    assert repr(L1(0.1)) == "L1(lam=0.1)"


@pytest.mark.parametrize("penalty", [L1(0.2), L2(0.2), ElasticNet(0.2, 0.3)], ids=repr)
def test_prox_of_a_parameter_with_grad_enabled(penalty: Penalty) -> None:
    """A leaf that requires grad is stepped in place (under no_grad, left requiring grad), the
    same as the plain tensor of its values; nothing is recorded."""
    w = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    p = torch.nn.Parameter(w.clone())
    with torch.enable_grad():
        penalty.prox_list_([p], 0.3)
        penalty.prox_list_([w], 0.3)
    assert torch.equal(p.detach(), w) and p.requires_grad and p.grad_fn is None


@pytest.mark.parametrize(("former", "now"), [("rows", "outputs"), ("columns", "inputs")])
def test_the_former_group_words_still_work_and_say_what_they_are_now(former: str, now: str) -> None:
    w = torch.arange(6.0).reshape(2, 3)
    with pytest.warns(FutureWarning, match=rf"groups='{former}'\) is now groups='{now}'"):
        old = GroupLasso(0.5, groups=former)
    assert old.groups == now
    new = GroupLasso(0.5, groups=now).prox_(w.clone(), 0.3)
    assert torch.equal(old.prox_(w.clone(), 0.3), new)
