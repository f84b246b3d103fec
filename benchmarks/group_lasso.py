"""The group lasso: shrinkage against skglm, and against shrinkage's own lasso.

On ``n x p`` Gaussian features in groups of 5, with 4 informative groups and noise, measured
side by side in one run on the same data (centred, no intercept):

* single fits of ``sum (y - X w)^2 / (2n) + alpha sum_g sqrt(5) ||w_g||`` at 0.5, 0.1 and
  0.02 ``alpha_max``: shrinkage's ``GroupLasso`` and skglm's ``GroupLasso`` (the same
  objective with ``weights = sqrt(5)``), each at ``tol=1e-8``. Printed: the seconds (best of
  ``--repeats``), the objective above the lower of the two (relative), the largest violation
  of the optimality conditions, and the groups kept;
* the 30-alpha, 5-fold ``GroupLassoCV`` against ``LassoCV`` on the same grid size, shrinkage
  both: what grouping costs over the lasso;
* ``MultiTaskLasso`` (the group lasso over the rows of the coefficient matrix) on ``300 x 3000``
  features and 3 tasks at 0.3, 0.1 and 0.03 ``alpha_max``, and its 3-fold, 20-alpha CV:
  shrinkage against scikit-learn.

skglm is benchmark-only (``pip install skglm``); its rows are skipped if it is absent, and its
compilation happens in a warm-up fit outside the timing.

    python benchmarks/group_lasso.py
    python benchmarks/group_lasso.py --quick
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from collections.abc import Callable

import numpy as np
import torch
from sklearn import linear_model as sk
from sklearn.exceptions import ConvergenceWarning

from shrinkage import linear as sh
from timing import best_time

SIZE = 5
"""Features per group."""

TOL = 1e-8


def data(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Centred Gaussian features and a centred target from 4 groups of ``SIZE``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    w = np.zeros(p)
    w[: 4 * SIZE] = rng.normal(size=4 * SIZE)
    y = X @ w + 0.5 * rng.normal(size=n)
    return X - X.mean(axis=0), y - y.mean()


def objective(X: np.ndarray, y: np.ndarray, coef: np.ndarray, alpha: float) -> float:
    norms = np.linalg.norm(coef.reshape(-1, SIZE), axis=1)
    return float(np.mean((y - X @ coef) ** 2) / 2 + alpha * np.sqrt(SIZE) * norms.sum())


def violation(X: np.ndarray, y: np.ndarray, coef: np.ndarray, alpha: float) -> float:
    """The largest violation of the optimality conditions over the groups: ``||grad_g + t
    w_g / ||w_g||||`` on a kept group, ``max(||grad_g|| - t, 0)`` on a dropped one."""
    grad = (-X.T @ (y - X @ coef) / len(y)).reshape(-1, SIZE)
    w, t = coef.reshape(-1, SIZE), alpha * np.sqrt(SIZE)
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    kept = norms[:, 0] > 0
    on = np.linalg.norm(grad[kept] + t * w[kept] / norms[kept], axis=1)
    off = np.maximum(np.linalg.norm(grad[~kept], axis=1) - t, 0.0)
    return float(max(on.max(initial=0.0), off.max(initial=0.0)))


def solvers(alpha: float) -> dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Each solver as ``fit(X, y) -> coef`` at ``alpha``."""
    out: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "shrinkage GroupLasso": lambda X, y: (
            sh.GroupLasso(alpha, groups=SIZE, fit_intercept=False, tol=TOL, max_iter=100_000)
            .fit(X, y)
            .coef_
        )
    }
    if importlib.util.find_spec("skglm"):
        import skglm

        def fit_skglm(X: np.ndarray, y: np.ndarray) -> np.ndarray:
            weights = np.full(X.shape[1] // SIZE, np.sqrt(SIZE))
            model = skglm.GroupLasso(
                SIZE, alpha, weights=weights, fit_intercept=False, tol=TOL, max_iter=1000
            )
            return model.fit(X, y).coef_

        out["skglm GroupLasso"] = fit_skglm
    return out


def fit_rows(X: np.ndarray, y: np.ndarray, repeats: int) -> None:
    grad = np.linalg.norm((X.T @ y / len(y)).reshape(-1, SIZE), axis=1)
    alpha_max = float(grad.max() / np.sqrt(SIZE))
    print(f"  {'fit':<42}{'seconds':>9}{'objective above best':>22}{'KKT':>10}{'groups':>8}")
    for share in (0.5, 0.1, 0.02):
        alpha = share * alpha_max
        fits = solvers(alpha)
        for fit in fits.values():  # warm-up: skglm's compilation, torch's first calls
            fit(X[:50], y[:50])
        results = {name: best_time(lambda f=fit: f(X, y), repeats) for name, fit in fits.items()}
        values = {name: objective(X, y, coef, alpha) for name, (_, coef) in results.items()}
        low = min(values.values())
        for name, (seconds, coef) in results.items():
            kept = int(np.count_nonzero(np.linalg.norm(coef.reshape(-1, SIZE), axis=1)))
            above = (values[name] - low) / low
            print(
                f"  {name + f' at {share:g} alpha_max':<42}{seconds:>9.3f}{above:>22.1e}"
                f"{violation(X, y, coef, alpha):>10.1e}{kept:>8}"
            )


def cv_rows(X: np.ndarray, y: np.ndarray) -> None:
    print(f"  {'5-fold CV, 30 alphas':<42}{'seconds':>9}{'vs LassoCV':>12}")
    rows = {
        "shrinkage LassoCV": sh.LassoCV(alphas=30, cv=5, fit_intercept=False),
        "shrinkage GroupLassoCV": sh.GroupLassoCV(
            groups=SIZE, alphas=30, cv=5, fit_intercept=False
        ),
    }
    times = {name: best_time(lambda est=est: est.fit(X, y), 1)[0] for name, est in rows.items()}
    for name, seconds in times.items():
        print(f"  {name:<42}{seconds:>9.2f}{seconds / times['shrinkage LassoCV']:>11.2f}x")


def multitask_rows(n: int, p: int, tasks: int, repeats: int) -> None:
    """``MultiTaskLasso`` (the group lasso over the rows of ``W``) and its CV, shrinkage's
    against scikit-learn's, at ``tol=1e-6`` (the fits) and the default 1e-4 (the CV)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, p))
    W = np.zeros((p, tasks))
    W[:10] = rng.normal(size=(10, tasks))
    Y = X @ W + 0.5 * rng.normal(size=(n, tasks))
    alpha_max = float(np.linalg.norm(X.T @ (Y - Y.mean(axis=0)) / n, axis=1).max())
    print(f"\n{n} x {p}, {tasks} tasks")
    print(f"  {'MultiTaskLasso':<42}{'seconds':>9}{'vs shrinkage':>14}{'max |coef diff|':>17}")
    for share in (0.3, 0.1, 0.03):
        alpha = share * alpha_max
        pair = {
            name: best_time(lambda cls=cls, a=alpha: cls(alpha=a, tol=1e-6).fit(X, Y), repeats)
            for name, cls in (("shrinkage", sh.MultiTaskLasso), ("scikit-learn", sk.MultiTaskLasso))
        }
        ours, theirs = pair["shrinkage"], pair["scikit-learn"]
        diff = float(np.abs(ours[1].coef_ - theirs[1].coef_).max())
        for name, (seconds, _) in pair.items():
            label = f"{name} at {share:g} alpha_max"
            print(f"  {label:<42}{seconds:>9.3f}{seconds / ours[0]:>13.2f}x{diff:>17.1e}")
    for name, cls in (("shrinkage", sh.MultiTaskLassoCV), ("scikit-learn", sk.MultiTaskLassoCV)):
        seconds, model = best_time(lambda cls=cls: cls(cv=3, alphas=20).fit(X, Y), 1)
        label = f"{name} CV, 3 folds x 20 alphas"
        print(f"  {label:<42}{seconds:>9.3f}{'':>14}   alpha_ {model.alpha_:.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per fit; the best counts")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    problems = [(200, 40), (100, 500)] if args.quick else [(10000, 500), (500, 5000)]
    print(f"torch {torch.__version__}, {args.threads} threads, tol={TOL}, groups of {SIZE}")
    for n, p in problems:
        X, y = data(n, p)
        print(f"\n{n} x {p}")
        fit_rows(X, y, args.repeats)
        cv_rows(X, y)
    multitask_rows(*((100, 400, 3) if args.quick else (300, 3000, 3)), args.repeats)


if __name__ == "__main__":
    main()
