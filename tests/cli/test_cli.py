"""The command line end to end, in subprocesses: kill and resume, concurrent writers, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shrinkage.experiments.store import Store

QUICK = [
    "--data", "digits", "--hidden", "64", "--epochs", "12", "--path-epochs", "4",
    "--n-lambdas", "6", "--seed", "3", "--quiet",
]  # fmt: skip


def shrinkage(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "shrinkage.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


def table(out: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    """The result rows of a --json run, without the timing column."""
    rows = json.loads(out.stdout)["rows"]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.slow  # a minute of subprocesses on 2 cores: make test-slow
def test_killed_run_resumes_to_the_same_table(tmp_path: Path) -> None:
    reference = shrinkage("compare", *QUICK, "--store", "ref.db", "--json", cwd=tmp_path)
    store_path = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "shrinkage.cli", "compare", *QUICK, "--store", str(store_path),
         "--json"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    run_id, stored = None, 0
    while time.monotonic() < deadline and proc.poll() is None:
        if store_path.exists():
            with Store(store_path) as store:
                runs = store.runs()
                if runs:
                    run_id, stored = runs[0].id, store.count_points(runs[0].id)
            if stored >= 5:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run_id is not None and stored >= 5
    with Store(store_path) as store:
        assert store.run(run_id).status == "running", "the run finished before it was killed"
        before = store.count_points(run_id)
        assert store.integrity() == "ok"
        kept = {
            (name, p.lam, p.seconds)
            for name in ("none", "l1", "l2", "elasticnet")
            for p in store.points(run_id, name, 0)
        }
    resumed = shrinkage(
        "compare", "--resume", run_id, "--store", str(store_path), "--json", "--quiet",
        cwd=tmp_path,
    )  # fmt: skip
    assert table(resumed) == table(reference)
    with Store(store_path) as store:
        assert store.integrity() == "ok"
        assert store.run(run_id).status == "done"
        # nothing stored was recomputed: every point from before the kill is still there as
        # first written, and the resumed process added the rest
        assert store.count_points(run_id) > before
        after = {
            (name, p.lam, p.seconds)
            for name in ("none", "l1", "l2", "elasticnet")
            for p in store.points(run_id, name, 0)
        }
        assert kept <= after


@pytest.mark.slow  # a minute of subprocesses on 2 cores: make test-slow
def test_two_concurrent_runs_into_one_store(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shrinkage.cli",
                "compare",
                *QUICK[:-3],
                "--seed",
                str(seed),
                "--quiet",
                "--store",
                "shared.db",
                "--json",
                "--report-dir",
                f"rep{seed}",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ids = {json.loads(o[0])["run"] for o in outs}
    with Store(tmp_path / "shared.db") as store:
        assert store.integrity() == "ok"
        assert {r.id for r in store.runs()} == ids
        for run_id in ids:
            assert store.run(run_id).status == "done"
            assert [r.penalty for r in store.results(run_id)] == [
                "none", "l1", "l2", "elasticnet",
            ]  # fmt: skip
            for name in ("none", "l1", "l2", "elasticnet"):
                assert store.points(run_id, name, 0), (run_id, name)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--data", "nope"], "neither a bundled dataset"),
        (["compare", "--data", "digits", "--penalties", "l1,l3"], "--penalties must be"),
        (["compare", "--data", "digits", "--cv", "1"], "--cv must be an integer >= 2"),
        (["compare", "--data", "digits", "--model", "linear", "--penalties", "group_inputs"],
         "needs --model mlp"),
        (["compare", "--data", "missing.csv", "--target", "y"], "no such file"),
        (["compare", "--data", "digits", "--hidden", "a,b"], "--hidden must be"),
        (["compare", "--data", "digits", "--rule", "max"], "invalid choice"),
        (["report", "deadbeef"], "no run 'deadbeef'"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = shrinkage(*args, "--store", "s.db", cwd=tmp_path, check=False)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow  # half a minute of subprocesses on 2 cores: make test-slow
def test_select_path_runs_and_report(tmp_path: Path) -> None:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        300, 8, n_informative=3, n_redundant=0, shuffle=False, class_sep=2.0, random_state=0
    )
    lines = ["f0,f1,f2,f3,f4,f5,f6,f7,label"]
    lines += [",".join(f"{v:.6f}" for v in x) + f",{int(t)}" for x, t in zip(X, y, strict=True)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    env_store = str(tmp_path / "env.db")
    os.environ["SHRINKAGE_STORE"] = env_store
    try:
        out = shrinkage(
            "select", "--data", "t.csv", "--target", "label", "--model", "linear", "--json",
            "--quiet", "--out", "kept.csv", cwd=tmp_path,
        )  # fmt: skip
    finally:
        del os.environ["SHRINKAGE_STORE"]
    result = json.loads(out.stdout)
    kept = [f["feature"] for f in result["features"] if f["selected"]]
    header = (tmp_path / "kept.csv").read_text().splitlines()[0].split(",")
    assert header == [*[f for f in header[:-1]], "label"] and set(header[:-1]) == set(kept)
    assert 3 <= len(kept) < 8
    ranked = [f["feature"] for f in result["features"]]
    assert set(ranked[:3]) == {"f0", "f1", "f2"}  # the informative columns come first
    flags = [f["selected"] for f in result["features"]]
    assert flags == sorted(flags, reverse=True)  # the selected ones first, then the others
    entered = [f["in model from lam"] for f in result["features"] if f["selected"]]
    assert entered == sorted(entered, reverse=True) and min(entered) >= result["lam"]
    assert result["metric"] == "accuracy" and 0.8 < result["test"] <= 1.0
    runs = json.loads(shrinkage("runs", "--json", "--store", env_store, cwd=tmp_path).stdout)
    assert [r["run"] for r in runs] == [result["run"]] and runs[0]["status"] == "done"
    path = json.loads(
        shrinkage(
            "path",
            "--data",
            "diabetes",
            "--model",
            "linear",
            "--penalty",
            "l1",
            "--json",
            "--quiet",
            "--n-lambdas",
            "8",
            cwd=tmp_path,
        ).stdout
    )
    points = path["points"]
    assert len(points) == 8 and sum(p["chosen"] == "<-" for p in points) == 1
    assert points[0]["features"] <= points[-1]["features"]  # decreasing lam adds features
    again = json.loads(
        shrinkage("report", path["run"], "--json", "--report-dir", "again", cwd=tmp_path).stdout
    )
    assert (tmp_path / again["report"]).is_file()
    assert sorted(p.name for p in (tmp_path / "again").glob("*.png")) == sorted(
        f"{s}.png"
        for s in ("path", "validation", "training", "histograms", "sparsity", "importances")
    )
