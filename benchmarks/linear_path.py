"""Lasso paths and cross-validation: shrinkage against scikit-learn, skglm and celer.

On two problems, ``make_regression(20000 x 500, 20 informative)`` (n >> p) and
``make_regression(2000 x 20000, 50 informative)`` (p >> n), all measured side by side in
this one run on the same data, grid and tolerance:

* the 100-alpha Lasso path (grid from alpha_max, eps = 1e-3, warm starts, no intercept on
  centered data): shrinkage's ``path`` / scikit-learn's ``lasso_path`` / skglm's ``Lasso``
  with warm starts / celer's ``celer_path``; with the worst relative duality gap each reached
  over the path, ``gap / (||y||^2 / n)`` in the ``||y - Xw||^2 / (2n)`` scaling;
* 5-fold cross-validation, ``LassoCV`` and ``ElasticNetCV(l1_ratio=0.5)``: shrinkage and
  scikit-learn (and celer's ``LassoCV``), with the alpha each chose; and ``RidgeCV``'s
  leave-one-out over 30 alphas. On the tall problem also scikit-learn's ``LassoCV`` at
  ``tol=1e-12``: the alpha chosen on converged paths (at ``tol=1e-4`` warm starts that
  already meet the tolerance leave runs of points unchanged, which can move the choice).
  Each CV fit runs in a fresh process, after a first fit of the same estimator on a tiny
  slice of the data and a garbage collection, so that no fit shares the machine with
  threads another library left spinning; a fit under 10 s is timed three times, the best
  counting.

And on a sparse problem, ``20000 x 100000`` CSR at 0.1 % density (2 million stored values;
the dense matrix would take 16 GB), ``Lasso`` with an intercept along a 20-alpha warm-started
path and a single ``ElasticNet`` fit, shrinkage and scikit-learn each in a fresh process that
reports its time and its peak resident memory during the fit, above what it held before
(the data included).

skglm and celer are benchmark-only: ``pip install skglm celer``; they are skipped if absent.

    python benchmarks/linear_path.py            # all three problems
    python benchmarks/linear_path.py --quick    # smaller problems, for a smoke test
    python benchmarks/linear_path.py --problem wide --cv-only   # 2000 x 20000, CV rows only
    python benchmarks/linear_path.py --problem sparse
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import sparse
from sklearn import linear_model as sk
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning

from shrinkage import linear as sh
from shrinkage.linear._datafits import Quadratic
from shrinkage.linear._duality import enet_duality_gap
from shrinkage.path import lambda_grid, path
from timing import best_time

TOL = 1e-4


def relative_gaps(X: np.ndarray, y: np.ndarray, alphas: np.ndarray, coefs: np.ndarray) -> float:
    """Worst ``gap / (||y||^2 / n)`` over the path; ``coefs`` is ``[n_alphas, p]``."""
    datafit = Quadratic(torch.as_tensor(X), torch.as_tensor(y), use_gram=False)
    scale = float(y @ y) / len(y)
    return max(
        enet_duality_gap(datafit, torch.as_tensor(c, dtype=torch.float64), a, 0.0) / scale
        for a, c in zip(alphas, coefs, strict=True)
    )


def path_rows(X: np.ndarray, y: np.ndarray) -> list[tuple[str, float, float, int]]:
    problem = sh.LinearProblem(
        X, y, loss="squared", l1_ratio=1.0, fit_intercept=False, tol=TOL, max_iter=100_000
    )
    grid = lambda_grid(problem.lambda_max(), 100, 1e-3)
    rows = []
    t, points = best_time(lambda: path(problem, grid), 1)
    coefs = np.array([p.coef for p in points])
    rows.append(
        ("shrinkage path", t, relative_gaps(X, y, grid, coefs), int((coefs[-1] != 0).sum()))
    )
    t, (_, sk_coefs, _) = best_time(
        lambda: sk.lasso_path(X, y, alphas=grid, tol=TOL, max_iter=100_000), 1
    )
    rows.append(
        (
            "scikit-learn lasso_path",
            t,
            relative_gaps(X, y, grid, sk_coefs.T),
            int((sk_coefs[:, -1] != 0).sum()),
        )
    )
    if importlib.util.find_spec("skglm"):
        import skglm

        skglm.Lasso(alpha=1.0, fit_intercept=False).fit(
            X[:50, :50], y[:50]
        )  # numba compile, not timed

        def skglm_path() -> np.ndarray:
            model = skglm.Lasso(
                alpha=grid[0], fit_intercept=False, warm_start=True, tol=TOL, max_iter=1000
            )
            out = []
            for a in grid:
                model.alpha = a
                out.append(model.fit(X, y).coef_.copy())
            return np.array(out)

        t, sg = best_time(skglm_path, 1)
        rows.append(
            (
                "skglm Lasso (warm starts)",
                t,
                relative_gaps(X, y, grid, sg),
                int((sg[-1] != 0).sum()),
            )
        )
    if importlib.util.find_spec("celer"):
        import celer

        t, (_, cel, _) = best_time(
            lambda: celer.celer_path(X, y, pb="lasso", alphas=grid, tol=TOL), 1
        )
        rows.append(
            ("celer celer_path", t, relative_gaps(X, y, grid, cel.T), int((cel[:, -1] != 0).sum()))
        )
    return rows


RIDGE_ALPHAS = np.logspace(-2, 3, 30)
"""The grid of the RidgeCV rows (efficient leave-one-out over it: one decomposition)."""


def _cv_estimators(tall: bool) -> dict[str, Callable[[], Any]]:
    """The rows of the CV table: each a fresh estimator."""
    rows: dict[str, Callable[[], Any]] = {
        "shrinkage LassoCV": lambda: sh.LassoCV(cv=5, tol=TOL),
        "scikit-learn LassoCV": lambda: sk.LassoCV(cv=5, tol=TOL),
        "shrinkage ElasticNetCV(0.5)": lambda: sh.ElasticNetCV(l1_ratio=0.5, cv=5, tol=TOL),
        "scikit-learn ElasticNetCV(0.5)": lambda: sk.ElasticNetCV(l1_ratio=0.5, cv=5, tol=TOL),
        "shrinkage RidgeCV": lambda: sh.RidgeCV(alphas=RIDGE_ALPHAS),
        "scikit-learn RidgeCV": lambda: sk.RidgeCV(alphas=RIDGE_ALPHAS),
    }
    if tall:  # the choice on converged paths (affordable when n >= p)
        rows["scikit-learn LassoCV, tol=1e-12"] = lambda: sk.LassoCV(cv=5, tol=1e-12)
    if importlib.util.find_spec("celer"):
        import celer

        rows["celer LassoCV"] = lambda: celer.LassoCV(cv=5, tol=TOL)
    return rows


QUICK_FIT, REPEATS = 10.0, 3
"""A CV fit under ``QUICK_FIT`` seconds is timed ``REPEATS`` times in its process, the best
counting (one run of the tall rows varies by up to 1.5x); a longer one once."""


def cv_job(data: str, name: str, threads: int) -> dict[str, Any]:
    """One CV row, run in its own process on the problem saved in ``data``: the fit's
    seconds and ``alpha_``, after a first fit of the same estimator on a tiny slice (the code
    it loads and the threads it starts are not the fit's time) and a full garbage collection
    (the process's first one, over every object its imports made, took 0.14 s when it fell
    inside a 0.22 s fit)."""
    torch.set_num_threads(threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = np.load(data + "_X.npy"), np.load(data + "_y.npy")
    make = _cv_estimators(X.shape[0] >= X.shape[1])[name]
    try:
        make().fit(X[:100, :20], y[:100])
    except TypeError as exc:  # celer's drop-in class predates this scikit-learn's API
        return {"skipped": str(exc)}
    gc.collect()
    t, fitted = best_time(lambda: make().fit(X, y), 1)
    if t < QUICK_FIT:  # a short fit is timed again: the best of REPEATS counts
        again, fitted = best_time(lambda: make().fit(X, y), REPEATS - 1)
        t = min(t, again)
    return {"seconds": t, "alpha": float(fitted.alpha_)}


def cv_rows(X: np.ndarray, y: np.ndarray, threads: int) -> list[tuple[str, float, float]]:
    """Each CV row in a fresh process, the rows one after another: a library's fit then
    never shares the machine with the threads another left spinning (on 2 cores, a
    shrinkage fit right after a scikit-learn one took 0.33 - 0.38 s where it takes 0.27 -
    0.29 s alone)."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        data = os.path.join(folder, "problem")
        np.save(data + "_X.npy", X)
        np.save(data + "_y.npy", y)
        for name in _cv_estimators(X.shape[0] >= X.shape[1]):
            command = [sys.executable, __file__, "--cv-job", data, name]
            command += ["--threads", str(threads)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if "skipped" in result:
                print(f"  ({name} skipped: {result['skipped']})")
                continue
            rows.append((name, result["seconds"], result["alpha"]))
    return rows


SPARSE = {"full": (20000, 100000, 1e-3, 50), "quick": (2000, 10000, 2e-3, 20)}
"""``(n, p, density, informative)`` of the sparse problem."""


def sparse_problem(size: str) -> tuple[sparse.csr_matrix, np.ndarray]:
    """A CSR design with standard normal stored values and ``y = X w + noise``, ``w`` with
    ``informative`` nonzeros."""
    n, p, density, k = SPARSE[size]
    rng = np.random.default_rng(0)
    X = sparse.random(  # a Generator: with a seed scipy permutes all n p cells (minutes)
        n, p, density=density, format="csr", random_state=rng, data_rvs=rng.standard_normal
    )
    w = np.zeros(p)
    w[rng.choice(p, k, replace=False)] = rng.uniform(1.0, 3.0, size=k) * rng.choice([-1, 1], k)
    return X, np.asarray(X @ w) + 0.5 * rng.standard_normal(n)


def _memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, in MB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    return float("nan")


def _reset_peak() -> None:
    """Start ``VmHWM`` again from the resident size now (Linux >= 4.0), so the peak measured
    is the fit's, not the data loading's."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def sparse_job(data: str, library: str, task: str, threads: int) -> dict[str, float]:
    """One measurement, run in its own process on the problem saved in ``data``: seconds and
    peak memory (MB) above what the process held once it had loaded the data and made a
    first tiny fit."""
    torch.set_num_threads(threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    X = sparse.load_npz(data + ".npz")
    y = np.load(data + ".npy")
    module = sh if library == "shrinkage" else sk
    centred = np.asarray(X.T @ (y - y.mean())).ravel()
    alpha_max = float(np.abs(centred).max()) / X.shape[0]
    # each library's first fit, on a tiny problem, outside the measurement: the code it loads
    # and the threads it starts are not the fit's memory
    module.ElasticNet(alpha=0.01, tol=TOL).fit(X[:50, :200], y[:50])
    gc.collect()  # the process's first full collection, outside the measurement
    _reset_peak()
    base = _memory_mb("VmRSS")
    if task == "path":
        grid = np.geomspace(alpha_max, alpha_max * 1e-2, 20)
        model = module.Lasso(alpha=grid[0], tol=TOL, warm_start=True, max_iter=100_000)

        def run() -> Any:
            for a in grid:
                model.set_params(alpha=a).fit(X, y)
            return model

    else:
        model = module.ElasticNet(
            alpha=0.1 * alpha_max / 0.5, l1_ratio=0.5, tol=TOL, max_iter=100_000
        )

        def run() -> Any:
            return model.fit(X, y)

    t, fitted = best_time(run, 1)
    peak = _memory_mb("VmHWM") - base
    return {"seconds": t, "peak_mb": peak, "nnz": int((fitted.coef_ != 0).sum())}


def sparse_rows(size: str, threads: int) -> None:
    n, p, density, _ = SPARSE[size]
    X, y = sparse_problem(size)
    stored = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    with tempfile.TemporaryDirectory() as folder:
        data = os.path.join(folder, "problem")
        sparse.save_npz(data + ".npz", X)
        np.save(data + ".npy", y)
        _sparse_table(data, (n, p, density), X.nnz, stored, threads)


def _sparse_table(
    data: str, shape: tuple[int, int, float], nnz: int, stored: float, threads: int
) -> None:
    n, p, density = shape
    print(
        f"\nsparse CSR {n} x {p}, density {density:g} ({nnz} stored values, {stored:.0f} MB; "
        f"dense it would take {n * p * 8 / 2**30:.1f} GB)"
    )
    print(f"  {'':<36}{'seconds':>9}{'vs shrinkage':>14}{'peak MB':>10}{'nnz':>7}")
    for task, title in (("path", "Lasso, 20-alpha path"), ("single", "ElasticNet, one fit")):
        results = {}
        for library in ("shrinkage", "scikit-learn"):
            command = [sys.executable, __file__, "--sparse-job", data, library, task]
            command += ["--threads", str(threads)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            results[library] = json.loads(out.stdout.strip().splitlines()[-1])
        ref = results["shrinkage"]["seconds"]
        for library, r in results.items():
            print(
                f"  {library + ' ' + title:<36}{r['seconds']:>9.2f}{r['seconds'] / ref:>13.2f}x"
                f"{r['peak_mb']:>10.0f}{r['nnz']:>7}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smaller problems (smoke test)")
    parser.add_argument(
        "--problem",
        choices=("tall", "wide", "sparse", "all"),
        default="all",
        help="n >> p, p >> n, sparse",
    )
    parser.add_argument("--cv-only", action="store_true", help="skip the 100-alpha paths")
    parser.add_argument("--sparse-job", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--cv-job", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sparse_job:  # a child process of sparse_rows
        print(json.dumps(sparse_job(*args.sparse_job, threads=args.threads)))
        return
    if args.cv_job:  # a child process of cv_rows
        print(json.dumps(cv_job(*args.cv_job, threads=args.threads)))
        return
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    problems = [(20000, 500, 20), (2000, 20000, 50)]
    if args.quick:
        problems = [(2000, 100, 10), (200, 2000, 20)]
    if args.problem != "all":
        problems = {"tall": problems[:1], "wide": problems[1:], "sparse": []}[args.problem]
    print(f"torch {torch.__version__}, {args.threads} threads, tol={TOL}")
    for n, p, k in problems:
        X, y = make_regression(
            n_samples=n, n_features=p, n_informative=k, noise=5.0, random_state=0
        )
        X, y = X - X.mean(axis=0), y - y.mean()
        print(f"\nmake_regression({n} x {p}, {k} informative)")
        if not args.cv_only:
            rows = path_rows(X, y)
            base = rows[0][1]
            print(
                f"  {'100-alpha path':<32}{'seconds':>9}{'vs shrinkage':>14}"
                f"{'worst rel. gap':>16}{'nnz at end':>12}"
            )
            for name, t, gap, nnz in rows:
                print(f"  {name:<32}{t:>9.2f}{t / base:>13.2f}x{gap:>16.1e}{nnz:>12}")
        rows_cv = cv_rows(X, y, args.threads)
        print(f"  {'5-fold CV':<32}{'seconds':>9}{'vs shrinkage':>14}{'alpha_':>16}")
        ours = {name.split(" ", 1)[1]: t for name, t, _ in rows_cv if name.startswith("shrinkage")}
        for name, t, alpha in rows_cv:
            ref = ours[name.split(" ", 1)[1].split(",")[0]]  # the estimator's shrinkage row
            print(f"  {name:<32}{t:>9.2f}{t / ref:>13.2f}x{alpha:>16.6g}")
    if args.problem in ("sparse", "all"):
        sparse_rows("quick" if args.quick else "full", args.threads)


if __name__ == "__main__":
    main()
