"""One choice of the strength: the estimator, ``path``'s rule, the experiment runner and the
report pick the same point from the same records, under both rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes

from shrinkage.experiments import Runner, Settings, Store
from shrinkage.experiments.report import load_run, validation_figure
from shrinkage.neural import MLPRegressor, build_mlp
from shrinkage.neural import estimators as neural_estimators
from shrinkage.path import NetworkState, PathPoint, choose_from_paths

LAMS = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032]
LOSSES = [1.0, 0.8, 0.7, 0.72, 0.75, 1.2]
SE = 0.1
EXPECTED = {"min": 2, "1se": 4}  # lowest loss 0.7; within 0.8: points 1 to 4, the strongest 4


def records() -> list[PathPoint]:
    """A path of an MLP 10-8-1 (diabetes' shape) with known validation losses."""
    weights = build_mlp(10, (8,), 1, generator=torch.Generator().manual_seed(0)).state_dict()
    return [
        PathPoint(
            lam=lam, coef=np.ones(10), intercept=None, train_loss=loss, val_loss=loss,
            val_score=1 - loss, n_nonzero=10, selected=tuple(range(10)), n_iter=1,
            converged=True, criterion=0.0, seconds=0.0,
            state=NetworkState({k: v.clone() for k, v in weights.items()}), val_loss_se=SE,
        )
        for lam, loss in zip(LAMS, LOSSES, strict=True)
    ]  # fmt: skip


@pytest.mark.parametrize("rule", ["min", "1se"])
def test_every_consumer_chooses_the_same_point(
    rule: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = records()
    expected = EXPECTED[rule]
    # path: the rule itself
    choice = choose_from_paths([points])
    assert choice.index(rule) == expected
    assert (choice.best, choice.one_se) == (EXPECTED["min"], EXPECTED["1se"])

    # the experiment runner, reading the records from its store
    settings = Settings(
        data="diabetes", penalties=("none", "l1"), hidden=(8,), lams=tuple(LAMS), rule=rule
    )
    with Store(tmp_path / "s.db") as store:
        run = store.create_run("compare", settings.to_dict(), {"feature_names": []})
        for i, point in enumerate(points):
            store.add_point(run, "l1", 0, i, point)
        row = Runner(settings, store, run).result("l1")
        assert (row.index, row.lam) == (expected, LAMS[expected])
        assert (row.lam_min, row.lam_1se) == (LAMS[EXPECTED["min"]], LAMS[EXPECTED["1se"]])
        store.add_result(run, 1, row)
        # the report, from the stored run: its choice and the lines its figure draws
        view = load_run(store, run)
    assert view.choice("l1").index(rule) == expected
    assert view.chosen["l1"].lam == LAMS[expected]
    lines = {
        line.get_label(): line.get_xdata()[0]
        for line in validation_figure(view).axes[0].get_lines()
        if line.get_label() in ("lam_min", "lam_1se")
    }
    assert lines == {"lam_min": LAMS[EXPECTED["min"]], "lam_1se": LAMS[EXPECTED["1se"]]}

    # the estimator: fit_path choosing among the same records (its paths stubbed with them)
    calls = iter([points[:1], points[1:]])
    monkeypatch.setattr(neural_estimators, "path", lambda *args, **kwargs: next(calls))
    X, y = load_diabetes(return_X_y=True)
    model = MLPRegressor((8,), penalty="group_inputs", selection_rule=rule, random_state=0)
    model.fit_path(X, y, lambdas=LAMS[1:])
    assert (model.best_index_, model.alpha_) == (expected, LAMS[expected])
    assert model.validation_loss_ == LOSSES[expected]
