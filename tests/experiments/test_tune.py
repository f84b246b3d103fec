"""``shrinkage tune``: Optuna studies shared by worker processes, on the default SQLite store
and on a real PostgreSQL server; trials neither lost nor duplicated; a worker killed in the
middle of a trial leaves the study usable; the best trial retrained as a stored run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from shrinkage.experiments import Settings
from shrinkage.experiments.store import Store
from shrinkage.experiments.trainer import PointTrainer

optuna = pytest.importorskip("optuna")
from shrinkage.experiments.tune import TuneConfig, best_settings, sqlite_url, tune  # noqa: E402

POSTGRES = os.environ.get("SHRINKAGE_TEST_POSTGRES")
needs_postgres = pytest.mark.skipif(
    POSTGRES is None and not os.environ.get("SHRINKAGE_REQUIRE_POSTGRES"),
    reason="no PostgreSQL server (.ci/run starts one and requires these tests)",
)
QUICK = [
    "--data", "digits", "--hidden", "64", "--epochs", "10", "--path-epochs", "12",
    "--seed", "3", "--quiet", "--json",
]  # fmt: skip
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "shrinkage.cli", "tune", *args]


def run(*args: str, cwd: Path, expect: int = 0) -> dict[str, Any]:
    out = subprocess.run(
        command(*args), cwd=cwd, capture_output=True, text=True, timeout=300, env=_env()
    )
    assert out.returncode == expect, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return json.loads(out.stdout) if expect in (0, 1) else {"stderr": out.stderr}


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(),
    )  # fmt: skip


def _env() -> dict[str, str]:
    # several processes share the machine's cores: one thread each, as --workers does
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def load(study: str, storage: str) -> Any:
    return optuna.load_study(study_name=study, storage=storage)


def check_no_trial_lost(study: Any, expected_finished: int) -> list[Any]:
    """Exactly ``expected_finished`` finished trials, numbered without gaps or repeats, each
    with one value (or, pruned, its intermediate values), none left running."""
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == expected_finished
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    for t in finished:
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.value is not None and 0.0 <= t.value <= 1.0
        else:
            assert t.intermediate_values
    return finished


def check_best(payload: dict[str, Any], study: Any, store_path: Path) -> None:
    """The reported best is the study's best (the first trial with the best value: accuracy
    ties), and the stored run reproduces its score."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    top = max(t.value for t in complete)
    best = min((t for t in complete if t.value == top), key=lambda t: t.number)
    assert payload["best"]["number"] == best.number
    assert payload["best"]["value"] == pytest.approx(study.best_value)
    with Store(store_path) as store:
        run = store.run(payload["run"])
        assert run.command == "tune" and run.meta["trial"] == best.number
        (point,) = store.points(payload["run"], run.config["penalties"][1], 0)
    assert point.lam == pytest.approx(best.params["lam"])
    assert point.val_score == pytest.approx(best.value, abs=1e-6)


def stop_in_a_trial(study: Any, pids: set[int], deadline: float) -> tuple[int, int]:
    """SIGSTOP one of ``pids`` while the study shows it running a trial (so it is frozen
    mid-trial), then SIGKILL it; returns ``(pid, trial number)``."""
    while time.monotonic() < deadline:
        for trial in study.get_trials(deepcopy=False):
            worker = trial.user_attrs.get("worker", "")
            pid = int(worker.rsplit(":", 1)[1]) if worker else -1
            if trial.state != optuna.trial.TrialState.RUNNING or pid not in pids:
                continue
            os.kill(pid, signal.SIGSTOP)
            again = study._storage.get_trial(trial._trial_id)
            if again.state == optuna.trial.TrialState.RUNNING:
                os.kill(pid, signal.SIGKILL)
                return pid, trial.number
            os.kill(pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("no worker was seen running a trial")


# -- the default store: SQLite, --workers 2 ----------------------------------------------------
@pytest.mark.slow  # half a minute of subprocesses on 2 cores: make test-slow
def test_two_local_workers_on_sqlite_finish_every_trial_once(tmp_path: Path) -> None:
    n = 5
    payload = run(*QUICK, "--workers", "2", "--trials", str(2 * n), "--study", "s", cwd=tmp_path)
    store_path = tmp_path / "shrinkage-runs.db"
    study = load("s", sqlite_url(store_path))
    finished = check_no_trial_lost(study, 2 * n)
    assert len({t.user_attrs["worker"] for t in finished}) == 2  # both processes worked
    assert payload["ran"] == 2 * n and payload["lost_workers"] == []
    check_best(payload, study, store_path)
    assert (tmp_path / payload["report"]).is_file()


@pytest.mark.slow  # a minute of subprocesses on 2 cores: make test-slow
def test_a_local_worker_killed_mid_trial_leaves_the_study_usable(tmp_path: Path) -> None:
    n = 6
    store_path = tmp_path / "shrinkage-runs.db"
    proc = start(*QUICK, "--workers", "2", "--trials", str(2 * n), "--study", "k", cwd=tmp_path)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            study = load("k", sqlite_url(store_path))
            if study.get_trials(deepcopy=False):
                break
        except KeyError:  # the study does not exist yet
            pass
        time.sleep(0.1)
    children = {
        int(line.split()[0])
        for line in subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True
        ).stdout.splitlines()
        if line.strip()
    }
    pid, number = stop_in_a_trial(study, children, deadline)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr  # a lost worker is an error, the rest is reported
    assert f"(pid {pid}) was killed by SIGKILL" in stderr and f"trial {number}" in stderr
    payload = json.loads(stdout)
    killed = study._storage.get_trial(study.trials[number]._trial_id)
    assert killed.state == optuna.trial.TrialState.FAIL
    survivor = [
        t for t in study.get_trials(deepcopy=False) if str(pid) not in t.user_attrs["worker"]
    ]
    assert len([t for t in survivor if t.state in FINISHED]) == n  # the other worker finished
    before = check_no_trial_lost(study, payload["ran"])
    check_best(payload, study, store_path)
    # usable: a new command joins the study and adds its trials
    again = run(*QUICK, "--trials", "2", "--study", "k", cwd=tmp_path)
    check_no_trial_lost(study, len(before) + 2)
    assert again["counts"]["FAIL"] == 1


# -- PostgreSQL: workers started apart join one study ------------------------------------------
@needs_postgres
def test_two_workers_on_postgresql_finish_every_trial_once(tmp_path: Path) -> None:
    assert POSTGRES is not None, "SHRINKAGE_TEST_POSTGRES must name the server"
    name, n = f"pg-{uuid.uuid4().hex[:8]}", 4
    shared = ["--trials", str(n), "--study", name, "--storage", POSTGRES]
    procs = [
        start(*QUICK, *shared, "--store", f"w{i}.db", "--sampler-seed", str(i), cwd=tmp_path)
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, outs, strict=True):
        assert p.returncode == 0, stderr
    study = load(name, POSTGRES)
    finished = check_no_trial_lost(study, 2 * n)
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    payloads = [json.loads(stdout) for stdout, _ in outs]
    assert [p["ran"] for p in payloads] == [n, n]
    # a worker reports the best of the trials finished when it ends: the one that ended last
    # saw none running (the other may have ended while a trial of the first still ran)
    saw_all = [i for i, p in enumerate(payloads) if "RUNNING" not in p["counts"]]
    assert saw_all, [p["counts"] for p in payloads]
    assert sum(payloads[saw_all[0]]["counts"].values()) == 2 * n
    check_best(payloads[saw_all[0]], study, tmp_path / f"w{saw_all[0]}.db")
    assert "password" not in json.dumps(payloads) and payloads[0]["storage"].startswith("postgres")


@needs_postgres
def test_a_postgresql_worker_killed_mid_trial_leaves_the_study_usable(tmp_path: Path) -> None:
    assert POSTGRES is not None, "SHRINKAGE_TEST_POSTGRES must name the server"
    name, n = f"pg-{uuid.uuid4().hex[:8]}", 5
    shared = ["--trials", str(n), "--study", name, "--storage", POSTGRES, "--heartbeat", "1"]
    procs = [start(*QUICK, *shared, "--store", f"w{i}.db", cwd=tmp_path) for i in range(2)]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            study = load(name, POSTGRES)
            break
        except KeyError:
            time.sleep(0.1)
    pid, number = stop_in_a_trial(study, {procs[0].pid}, deadline)
    _, stderr = procs[1].communicate(timeout=300)
    assert procs[1].returncode == 0, stderr  # the other worker finished its trials
    procs[0].wait(timeout=10)
    assert procs[0].returncode == -signal.SIGKILL
    time.sleep(2.5)  # the killed trial's heartbeat is now older than its grace period
    # usable: a worker joining later fails the killed trial and adds its own
    again = run(
        *QUICK, "--trials", "1", "--study", name, "--storage", POSTGRES, "--heartbeat", "1",
        cwd=tmp_path,
    )  # fmt: skip
    killed = study._storage.get_trial(study.trials[number]._trial_id)
    assert killed.state == optuna.trial.TrialState.FAIL
    trials = study.get_trials(deepcopy=False)
    by_killed = [t for t in trials if t.user_attrs.get("worker", "").endswith(f":{pid}")]
    done_before_kill = len([t for t in by_killed if t.state in FINISHED])
    check_no_trial_lost(study, done_before_kill + n + 1)
    assert again["counts"]["FAIL"] == 1
    check_best(again, study, tmp_path / "shrinkage-runs.db")


# -- in process: settings, pruning, linear models, bad input ------------------------------------
SMALL = Settings(data="digits", hidden=(32,), epochs=6, path_epochs=8, seed=1)


def test_pruned_trials_trail_the_median(tmp_path: Path) -> None:
    config = TuneConfig(
        SMALL, "l1", sqlite_url(tmp_path / "t.db"), study="p", trials=16, sampler_seed=0
    )
    outcome = tune(config)
    study = load("p", config.storage)
    check_no_trial_lost(study, 16)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "with 16 trials over three decades of lam some trail the median"
    for trial in pruned:  # below the median of the others at the step it was stopped
        step = max(trial.intermediate_values)
        others = [
            t.intermediate_values[step]
            for t in study.trials
            if t.number < trial.number and step in t.intermediate_values
        ]
        assert trial.intermediate_values[step] < sorted(others)[len(others) // 2] + 1e-12
    assert outcome.counts["PRUNED"] == len(pruned)


def test_a_trial_is_the_first_point_of_a_one_point_path(tmp_path: Path) -> None:
    trainer = PointTrainer(SMALL, "elasticnet")
    lo, hi = trainer.lam_range
    assert 0 < lo < hi
    lam = (lo * hi) ** 0.5
    point = trainer.fit(lam, l1_ratio=0.3, learning_rate=3e-3)
    from shrinkage.experiments import run_experiment
    from shrinkage.experiments.tune import Outcome

    config = TuneConfig(SMALL, "elasticnet", "sqlite://", trials=1)
    params = {"lam": lam, "l1_ratio": 0.3, "learning_rate": 3e-3}
    best = {"number": 0, "value": point.val_score, "params": params}
    settings = best_settings(config, Outcome("s", "", "accuracy", best, {}, 1))
    with Store(tmp_path / "r.db") as store:
        run_id = run_experiment(settings, store)
        (stored,) = store.points(run_id, "elasticnet", 0)
    assert stored.val_score == pytest.approx(point.val_score, abs=1e-6)
    assert stored.val_loss == pytest.approx(point.val_loss, rel=1e-5)
    assert stored.n_nonzero == point.n_nonzero


def test_linear_models_are_tuned_without_a_learning_rate(tmp_path: Path) -> None:
    settings = Settings(data="diabetes", model="linear", seed=0)
    config = TuneConfig(settings, "elasticnet", sqlite_url(tmp_path / "t.db"), trials=6)
    assert config.searched == ("lam", "l1_ratio")
    outcome = tune(config)
    assert outcome.metric == "r2" and outcome.counts == {"COMPLETE": 6}
    assert set(outcome.best["params"]) == {"lam", "l1_ratio"}
    assert 0.2 < outcome.best["value"] < 0.8  # R^2 of a linear model on diabetes


def test_a_command_ending_beside_running_trials_reports_its_best_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shrinkage.cli import main

    monkeypatch.chdir(tmp_path)
    args = ["tune", "--data", "diabetes", "--model", "linear", "--penalty", "l1", "--quiet"]
    assert main([*args, "--trials", "1", "--study", "r"]) == 0
    assert "best: trial 0" in capsys.readouterr().out  # alone on the study: its best
    study = load("r", sqlite_url(tmp_path / "shrinkage-runs.db"))
    study.ask()  # another worker's trial, still running
    assert main([*args, "--trials", "1", "--study", "r"]) == 0
    out = capsys.readouterr().out
    assert "(2 complete, 1 running); best so far: trial" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trials": 0}, "trials must be an integer >= 1; got 0"),
        ({"workers": 3, "trials": 2}, "workers (3) must not exceed trials (2)"),
        ({"search": ("l1_ratio",)}, "search must list lam"),
        (
            {"search": ("lam", "l1_ratio")},
            "search lists l1_ratio, which does not apply to penalty l1",
        ),
        ({"pruner": "hyperband"}, "pruner must be 'median' or 'none'; got 'hyperband'"),
        ({"heartbeat": -1}, "heartbeat must be an integer >= 1; got -1"),
    ],
)
def test_bad_settings_are_named(change: dict[str, Any], message: str) -> None:
    """The library names its Python arguments (the command line maps them to its options)."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        TuneConfig(SMALL, "l1", "sqlite://", **change)


@pytest.mark.slow  # a minute of subprocesses on 2 cores: make test-slow
def test_a_study_refuses_workers_with_other_settings(tmp_path: Path) -> None:
    run(*QUICK, "--trials", "1", "--study", "x", cwd=tmp_path)
    out = run(*QUICK, "--trials", "1", "--study", "x", "--hidden", "32", cwd=tmp_path, expect=2)
    assert "--study 'x' was created with hidden = [64], where this has [32]" in out["stderr"]
    assert "Traceback" not in out["stderr"]
    study = load("x", sqlite_url(tmp_path / "shrinkage-runs.db"))
    assert len(study.trials) == 1  # nothing was added to it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--penalty", "none"], "--penalty must be one of"),
        (["--cv", "3"], "--cv does not apply to tune"),
        (["--storage", "nosuch://x"], "--storage nosuch://x"),
        (["--storage", "postgresql://nobody@127.0.0.1:1/none"], "cannot be opened"),
        (["--workers", "0"], "--workers must be an integer >= 1; got 0"),
        (["--workers", "3"], "--workers (3) must not exceed --trials (1)"),
        (
            ["--search", "lam,l1_ratio"],
            "--search lists l1_ratio, which does not apply to --penalty",
        ),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = run(*QUICK, "--trials", "1", *args, cwd=tmp_path, expect=2)
    assert message in out["stderr"] and "Traceback" not in out["stderr"]
    assert len(out["stderr"].strip().splitlines()) == 1
