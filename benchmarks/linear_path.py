"""Lasso paths and cross-validation: shrinkage against scikit-learn, skglm and celer.

On two problems, ``make_regression(20000 x 500, 20 informative)`` (n >> p) and
``make_regression(2000 x 20000, 50 informative)`` (p >> n), all measured side by side in
this one run on the same data, grid and tolerance:

* the 100-alpha Lasso path (grid from alpha_max, eps = 1e-3, warm starts, no intercept on
  centered data): shrinkage's ``path`` / scikit-learn's ``lasso_path`` / skglm's ``Lasso``
  with warm starts / celer's ``celer_path``; with the worst relative duality gap each reached
  over the path, ``gap / (||y||^2 / n)`` in the ``||y - Xw||^2 / (2n)`` scaling;
* 5-fold cross-validation, ``LassoCV`` and ``ElasticNetCV(l1_ratio=0.5)``: shrinkage and
  scikit-learn (and celer's ``LassoCV``), with the alpha each chose.

skglm and celer are benchmark-only: ``pip install skglm celer``; they are skipped if absent.

    python benchmarks/linear_path.py            # both problems
    python benchmarks/linear_path.py --quick    # smaller problems, for a smoke test
    python benchmarks/linear_path.py --problem wide --cv-only   # 2000 x 20000, CV rows only
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn import linear_model as sk
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning

from shrinkage import linear as sh
from shrinkage.linear._datafits import Quadratic
from shrinkage.linear._problem import enet_duality_gap
from shrinkage.path import lambda_grid, path

TOL = 1e-4


def relative_gaps(X: np.ndarray, y: np.ndarray, alphas: np.ndarray, coefs: np.ndarray) -> float:
    """Worst ``gap / (||y||^2 / n)`` over the path; ``coefs`` is ``[n_alphas, p]``."""
    datafit = Quadratic(torch.as_tensor(X), torch.as_tensor(y), gram=False)
    scale = float(y @ y) / len(y)
    return max(
        enet_duality_gap(datafit, torch.as_tensor(c, dtype=torch.float64), a, 0.0) / scale
        for a, c in zip(alphas, coefs, strict=True)
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def path_rows(X: np.ndarray, y: np.ndarray) -> list[tuple[str, float, float, int]]:
    problem = sh.LinearProblem(
        X, y, loss="squared", l1_ratio=1.0, fit_intercept=False, tol=TOL, max_iter=100_000
    )
    grid = lambda_grid(problem.lambda_max(), 100, 1e-3)
    rows = []
    t, points = timed(lambda: path(problem, grid))
    coefs = np.array([p.coef for p in points])
    rows.append(
        ("shrinkage path", t, relative_gaps(X, y, grid, coefs), int((coefs[-1] != 0).sum()))
    )
    t, (_, sk_coefs, _) = timed(lambda: sk.lasso_path(X, y, alphas=grid, tol=TOL, max_iter=100_000))
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

        t, sg = timed(skglm_path)
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

        t, (_, cel, _) = timed(lambda: celer.celer_path(X, y, pb="lasso", alphas=grid, tol=TOL))
        rows.append(
            ("celer celer_path", t, relative_gaps(X, y, grid, cel.T), int((cel[:, -1] != 0).sum()))
        )
    return rows


def cv_rows(X: np.ndarray, y: np.ndarray) -> list[tuple[str, float, float]]:
    rows = []
    for name, est in (
        ("shrinkage LassoCV", sh.LassoCV(cv=5, tol=TOL)),
        ("scikit-learn LassoCV", sk.LassoCV(cv=5, tol=TOL)),
        ("shrinkage ElasticNetCV(0.5)", sh.ElasticNetCV(l1_ratio=0.5, cv=5, tol=TOL)),
        ("scikit-learn ElasticNetCV(0.5)", sk.ElasticNetCV(l1_ratio=0.5, cv=5, tol=TOL)),
    ):
        t, fitted = timed(lambda est=est: est.fit(X, y))
        rows.append((name, t, float(fitted.alpha_)))
    if importlib.util.find_spec("celer"):
        import celer

        try:
            t, fitted = timed(lambda: celer.LassoCV(cv=5, tol=TOL).fit(X, y))
            rows.append(("celer LassoCV", t, float(fitted.alpha_)))
        except TypeError as exc:  # celer's drop-in class predates this scikit-learn's API
            print(f"  (celer LassoCV skipped: {exc})")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smaller problems (smoke test)")
    parser.add_argument(
        "--problem", choices=("tall", "wide", "both"), default="both", help="n >> p, p >> n"
    )
    parser.add_argument("--cv-only", action="store_true", help="skip the 100-alpha paths")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    problems = [(20000, 500, 20), (2000, 20000, 50)]
    if args.quick:
        problems = [(2000, 100, 10), (200, 2000, 20)]
    if args.problem != "both":
        problems = problems[:1] if args.problem == "tall" else problems[1:]
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
        rows_cv = cv_rows(X, y)
        print(f"  {'5-fold CV':<32}{'seconds':>9}{'vs shrinkage':>14}{'alpha_':>16}")
        for name, t, alpha in rows_cv:
            ref = rows_cv[0][1] if "Elastic" not in name else rows_cv[2][1]
            print(f"  {name:<32}{t:>9.2f}{t / ref:>13.2f}x{alpha:>16.6g}")


if __name__ == "__main__":
    main()
