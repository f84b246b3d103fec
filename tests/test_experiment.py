"""Experiments: each penalty's result depends on its own path only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from shrinkage.experiments import Settings, run_experiment
from shrinkage.experiments.store import Store

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
