"""Time to a relative duality gap: shrinkage against scikit-learn, skglm, celer and glum on
benchopt's Lasso and L1-logistic problems, with one shared gap function.

Problems (``--scale`` multiplies both sizes): a simulated correlated design as benchopt's
(``1000 x 2000``, AR(1) correlation 0.6 between neighbouring features), our tall
(``20000 x 500``), wide (``2000 x 20000``) and sparse (``20000 x 100000`` CSR at 0.1 %)
designs; targets from 20 true features (signs of them, for the logistic problem); no
intercept; ``lambda = 0.5, 0.1, 0.05 lambda_max``.

Protocol, as benchopt's: float64; each solver in a fresh process with the same thread count
(``--threads``, set for torch, BLAS and numba alike); every solver's first call (skglm's
compilation, torch's start-up) made on a tiny problem of the same kind before any timing;
each solver run from zero at a sequence of its own tolerances, each run timed alone
``--repeat`` times (default 3) and its time the median, so that every solver gets as many
timings, whether its first tolerance already reaches the smallest gap or not; with
``--processes k``, all that in ``k`` fresh processes per solver, the solvers interleaved, and
each tolerance's time the median over them (a process can be slower than the next by a
third, all its runs alike, as its memory happens to be laid out); the
relative duality gap ``(P(w) - D(theta)) / P(w)`` computed by this script on every returned
``w`` (the dual point is the scaled residual, as in celer). The time to a gap ``g`` is that
of the fastest run that reached it; ``-`` means no run reached it within ``--budget``
seconds.

skglm, celer and glum are benchmark-only (``pip install skglm celer glum``); a missing one is
skipped and said so.

    python benchmarks/time_to_gap.py --scale 0.2 --budget 10
    python benchmarks/time_to_gap.py --plot docs/figures/time_to_gap.png
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
import warnings
from typing import Any

import numpy as np
from scipy import sparse

PROBLEMS = {
    "correlated": (1000, 2000),
    "tall": (20000, 500),
    "wide": (2000, 20000),
    "sparse": (20000, 100000),
}
FRACTIONS = (0.5, 0.1, 0.05)
GAPS = (1e-4, 1e-6, 1e-8)
TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12)
SOLVERS = ("shrinkage", "scikit-learn", "skglm", "celer", "glum")
MODULES = {"skglm": "skglm", "celer": "celer", "glum": "glum"}


def make_problem(name: str, datafit: str, scale: float) -> tuple[Any, np.ndarray]:
    """``(X, y)`` of problem ``name``, the same in every process (seed 0)."""
    n, p = (max(20, int(size * scale)) for size in PROBLEMS[name])
    rng = np.random.default_rng(0)
    if name == "sparse":
        # a Generator, not a seed: with a seed scipy permutes all n p cells (minutes)
        X: Any = sparse.random(n, p, density=0.001, format="csr", random_state=rng)
        X.data = rng.standard_normal(X.nnz)
    elif name == "correlated":
        X = np.empty((n, p))
        X[:, 0] = rng.standard_normal(n)
        for j in range(1, p):
            X[:, j] = 0.6 * X[:, j - 1] + 0.8 * rng.standard_normal(n)
    else:
        X = rng.standard_normal((n, p))
    w = np.zeros(p)
    w[rng.choice(p, size=min(20, p), replace=False)] = rng.standard_normal(min(20, p))
    signal = np.asarray(X @ w).ravel()
    noise = 0.5 * signal.std() * rng.standard_normal(n)
    y = signal + noise if datafit == "lasso" else np.sign(signal + noise + 1e-12)
    return X, y


def lambda_max(X: Any, y: np.ndarray, datafit: str) -> float:
    """The smallest ``lambda`` at which ``w = 0`` is optimal."""
    product = np.abs(np.asarray(X.T @ y).ravel()) / X.shape[0]
    return float(product.max()) / (1.0 if datafit == "lasso" else 2.0)


def relative_gap(X: Any, y: np.ndarray, w: np.ndarray, lam: float, datafit: str) -> float:
    """``(P(w) - D(theta)) / P(w)`` with the dual point the residual scaled into the feasible
    set ``||X^T theta||_inf <= n lam`` (the same function for every solver)."""
    n = X.shape[0]
    Xw = np.asarray(X @ w).ravel()
    if datafit == "lasso":
        r = y - Xw
        primal = r @ r / (2 * n) + lam * np.abs(w).sum()
        s = min(1.0, n * lam / max(np.abs(np.asarray(X.T @ r)).max(), 1e-300))
        dual = s * (r @ y) / n - s * s * (r @ r) / (2 * n)
    else:
        margin = y * Xw
        primal = np.logaddexp(0.0, -margin).mean() + lam * np.abs(w).sum()
        a = 1.0 / (1.0 + np.exp(margin))  # sigmoid(-margin)
        s = min(1.0, n * lam / max(np.abs(np.asarray(X.T @ (y * a))).max(), 1e-300))
        a = np.clip(s * a, 0.0, 1.0)
        entropy = np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0)), 0.0) + np.where(
            a < 1, (1 - a) * np.log(np.where(a < 1, 1 - a, 1.0)), 0.0
        )
        dual = -entropy.mean()
    return float(max(primal - dual, 0.0) / primal)


def _estimator(solver: str, datafit: str, lam: float, n: int, tol: float) -> Any:
    """The solver's estimator for ``mean loss + lam * ||w||_1`` without intercept."""
    C = 1.0 / (n * lam)
    if solver == "shrinkage":
        from shrinkage import linear

        if datafit == "lasso":
            return linear.Lasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=10**6)
        return linear.LogisticRegression(
            C=C, l1_ratio=1.0, fit_intercept=False, tol=tol, max_iter=10**6
        )
    if solver == "scikit-learn":
        from sklearn import linear_model

        if datafit == "lasso":
            return linear_model.Lasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=10**6)
        return linear_model.LogisticRegression(
            C=C, l1_ratio=1.0, solver="liblinear", fit_intercept=False, tol=tol, max_iter=10**6
        )
    if solver == "skglm":
        import skglm

        if datafit == "lasso":
            return skglm.Lasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=10**4)
        return skglm.SparseLogisticRegression(
            alpha=lam, fit_intercept=False, tol=tol, max_iter=10**4
        )
    if solver == "celer":
        import celer

        if datafit == "lasso":
            return celer.Lasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=10**4)
        return celer.LogisticRegression(C=C, fit_intercept=False, tol=tol, max_iter=10**4)
    import glum

    family = "normal" if datafit == "lasso" else "binomial"
    return glum.GeneralizedLinearRegressor(
        family=family, alpha=lam, l1_ratio=1.0, fit_intercept=False, gradient_tol=tol,
        max_iter=10**4,
    )  # fmt: skip


def _fit(solver: str, datafit: str, X: Any, y: np.ndarray, lam: float, tol: float) -> Any:
    target = y if datafit == "lasso" or solver != "glum" else (y > 0).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _estimator(solver, datafit, lam, X.shape[0], tol).fit(X, target)
    return np.asarray(model.coef_, dtype=np.float64).ravel()


def worker(spec: dict[str, Any]) -> None:
    """Run one solver on one problem in this fresh process; print each run as a JSON line
    ``[tol, seconds, gap]`` as it ends."""
    if spec["solver"] == "shrinkage":
        import torch

        torch.set_num_threads(spec["threads"])
    X, y = make_problem(spec["problem"], spec["datafit"], spec["scale"])
    lam = spec["fraction"] * lambda_max(X, y, spec["datafit"])
    # every solver's first call outside the timing, on a small problem of the same kind
    # (dense or sparse): skglm's compilation, torch's start-up, first use of a code path
    small_X, small_y = make_problem(spec["problem"], spec["datafit"], 0.005)
    small_lam = 0.5 * lambda_max(small_X, small_y, spec["datafit"])
    _fit(spec["solver"], spec["datafit"], small_X, small_y, small_lam, 1e-6)
    runs, spent = [], 0.0
    for tol in TOLERANCES:
        times = []
        for _ in range(spec["repeat"]):  # the same number of timings for every solver
            start = time.perf_counter()
            w = _fit(spec["solver"], spec["datafit"], X, y, lam, tol)
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))
        gap = relative_gap(X, y, w, lam, spec["datafit"])
        runs.append([tol, seconds, gap])
        print(json.dumps([tol, seconds, gap]), flush=True)
        spent += sum(times)
        if gap <= min(GAPS) * 0.1 or spent > spec["budget"]:
            break


def run(spec: dict[str, Any]) -> list[list[float]] | None:
    """:func:`worker` in a fresh process with ``spec["threads"]`` threads everywhere, stopped
    (``None``) when a single run takes far past the budget."""
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[key] = str(spec["threads"])
    limit = 4 * spec["budget"] + 60
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True, text=True, env=env, check=False, timeout=limit,
        )  # fmt: skip
        stdout, failed = out.stdout, out.returncode != 0 and out.stderr.strip().splitlines()[-1:]
    except subprocess.TimeoutExpired as stopped:
        print(f"  {spec['solver']} stopped: a run took past {limit:g} s (earlier runs kept)")
        partial = stopped.stdout or b""
        stdout = partial.decode() if isinstance(partial, bytes) else partial
        failed = False
    if failed:
        print(f"  {spec['solver']} failed: {failed}", flush=True)
    lines = [line for line in stdout.splitlines() if line.startswith("[")]
    return [json.loads(line) for line in lines] or None


def median_runs(processes: list[list[list[float]] | None]) -> list[list[float]] | None:
    """One solver's runs in several processes as one list: for each tolerance that every
    process ran, the median time and the largest gap."""
    done = [runs for runs in processes if runs]
    if not done:
        return None
    out = []
    for i, (tol, _, _) in enumerate(done[0]):
        same = [runs[i] for runs in done if len(runs) > i and runs[i][0] == tol]
        if len(same) == len(done):
            out.append([tol, float(np.median([r[1] for r in same])), max(r[2] for r in same)])
    return out or None


def time_to(runs: list[list[float]] | None, gap: float) -> float | None:
    """The shortest time of a run that reached ``gap``."""
    reached = [seconds for _, seconds, g in runs or [] if g <= gap]
    return min(reached) if reached else None


def measure_row(
    args: argparse.Namespace,
    solvers: list[str],
    case: tuple[str, str, float],
    results: dict[tuple[str, str, float, str], list[list[float]] | None],
) -> list[str]:
    """Every solver on one ``(datafit, problem, fraction)``, in ``args.processes`` rounds of
    fresh processes (the solvers interleaved: a slow spell of the machine hits them all);
    their runs go to ``results``, and each solver's times to the three gaps are returned."""
    datafit, problem, fraction = case
    common = {
        "problem": problem, "datafit": datafit, "fraction": fraction, "scale": args.scale,
        "threads": args.threads, "budget": args.budget, "repeat": args.repeat,
    }  # fmt: skip
    skip_glum = problem == "sparse" and args.scale > 0.2
    measured = [s for s in solvers if not (s == "glum" and skip_glum)]
    processes: dict[str, list[list[list[float]] | None]] = {s: [] for s in measured}
    for _ in range(args.processes):
        for solver in measured:
            processes[solver].append(run({"solver": solver, **common}))
    row = []
    for solver in solvers:
        if solver not in processes:
            row.append("glum skipped (its sparse fits take minutes at this size)")
            continue
        runs = results[(*case, solver)] = median_runs(processes[solver])
        times = [time_to(runs, g) for g in GAPS]
        row.append(f"{solver} " + "/".join("-" if t is None else f"{t:.3g}" for t in times))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per solver run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per tolerance; their median is its time"
    )
    parser.add_argument(
        "--processes", type=int, default=1,
        help="fresh processes per solver, interleaved; each tolerance's time is the median",
    )  # fmt: skip
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    parser.add_argument("--datafits", nargs="+", default=["lasso", "logreg"])
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=SOLVERS)
    parser.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    parser.add_argument("--plot", help="write the gap-against-time figure to this PNG")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    solvers = [s for s in args.solvers if s not in MODULES or importlib.util.find_spec(MODULES[s])]
    for missing in sorted(set(args.solvers) - set(solvers)):
        print(f"{missing} is not installed: skipped (pip install {MODULES[missing]})")
    results: dict[tuple[str, str, float, str], list[list[float]] | None] = {}
    print(
        f"time (s) to a relative duality gap of {', '.join(f'{g:g}' for g in GAPS)}; "
        f"{args.threads} thread(s), scale {args.scale}"
    )
    for datafit in args.datafits:
        for problem in args.problems:
            for fraction in args.fractions:
                row = measure_row(args, solvers, (datafit, problem, fraction), results)
                print(
                    f"{datafit:6} {problem:10} {fraction:4g} lmax | " + " | ".join(row), flush=True
                )
    if args.plot:
        plot(results, solvers, args.plot)


def plot(results: dict[Any, Any], solvers: list[str], path: str) -> None:
    """Relative gap (log scale) against time (linear: each panel's times span less than a
    decade), one panel per datafit and problem at 0.1 lambda_max."""
    import matplotlib.figure

    keys = sorted({(d, p) for d, p, f, _ in results if f == 0.1})
    figure = matplotlib.figure.Figure(figsize=(4 * len(keys), 3.4))
    for i, (datafit, problem) in enumerate(keys):
        ax = figure.add_subplot(1, len(keys), i + 1)
        for solver in solvers:
            runs = results.get((datafit, problem, 0.1, solver)) or []
            if runs:
                points = sorted((s, max(g, 1e-16)) for _, s, g in runs)
                ax.semilogy(*zip(*points, strict=True), marker="o", label=solver)
            else:
                ax.plot([], [], label=f"{solver} (no run ended)")
        ax.set_title(f"{datafit}, {problem}, 0.1 lambda_max", fontsize=9)
        ax.set_xlabel("seconds")
        ax.set_ylabel("relative duality gap")
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
