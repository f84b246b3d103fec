"""Feature selection in a neural network: shrinkage's group-lasso path against scikit-learn's
LassoCV and LassoNet, side by side in one run on the same data.

Data: ``make_friedman1(n_samples=2000, n_features=50, noise=1.0)`` for random states 0 to 4,
standardized. Features 0 to 4 are informative (``10 sin(pi x0 x1) + 20 (x2 - 0.5)^2 + 10 x3 +
5 x4``), the other 45 are noise; feature 2 acts only through a square, which a linear model
cannot see.

* shrinkage: ``MLPRegressor(penalty="group_inputs").fit_path(X, y)``, the "1se" point;
* scikit-learn: ``LassoCV(cv=5)``, its nonzero coefficients;
* LassoNet (``pip install lassonet``, benchmark only): ``LassoNetRegressor().path(X, y)``,
  the point of best validation loss, and whether some point within 1% of that loss selects
  exactly features 0 to 4.

    python benchmarks/feature_selection.py
    python benchmarks/feature_selection.py --seeds 0 1 --skip-lassonet
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import make_friedman1
from sklearn.linear_model import LassoCV
from sklearn.preprocessing import StandardScaler

from shrinkage.neural import MLPRegressor

TRUE = set(range(5))


def summary(selected: set[int]) -> tuple[int, int, int, bool]:
    tp = len(selected & TRUE)
    return len(selected), tp, len(selected - TRUE), selected == TRUE


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-lassonet", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    use_lassonet = importlib.util.find_spec("lassonet") is not None and not args.skip_lassonet
    rows: list[tuple[str, int, float, tuple[int, int, int, bool], str]] = []
    print(f"{'method':<34}{'seed':>5}{'seconds':>9}{'kept':>6}{'TP':>4}{'FP':>4}  exact  selected")
    for seed in args.seeds:
        X, y = make_friedman1(n_samples=2000, n_features=50, noise=1.0, random_state=seed)
        X = StandardScaler().fit_transform(X)

        start = time.perf_counter()
        model = MLPRegressor(penalty="group_inputs", selection_rule="1se", random_state=seed)
        model.fit_path(X, y)
        ours = set(int(j) for j in model.selected_features_)
        rows.append(
            (
                "shrinkage MLPRegressor.fit_path 1se",
                seed,
                time.perf_counter() - start,
                summary(ours),
                "",
            )
        )

        start = time.perf_counter()
        lasso = LassoCV(cv=5).fit(X, y)
        linear = set(int(j) for j in np.flatnonzero(lasso.coef_))
        rows.append(
            ("scikit-learn LassoCV", seed, time.perf_counter() - start, summary(linear), "")
        )

        if use_lassonet:
            from lassonet import LassoNetRegressor

            start = time.perf_counter()
            history = LassoNetRegressor(verbose=0, random_state=seed, torch_seed=seed).path(X, y)
            seconds = time.perf_counter() - start
            best = min(history, key=lambda h: h.val_loss)
            chosen = set(int(j) for j in torch.nonzero(best.selected).flatten())
            near = [h for h in history if h.val_loss <= 1.01 * best.val_loss]
            exact_near = any(
                set(int(j) for j in torch.nonzero(h.selected).flatten()) == TRUE for h in near
            )
            note = f"(a point within 1% of best: exactly 0-4 = {exact_near})"
            rows.append(("LassoNet path, best val loss", seed, seconds, summary(chosen), note))
        for name, s, seconds, (kept, tp, fp, exact), note in rows[-3 if use_lassonet else -2 :]:
            flag = "yes" if exact else "no"
            print(f"{name:<34}{s:>5}{seconds:>9.1f}{kept:>6}{tp:>4}{fp:>4}  {flag:<5}  {note}")

    print("\nsummary over seeds", args.seeds)
    for name in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == name]
        exact = sum(r[3][3] for r in mine)
        seconds = float(np.mean([r[2] for r in mine]))
        print(f"  {name:<34} exactly 0-4 in {exact}/{len(mine)} seeds, mean {seconds:.1f} s")
    if use_lassonet:
        ours_t = np.mean([r[2] for r in rows if r[0].startswith("shrinkage")])
        theirs_t = np.mean([r[2] for r in rows if r[0].startswith("LassoNet")])
        print(f"  time shrinkage / LassoNet: {ours_t / theirs_t:.2f}")


if __name__ == "__main__":
    main()
