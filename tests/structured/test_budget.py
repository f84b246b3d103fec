"""Structured sparsity to a budget: the strength rises until the compacted model costs the
requested fraction of its MACs or parameters, every removed unit exactly zero; and widths
rounded to a multiple, dead units filling them up."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from sklearn.datasets import load_digits
from torch import Tensor, nn

import shrinkage
from shrinkage import ArgumentError, compact, count_macs
from shrinkage.structured import Budget, macs, measured_latency, neuron_groups


def digits() -> tuple[Tensor, Tensor]:
    X, y = load_digits(return_X_y=True)
    return torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(y)


def mlp() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
    )


def train_to(
    target: float, cost: str | Callable[[nn.Module], float] = "macs", round_to: int = 1
) -> tuple[nn.Module, Budget]:
    X, y = digits()
    torch.manual_seed(0)
    model = mlp()
    groups = neuron_groups(model, 1e-4)
    reg = shrinkage.Regularizer(model, None, groups=groups)
    opt = shrinkage.Proximal(torch.optim.Adam(model.parameters(), lr=1e-3), reg)
    budget = Budget(
        model, groups, X[:2], target=target, cost=cost, round_to=round_to, optimizer=opt
    )
    batches = [i for _ in range(200) for i in torch.randperm(len(X)).split(64)]
    for step, idx in enumerate(batches):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
        opt.step()
        if step % 10 == 9 and budget.check():
            break
    return model.eval(), budget


@pytest.mark.parametrize(("target", "cost"), [(0.5, "macs"), (1 / 3, "parameters")])
def test_the_compacted_model_costs_the_target_and_computes_the_same(
    target: float, cost: str
) -> None:
    model, budget = train_to(target, cost)
    report = budget.report
    assert report.done
    assert 0.95 * report.target <= report.reached <= report.target
    X, _ = digits()
    small, _ = compact(model, X[:2])
    reached = (
        count_macs(small, X[:1]) if cost == "macs" else sum(p.numel() for p in small.parameters())
    )
    assert reached == report.reached
    with torch.no_grad():
        assert (small(X).argmax(1) == model(X).argmax(1)).all()
        torch.testing.assert_close(small(X), model(X), atol=1e-5, rtol=0)


def test_rounded_widths_count_in_the_cost() -> None:
    model, budget = train_to(0.5, round_to=8)
    assert budget.report.done
    X, _ = digits()
    small, report = compact(model, X[:2], round_to=8)
    widths = [after for after, _ in report.kept.values()]
    assert all(w % 8 == 0 for w in widths), widths
    assert count_macs(small, X[:1]) == budget.report.reached


def test_a_step_too_far_is_taken_back() -> None:
    """A start strong enough to remove most units in ten steps: the check puts back the
    weights of the check before and zeroes its weakest units, as few as meet the target."""
    X, y = digits()
    torch.manual_seed(0)
    model = mlp()
    groups = neuron_groups(model, 0.5)
    opt = shrinkage.Proximal(
        torch.optim.SGD(model.parameters(), lr=0.1),
        shrinkage.Regularizer(model, None, groups=groups),
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    relative = [(g.norms().double() / g.weights()).tolist() for g in groups]
    budget = Budget(model, groups, X[:2], target=0.9, optimizer=opt)
    for _ in range(10):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X[:64]), y[:64]).backward()
        opt.step()
    assert budget.check()
    report = budget.report
    assert report.stepped_back and report.reached <= report.target
    zero = [(g.norms() == 0).tolist() for g in groups]
    expected = {k: v.clone() for k, v in before.items()}  # the first weights, those units zero
    for k, g in enumerate(groups):
        for m in g.members:
            rows = torch.nonzero(torch.tensor(zero[k])[m.unit.clamp(min=0)] & (m.unit >= 0))
            expected[m.name].index_fill_(m.dim, rows.reshape(-1), 0.0)
    assert all(model.state_dict()[k].equal(v) for k, v in expected.items())
    pairs = [
        (r, z) for rs, zs in zip(relative, zero, strict=True) for r, z in zip(rs, zs, strict=True)
    ]
    assert max(r for r, z in pairs if z) <= min(r for r, z in pairs if not z)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("target", 1.5),
        ("target", 0),
        ("cost", "latency"),
        ("cost", "flops"),
        ("round_to", 0),
        ("growth", 1.0),
        ("tolerance", 0),
    ],
)
def test_bad_arguments_are_named(argument: str, value: object) -> None:
    model = mlp()
    groups = neuron_groups(model, 1e-3)
    kwargs = {"target": 0.5, argument: value}
    with pytest.raises(ArgumentError, match=argument):
        Budget(model, groups, torch.zeros(2, 64), **kwargs)  # type: ignore[arg-type]


def test_round_to_keeps_dead_units_to_fill_a_multiple() -> None:
    torch.manual_seed(0)
    model = mlp().eval()
    with torch.no_grad():
        model[0].weight[:5] = 0.0
        model[0].bias[:5] = 0.0
    x = torch.randn(16, 64)
    for round_to, width in ((1, 59), (4, 60), (16, 64)):
        small, report = compact(model, x, round_to=round_to)
        assert report.kept["0"] == (width, 64)
        torch.testing.assert_close(small(x), model(x), atol=1e-6, rtol=0)
    assert report.groups[0].kept == {"kept for a width that is a multiple of 16": 5}
    with pytest.raises(ArgumentError, match="round_to"):
        compact(model, x, round_to=0)


def test_a_cost_function_drives_the_same_loop_as_the_named_cost() -> None:
    def parameters(small: nn.Module) -> float:
        return float(sum(p.numel() for p in small.parameters()))

    _, named = train_to(1 / 3, "parameters")
    _, given = train_to(1 / 3, parameters)
    assert given.report.cost == "parameters"
    assert given.report.reached == named.report.reached and given.report.lam == named.report.lam


def test_measured_latency_times_a_forward_pass() -> None:
    latency = measured_latency(torch.zeros(16, 64), repeats=5, warmup=1)
    seconds = latency(mlp().eval())
    assert latency.__name__ == "latency" and 0 < seconds < 10
    with pytest.raises(ArgumentError, match="repeats"):
        measured_latency(torch.zeros(2, 64), repeats=0)


def test_a_latency_budget_reports_seconds() -> None:
    X, _ = digits()
    model = mlp()
    budget = Budget(model, neuron_groups(model, 1e-3), X[:2], target=0.5, cost=measured_latency(X))
    report = budget.report
    assert report.cost == "latency" and report.target == pytest.approx(0.5 * report.dense)


def test_a_relative_latency_budget_reports_its_ratio() -> None:
    X, _ = digits()
    model = mlp()
    cost = measured_latency(X, repeats=3, warmup=1, baseline=model)
    budget = Budget(model, neuron_groups(model, 1e-3), X[:2], target=0.5, cost=cost)
    report = budget.report
    assert report.cost == "relative_latency" and report.target == pytest.approx(0.5 * report.dense)
    with pytest.raises(ArgumentError, match=r"baseline.*nn\.Module"):
        measured_latency(X, baseline="dense")  # type: ignore[arg-type]


def test_a_relative_latency_cancels_a_load_that_changes_between_rounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a clock where every call costs its work times the machine's load, and the load
    changes after each round, the ratio is the work's ratio; the seconds are not."""
    clock = {"now": 0.0, "load": 1.0}
    loads = iter([1.0, 7.0, 2.0, 30.0, 1.5, 4.0, 1.0, 9.0, 3.0] * 4)
    monkeypatch.setattr(macs.time, "perf_counter", lambda: clock["now"])

    def run() -> None:
        clock["now"] += 3.0 * clock["load"]

    def reference() -> None:
        clock["now"] += 1.0 * clock["load"]
        clock["load"] = next(loads)

    assert macs.median_ratio(run, reference, 7, warmup=1, cuda=False) == pytest.approx(3.0)
    seconds = macs.median_seconds(lambda: (run(), reference()), 7, warmup=1, cuda=False)
    assert seconds != pytest.approx(4.0)
