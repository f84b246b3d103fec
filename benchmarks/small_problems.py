"""The fits a new user tries first: small problems, shrinkage against scikit-learn.

Each case is fitted with scikit-learn's default settings by both libraries, side by side in
this one run on the same data:

* ``load_diabetes`` (442 x 10): ``LassoCV``, ``ElasticNetCV(l1_ratio=0.5)`` (5 folds, 100
  alphas) and one ``Lasso(alpha=0.1)``;
* ``load_breast_cancer`` standardized (569 x 30): an L1 ``LogisticRegression(C=0.5)``
  (scikit-learn's ``saga``, its solver that leaves the intercept unpenalized, with
  ``max_iter=10000``: at its default of 100 it stops far from the solution);
* ``make_regression`` 200 x 2000 and 5000 x 50: ``LassoCV``.

Each fit runs in a fresh process, after a first fit on the same data and a garbage
collection, and is timed ``REPEATS`` times, the best counting (the protocol of
``linear_path.py``'s CV rows). Printed: the seconds, scikit-learn's time over ours (above 1:
shrinkage is faster), and each answer against the converged one, scikit-learn's fit at
``tol=1e-10`` (untimed): the ``alpha_`` each CV chose, or each fit's largest coefficient error.

    python benchmarks/small_problems.py
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn import linear_model as sk
from sklearn.datasets import load_breast_cancer, load_diabetes, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from shrinkage import linear as sh
from timing import best_time

REPEATS = 7
LIBRARIES = {"shrinkage": sh, "scikit-learn": sk}


def _cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _regression(n: int, p: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def data() -> tuple[np.ndarray, np.ndarray]:
        X, y = make_regression(n, p, n_informative=min(20, p // 5), noise=5.0, random_state=0)
        return X, y

    return data


CASES: dict[str, tuple[Callable[[], Any], str, dict[str, Any]]] = {
    "diabetes LassoCV": (lambda: load_diabetes(return_X_y=True), "LassoCV", {}),
    "diabetes ElasticNetCV(0.5)": (
        lambda: load_diabetes(return_X_y=True), "ElasticNetCV", {"l1_ratio": 0.5},
    ),
    "diabetes Lasso(alpha=0.1)": (lambda: load_diabetes(return_X_y=True), "Lasso", {"alpha": 0.1}),
    "breast_cancer L1 logistic": (
        _cancer, "LogisticRegression",
        {"l1_ratio": 1.0, "C": 0.5, "solver": "saga", "max_iter": 10_000},
    ),
    "200 x 2000 LassoCV": (_regression(200, 2000), "LassoCV", {}),
    "5000 x 50 LassoCV": (_regression(5000, 50), "LassoCV", {}),
}  # fmt: skip
"""``name: (data, estimator class name, its parameters)``, the same for both libraries."""


def job(case: str, library: str, threads: int) -> dict[str, Any]:
    """One case with one library, in this (fresh) process: its best time and its answer."""
    torch.set_num_threads(threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    data, name, params = CASES[case]
    X, y = data()
    make = lambda: getattr(LIBRARIES[library], name)(**params)  # noqa: E731
    make().fit(X, y)  # loads the code and starts the threads outside the timing
    gc.collect()
    seconds, fitted = best_time(lambda: make().fit(X, y), REPEATS)
    if hasattr(fitted, "alpha_"):
        return {"seconds": seconds, "alpha": float(fitted.alpha_)}
    return {"seconds": seconds, "coef": np.ravel(fitted.coef_).tolist()}


def run_case(case: str, threads: int) -> dict[str, dict[str, Any]]:
    """Both libraries on ``case``, each in its own process."""
    results = {}
    for library in LIBRARIES:
        command = [sys.executable, __file__, "--job", case, library, "--threads", str(threads)]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        results[library] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def against_converged(case: str, results: dict[str, dict[str, Any]]) -> str:
    """Both answers beside the converged one (scikit-learn's at ``tol=1e-10``): the three
    ``alpha_``, or each fit's largest coefficient error."""
    data, name, params = CASES[case]
    X, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        converged = getattr(sk, name)(**{**params, "tol": 1e-10, "max_iter": 100_000}).fit(X, y)
    ours, theirs = results["shrinkage"], results["scikit-learn"]
    if "alpha" in ours:
        return f"alpha_ {ours['alpha']:.4g} / {theirs['alpha']:.4g} / {converged.alpha_:.4g}"
    reference = np.ravel(converged.coef_)
    errors = [np.abs(np.asarray(r["coef"]) - reference).max() for r in (ours, theirs)]
    return f"coef error {errors[0]:.1e} / {errors[1]:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--job", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        case, library = args.job
        print(json.dumps(job(case, library, args.threads)))
        return
    print(f"{'case':28s} {'shrinkage':>10s} {'scikit-learn':>13s} {'ratio':>7s}  ours / theirs")
    for case in CASES:
        results = run_case(case, args.threads)
        ours, theirs = results["shrinkage"]["seconds"], results["scikit-learn"]["seconds"]
        answers = against_converged(case, results)
        line = f"{case:28s} {ours:9.4f}s {theirs:12.4f}s {theirs / ours:6.2f}x  {answers}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
