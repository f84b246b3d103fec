"""Experiments: each penalty's result depends on its own path only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from shrinkage import neuron_groups
from shrinkage.experiments import Settings, run_experiment
from shrinkage.experiments.store import Store
from shrinkage.neural import SmallResNet

SMALL = {"data": "wine", "hidden": (32,), "epochs": 8, "path_epochs": 3, "n_lambdas": 4}


def test_a_penalty_row_does_not_depend_on_the_penalties_before_it(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        both = run_experiment(Settings(penalties=("none", "l1", "l2"), **SMALL), store)
        alone = run_experiment(Settings(penalties=("none", "l2"), **SMALL), store)
        rows = {r.penalty: r for r in store.results(both)}
        l2 = next(r for r in store.results(alone) if r.penalty == "l2")
    assert replace(rows["l2"], seconds=0.0) == replace(l2, seconds=0.0)


def test_linear_cross_validated_run(tmp_path: Path) -> None:
    settings = Settings(
        data="diabetes", model="linear", penalties=("none", "l1"), cv=3, n_lambdas=10
    )
    with Store(tmp_path / "s.db") as store:
        run = run_experiment(settings, store)
        rows = store.results(run)
        assert store.run(run).status == "done"
        # a refit on all training folds is stored up to the chosen point (fold -1)
        refit = store.points(run, "l1", -1)
    l1 = rows[1]
    assert len(refit) == l1.index + 1 and refit[-1].lam == l1.lam
    assert l1.selected <= 10 and 0.2 < l1.test < 0.7  # diabetes: R^2 about 0.33-0.5


def test_cnn_run_compacts_and_refits_its_group_neurons_point(tmp_path: Path) -> None:
    settings = Settings(
        data="digits", model="cnn", penalties=("none", "group_neurons"), hidden=(6, 12),
        epochs=6, path_epochs=2, n_lambdas=5, rule="1se",
    )  # fmt: skip
    assert Settings(data="digits", model="cnn").widths == (16, 32)
    with Store(tmp_path / "s.db") as store:
        run = run_experiment(settings, store)
        dense, grouped = store.results(run)
        points = store.points(run, "group_neurons", 0)
    stem = 1 * 6 * 9 + 2 * 6  # 3x3 convolution and BatchNorm
    block1 = 2 * (6 * 6 * 9 + 2 * 6)
    block2 = 6 * 12 * 9 + 12 * 12 * 9 + 2 * 2 * 12 + (6 * 12 + 2 * 12)  # 1x1 shortcut
    assert dense.parameters == stem + block1 + block2 + 12 * 10 + 10
    assert dense.macs > 0 and grouped.parameters <= dense.parameters
    assert grouped.macs <= dense.macs and 0.5 < grouped.test <= 1.0
    assert [p.lam for p in points] == sorted(p.lam for p in points)  # dense to sparse
    model = SmallResNet(64, (6, 12), 10)
    groups = neuron_groups(model, 1.0, example_input=model.example_input())
    for point in points:  # the relaxed refit holds every zero unit at exactly zero
        zeros = []
        for weights in (point.state.weights, point.state.relaxed):
            model.load_state_dict(weights)
            zeros.append(torch.cat([g.norms() == 0 for g in groups]))
        assert torch.equal(zeros[0], zeros[1])
    assert bool(zeros[0].any())  # the strongest point has zero units
    assert "MACs" in grouped.columns() and "parameters" in grouped.columns()


def test_cnn_settings_errors() -> None:
    import pytest

    from shrinkage import ArgumentError

    with pytest.raises(ArgumentError, match="group_inputs acts on an MLP's input columns"):
        Settings(data="digits", model="cnn", penalties=("group_inputs",))
    with Store(":memory:") as store, pytest.raises(ArgumentError, match="cnn needs square"):
        run_experiment(Settings(data="wine", model="cnn", penalties=("none",)), store)
