"""GLM fits on features near zero and far from it: shrinkage against scikit-learn.

Features far from zero (ages, prices, years) make the intercept's column of ones nearly
collinear with theirs. A solver that works on the raw columns then meets a badly conditioned
problem; shrinkage centres the features for its inner solves (the answer is the same). This
script fits, side by side in one run and on the same data:

* ``PoissonRegressor``, ``GammaRegressor`` and ``TweedieRegressor(power=1.5)`` with an L2
  penalty (``l1_ratio=0``, scikit-learn's model), shrinkage's against scikit-learn's
  ``lbfgs`` and ``newton-cholesky`` solvers, with the largest coefficient difference;
* the same with an Elastic-Net penalty (``l1_ratio=0.5``, shrinkage only);
* ``PoissonRegressorCV(l1_ratio=0.5)`` (5 folds, 30 alphas);

each on ``n x p`` standardized features (``shift 0``) and on the same features plus 100
(``shift 100``). Each time is the best of ``--repeats`` runs.

    python benchmarks/glm_fit.py
    python benchmarks/glm_fit.py --n 2000 --p 20 --repeats 3
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import numpy as np
import torch
from sklearn import linear_model as sk
from sklearn.exceptions import ConvergenceWarning

from shrinkage import linear as sh
from timing import best_time

FAMILIES: dict[str, tuple[type, type, dict[str, Any]]] = {
    "poisson": (sh.PoissonRegressor, sk.PoissonRegressor, {}),
    "gamma": (sh.GammaRegressor, sk.GammaRegressor, {}),
    "tweedie": (sh.TweedieRegressor, sk.TweedieRegressor, {"power": 1.5}),
}


def data(family: str, n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardized features and a target of the family whose log-mean is linear in the
    first three features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    mu = np.exp(0.5 + X[:, :3] @ np.array([0.3, -0.2, 0.1]))
    if family == "poisson":
        return X, rng.poisson(mu).astype(float)
    if family == "gamma":
        return X, rng.gamma(2.0, mu / 2.0)
    return X, rng.poisson(mu) * rng.gamma(2.0, 0.5, size=n)


def rows(family: str, n: int, p: int, shift: float, repeats: int) -> list[str]:
    ours_cls, theirs_cls, kwargs = FAMILIES[family]
    X, y = data(family, n, p)
    X = X + shift
    alpha, tol = 1e-3, 1e-8
    t_ours, ours = best_time(lambda: ours_cls(alpha=alpha, tol=tol, **kwargs).fit(X, y), repeats)
    out = [f"  {family:8s} shift {shift:>5g}  l1_ratio=0    shrinkage {t_ours:8.3f} s"]
    for solver in ("lbfgs", "newton-cholesky"):
        theirs_fit = theirs_cls(alpha=alpha, tol=tol, solver=solver, max_iter=10_000, **kwargs)
        t, theirs = best_time(lambda m=theirs_fit: m.fit(X, y), repeats)
        diff = float(np.max(np.abs(ours.coef_ - theirs.coef_)))
        out.append(
            f"{'':33s}scikit-learn {solver:15s} {t:8.3f} s  ({t / t_ours:6.1f}x)  "
            f"max |coef diff| {diff:.1e}"
        )
    enet = ours_cls(alpha=alpha, l1_ratio=0.5, tol=tol, **kwargs)
    t_enet, fitted = best_time(lambda: enet.fit(X, y), repeats)
    out.append(
        f"{'':20s}l1_ratio=0.5  shrinkage {t_enet:8.3f} s  "
        f"({np.count_nonzero(fitted.coef_)} of {p} nonzero, {fitted.n_iter_} Newton steps)"
    )
    return out


def cv_row(n: int, p: int, shift: float) -> str:
    X, y = data("poisson", n, p)
    model = sh.PoissonRegressorCV(l1_ratio=0.5, alphas=30, cv=5)
    t, fitted = best_time(lambda: model.fit(X + shift, y), 1)
    return f"  PoissonRegressorCV(0.5) shift {shift:>5g}: {t:8.3f} s, alpha_ {fitted.alpha_:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="samples (default 1000)")
    parser.add_argument("--p", type=int, default=10, help="features (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per time (default 3)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; n={args.n}, p={args.p}")
    print("(Nx): scikit-learn's time over shrinkage's, both measured in this run")
    for family in FAMILIES:
        for shift in (0.0, 100.0):
            print("\n".join(rows(family, args.n, args.p, shift, args.repeats)))
    for shift in (0.0, 100.0):
        print(cv_row(args.n, args.p, shift))


if __name__ == "__main__":
    main()
