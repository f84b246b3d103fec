"""Both sides of the bias-variance trade-off: a linear path goes on below its weakest lam
while the validation loss still falls there, and a report says when a choice sits at an end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shrinkage.experiments import Runner, Settings, Store, run_experiment
from shrinkage.experiments.report import edge_notes, load_run
from shrinkage.experiments.runner import EXTEND_BY, MAX_EXTENSIONS


def _csv(path: Path, noise: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((400, 6))
    y = X @ np.array([3.0, -2.0, 1.5, 1.0, -1.0, 0.5]) + noise * rng.standard_normal(400)
    rows = ["a,b,c,d,e,f,y"] + [
        ",".join(f"{v:.8f}" for v in [*x, t]) for x, t in zip(X, y, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_path_still_falling_at_its_weakest_lam_goes_on_down(tmp_path: Path) -> None:
    data = _csv(tmp_path / "clean.csv", noise=1e-3)  # every feature matters: less is better
    settings = Settings(data=str(data), target="y", model="linear", penalties=("l1",), n_lambdas=6)
    runner = Runner(settings)
    base = runner.grid("l1").copy()
    points = runner.paths("l1")[0]
    more = max(2, round(EXTEND_BY * 6))
    extensions, rest = divmod(len(points) - 6, more)
    assert 1 <= extensions <= MAX_EXTENSIONS and rest == 0
    if extensions < MAX_EXTENSIONS:  # it stopped because the minimum is now inside
        assert runner.choice("l1").best < len(points) - 1
    lams = np.array([p.lam for p in points])
    np.testing.assert_allclose(lams[:6], base)
    np.testing.assert_allclose(lams[1:] / lams[:-1], base[1] / base[0], rtol=1e-12)
    with Store(tmp_path / "runs.db") as store:
        view = load_run(store, run_experiment(settings, store, command="path"))
    notes = edge_notes(view)
    if view.choice("l1").best == len(points) - 1:
        (note,) = notes
        assert note.startswith("l1: the lowest validation loss") and "weakest lam tried" in note
    else:
        assert notes == []


def test_a_path_with_a_minimum_inside_its_grid_is_left_as_it_is(tmp_path: Path) -> None:
    data = _csv(tmp_path / "noisy.csv", noise=8.0)
    settings = Settings(data=str(data), target="y", model="linear", penalties=("l1",), n_lambdas=8)
    runner = Runner(settings)
    (points,) = runner.paths("l1")
    choice = runner.choice("l1")
    assert len(points) == 8 and 0 < choice.best < 7


@pytest.mark.parametrize("lams", [(1.0, 0.1, 0.01)])
def test_a_grid_the_user_gives_is_never_extended(tmp_path: Path, lams: tuple[float, ...]) -> None:
    data = _csv(tmp_path / "clean.csv", noise=1e-3)
    settings = Settings(data=str(data), target="y", model="linear", penalties=("l1",), lams=lams)
    runner = Runner(settings)
    assert [p.lam for p in runner.paths("l1")[0]] == list(lams)


def test_the_report_says_when_the_choice_sits_at_the_weakest_lam(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shrinkage.experiments import runner

    monkeypatch.setattr(runner, "MAX_EXTENSIONS", 0)
    data = _csv(tmp_path / "clean.csv", noise=1e-3)
    settings = Settings(data=str(data), target="y", model="linear", penalties=("l1",), n_lambdas=6)
    with Store(tmp_path / "runs.db") as store:
        view = load_run(store, run_experiment(settings, store, command="path"))
    assert view.choice("l1").best == 5
    (note,) = edge_notes(view)
    assert note.startswith("l1: the lowest validation loss (") and "weakest lam tried" in note
    assert "less penalty always validated better" in note  # a linear model: no dense network
