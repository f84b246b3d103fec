"""Tuning against a grid: ``shrinkage tune`` (Optuna, 30 trials) against the 100-lam path
that ``shrinkage path`` computes, on digits with L1, side by side in one run.

Both use the same split (seeded), the same MLP (64-256-256-10, Adam) and the same dense
start (60 epochs without penalty); a path point trains 10 epochs from the previous point, a
trial 10 epochs from the dense network, at the lam (and, by default, the learning rate of
those epochs) the sampler draws, pruned when it trails the median. Each side's time counts
everything it computes, the dense network included. The score is the validation accuracy.

    python benchmarks/tune_quality.py
    python benchmarks/tune_quality.py --trials 30 --sampler-seeds 0 1 2 --workers 1 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from shrinkage.experiments import Settings, Store, run_experiment
from shrinkage.experiments.tune import TuneConfig, sqlite_url, tune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--penalty", default="l1")
    parser.add_argument("--n-lambdas", type=int, default=100)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--sampler-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--search", default=None, help="e.g. lam (default: all that apply)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data=args.data, penalties=("none", args.penalty))
        grid_settings = Settings(**{**settings.__dict__, "n_lambdas": args.n_lambdas})
        with Store(Path(tmp) / "path.db") as store:
            t0 = time.perf_counter()
            run_id = run_experiment(grid_settings, store, command="path")
            path_seconds = time.perf_counter() - t0
            points = store.points(run_id, args.penalty, 0)
        best = max(points, key=lambda p: p.val_score or 0.0)
        print(
            f"path: {len(points)} of {args.n_lambdas} lams computed (it stops once every input "
            f"is dropped), best validation accuracy {best.val_score:.4f} at lam "
            f"{best.lam:.3g}, {path_seconds:.1f} s"
        )
        print(
            f"{'workers':>7} {'seed':>4} {'trials':>14} {'best val':>9} {'- path':>7} "
            f"{'seconds':>8} {'time / path':>11}  best params"
        )
        search = None if args.search is None else tuple(args.search.split(","))
        for workers in args.workers:
            for seed in args.sampler_seeds:
                config = TuneConfig(
                    settings,
                    args.penalty,
                    sqlite_url(Path(tmp) / f"tune-{workers}-{seed}.db"),
                    study="bench",
                    trials=args.trials,
                    workers=workers,
                    search=search,
                    sampler_seed=seed,
                )
                t0 = time.perf_counter()
                outcome = tune(config)
                seconds = time.perf_counter() - t0
                counts = outcome.counts
                done = f"{counts.get('COMPLETE', 0)} done {counts.get('PRUNED', 0)} pruned"
                value = outcome.best["value"]
                params = ", ".join(f"{k}={v:.3g}" for k, v in outcome.best["params"].items())
                print(
                    f"{workers:>7} {seed:>4} {done:>14} {value:>9.4f} "
                    f"{100 * (value - (best.val_score or 0.0)):>+6.2f}p {seconds:>8.1f} "
                    f"{seconds / path_seconds:>11.2f}  {params}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
