"""The run store: lossless JSON + npz encoding, no pickles, concurrent-safe SQLite."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest
import torch

from shrinkage.experiments.store import Store, decode, encode
from shrinkage.path import NetworkState, PathPoint


def test_encode_round_trips_an_optimizer_state() -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    obj = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "history": [(0.5, math.nan)],
        "coef": np.arange(3.0),
        "inf": math.inf,
    }
    back = decode(*encode(obj))
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-2)
    fresh.load_state_dict(back["optimizer"])  # int keys came back as ints
    assert (
        set(fresh.state) and back["optimizer"]["param_groups"] == opt.state_dict()["param_groups"]
    )
    for k, v in model.state_dict().items():
        assert torch.equal(back["model"][k], v) and back["model"][k].dtype == v.dtype
    assert back["history"][0][0] == 0.5 and math.isnan(back["history"][0][1])
    assert isinstance(back["history"][0], tuple)
    np.testing.assert_array_equal(back["coef"], obj["coef"])
    assert back["inf"] == math.inf


def test_encode_refuses_arbitrary_objects() -> None:
    with pytest.raises(TypeError, match="cannot store"):
        encode({"x": object()})


def _point(lam: float) -> PathPoint:
    return PathPoint(
        lam,
        np.array([1.0, 0.0]),
        0.5,
        1.0,
        2.0,
        0.9,
        1,
        (0,),
        3,
        True,
        0.0,
        0.1,
        NetworkState({"w": torch.ones(2)}, history=((1.0, 2.0),)),
    )


def test_points_are_committed_and_read_back_as_a_prefix(tmp_path) -> None:
    with Store(tmp_path / "s.db") as store:
        run = store.create_run("compare", {"data": "iris"}, {})
        store.add_point(run, "l1", 0, 0, _point(1.0))
        store.add_point(run, "l1", 0, 2, _point(0.1))  # a gap: not part of the prefix
        store.add_point(run, "l1", 0, 0, _point(9.0))  # a repeat is ignored
        points = store.points(run, "l1", 0)
        assert [p.lam for p in points] == [1.0]
        assert points[0].selected == (0,) and points[0].state is not None
        assert torch.equal(points[0].state.weights["w"], torch.ones(2))
        assert points[0].state.history == ((1.0, 2.0),)
        assert store.integrity() == "ok"
    # another connection sees everything committed
    with Store(tmp_path / "s.db") as other:
        assert other.count_points(run) == 2
        assert other.run(run).status == "running"
        with pytest.raises(ValueError, match="no run 'nope'"):
            other.run("nope")
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_store_path_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SHRINKAGE_STORE", str(tmp_path / "env.db"))
    with Store() as store:
        assert store.path == tmp_path / "env.db"
    with pytest.raises(ValueError, match=r"path .* in a folder that does not exist"):
        Store(tmp_path / "missing" / "x.db")


_OPENER = """
import sys, time
from shrinkage.experiments.store import Store
folder, start = sys.argv[1], float(sys.argv[2])
for k in range(10):
    while time.time() < start + 0.3 * k:
        pass
    with Store(f"{folder}/s{k}.db") as store:
        store.create_run("compare", {}, {})
"""


def test_processes_opening_a_new_store_at_the_same_moment(tmp_path) -> None:
    import subprocess
    import sys
    import time

    start = str(time.time() + 4.0)  # after both interpreters have imported torch
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, str(tmp_path), start], stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    for k in range(10):
        with Store(tmp_path / f"s{k}.db") as store:
            assert len(store.runs()) == 2 and store.integrity() == "ok"
