"""Fits on a shared machine: intra-op threads sized to the work against torch's default.

Measured side by side in this one run, each job in turns (``--rounds`` rounds, the median
kept), on a quiet machine and beside a busy process (a bounded single-threaded busy loop that
this script starts before the job and stops after it):

* ``fit_path``: ``MLPRegressor(penalty="group_inputs").fit_path`` on friedman1
  (2000 x 50, noise 1);
* ``LassoCV``: 5-fold ``LassoCV`` on the wide problem, ``make_regression(2000 x 20000,
  50 informative)``, as in ``linear_path.py``;

each under the three thread policies of ``SHRINKAGE_THREADS``: "sized" (the default,
``auto``: one thread for a step under ``WORK_PER_THREAD`` multiply-accumulates, else as many
as the work is worth within torch's count; reproducible), "adaptive" (the same, and never
more than the cores other processes leave idle: faster beside a busy process, but the thread
count, hence the last bits of the result, follows the load) and "all threads" (every step on
torch's count, as torch does by itself). And ``GridSearchCV(MLPClassifier((128,),
max_epochs=E), n_jobs=2)`` on digits (6 strengths, 5 folds: 30 fits; ``E`` is
``--grid-epochs``, default 60) against ``n_jobs=1`` (joblib's loky workers, which limit each
worker's threads): first once with new workers (their start-up, imports and first fits
included: what the first search of a session costs), then in the rounds, where joblib reuses
them.

    python benchmarks/shared_machine.py
    python benchmarks/shared_machine.py --rounds 1 --quick
    python benchmarks/shared_machine.py --parts GridSearchCV --grid-epochs 150
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from sklearn.datasets import load_digits, make_friedman1, make_regression
from sklearn.model_selection import GridSearchCV

import shrinkage._threads as threads
from shrinkage.linear import LassoCV
from shrinkage.neural import MLPClassifier, MLPRegressor

PARTS = ["fit_path", "LassoCV", "GridSearchCV"]
BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


@contextlib.contextmanager
def busy(on: bool, seconds: float = 900.0) -> Iterator[None]:
    """A single-threaded busy loop in its own process (at most ``seconds``) while ``on``."""
    if not on:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=seconds)])
    time.sleep(0.5)  # let it take its core
    try:
        yield
    finally:
        process.kill()
        process.wait()


MODES = {"sized": "auto", "adaptive": "adaptive", "all threads": "all"}
"""The benchmark's names for the values of ``SHRINKAGE_THREADS``."""


@contextlib.contextmanager
def policy(mode: str) -> Iterator[None]:
    """``SHRINKAGE_THREADS`` set to the policy of ``mode`` (a key of ``MODES``)."""
    before = os.environ.get(threads.POLICY_VARIABLE)
    os.environ[threads.POLICY_VARIABLE] = MODES[mode]
    try:
        yield
    finally:
        if before is None:
            del os.environ[threads.POLICY_VARIABLE]
        else:
            os.environ[threads.POLICY_VARIABLE] = before


def seconds(job: Callable[[], Any]) -> float:
    start = time.perf_counter()
    job()
    return time.perf_counter() - start


def jobs(quick: bool) -> dict[str, Callable[[], Any]]:
    n = 500 if quick else 2000
    Xf, yf = make_friedman1(n_samples=n, n_features=50, noise=1.0, random_state=0)
    p = 2000 if quick else 20000
    Xw, yw = make_regression(
        n_samples=2000, n_features=p, n_informative=50, noise=1.0, random_state=0
    )
    return {
        "fit_path": lambda: MLPRegressor(penalty="group_inputs", random_state=0).fit_path(Xf, yf),
        "LassoCV": lambda: LassoCV(cv=5).fit(Xw, yw),
    }


def grid_search(n_jobs: int, epochs: int) -> float:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    search = GridSearchCV(
        MLPClassifier((128,), penalty="l1", max_epochs=epochs, random_state=0),
        {"alpha": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]},
        cv=5,
        n_jobs=n_jobs,
    )
    return seconds(lambda: search.fit(X, y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smaller problems (a smoke test)")
    parser.add_argument(
        "--parts", nargs="+", default=PARTS, choices=PARTS, help="the jobs to run (default all)"
    )
    parser.add_argument("--grid-epochs", type=int, default=60, help="epochs of each searched fit")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads allowed")
    fits = {k: v for k, v in jobs(args.quick).items() if k in args.parts}
    for name, job in jobs(quick=True).items():  # warm-up: first calls, imports, allocations
        if name in fits:
            job()
    times: dict[tuple[str, str, str], list[float]] = {}
    epochs = 10 if args.quick else args.grid_epochs
    first: dict[int, float] = {}
    if "GridSearchCV" in args.parts:
        first = {n_jobs: grid_search(n_jobs, epochs) for n_jobs in (1, 2)}  # new workers
    for _ in range(args.rounds):
        for name, job in fits.items():
            for mode in MODES:
                for load in ("quiet", "busy"):
                    with policy(mode), busy(load == "busy"):
                        times.setdefault((name, mode, load), []).append(seconds(job))
        for n_jobs in (1, 2) if "GridSearchCV" in args.parts else ():
            key = ("GridSearchCV", f"n_jobs={n_jobs}", "quiet")
            times.setdefault(key, []).append(grid_search(n_jobs, epochs))
    show(times, list(fits), first, "GridSearchCV" in args.parts)


def show(
    times: dict[tuple[str, str, str], list[float]],
    fits: list[str],
    first: dict[int, float],
    grid: bool,
) -> None:
    """The medians of ``times``, their ratios, and the raw times."""
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'job':14} {'threads':12} {'quiet s':>9} {'busy s':>9} {'busy/quiet':>10}")
    for name in fits:
        for mode in MODES:
            q, b = median[(name, mode, "quiet")], median[(name, mode, "busy")]
            print(f"{name:14} {mode:12} {q:9.2f} {b:9.2f} {b / q:10.2f}")
        s, a = median[(name, "sized", "quiet")], median[(name, "all threads", "quiet")]
        d = median[(name, "sized", "busy")] / median[(name, "adaptive", "busy")]
        print(f"{'':14} quiet, sized / all threads: {s / a:.2f}; busy, sized / adaptive: {d:.2f}")
    if grid:
        one, two = (
            median[("GridSearchCV", "n_jobs=1", "quiet")],
            median[("GridSearchCV", "n_jobs=2", "quiet")],
        )
        print(f"GridSearchCV   n_jobs=1 {one:.2f} s, n_jobs=2 {two:.2f} s: ratio {two / one:.2f}")
        print(
            f"  first search, new workers: n_jobs=1 {first[1]:.2f} s, n_jobs=2 {first[2]:.2f} s: "
            f"ratio {first[2] / first[1]:.2f}"
        )
    print("raw:", {" / ".join(k): [round(t, 2) for t in v] for k, v in times.items()})


if __name__ == "__main__":
    main()
