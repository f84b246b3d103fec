"""The neural estimators on data as it ships: ``load_diabetes``, whose inputs scikit-learn
scales to a standard deviation of 0.048 and whose target is in the hundreds.

For each seed, one 75 / 25 split; on it, side by side: ``MLPRegressor(penalty="group_inputs")
.fit_path`` with each selection rule (the estimator standardizes its inputs and target
inside), ``LinearRegression`` and ``LassoCV(cv=5)``. Printed: test R^2 and the features each
model uses.

    python benchmarks/raw_diabetes.py [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LassoCV, LinearRegression
from sklearn.model_selection import train_test_split

from shrinkage.neural import MLPRegressor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    X, y = load_diabetes(return_X_y=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; test R^2 (features)")
    names = ["MLP group_inputs, min", "MLP group_inputs, 1se", "LinearRegression", "LassoCV"]
    print(f"{'seed':>4}  " + "  ".join(f"{n:>24}" for n in names))
    scores: dict[str, list[float]] = {n: [] for n in names}
    for seed in args.seeds:
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed)
        cells = []
        for name, rule in zip(names[:2], ("min", "1se"), strict=True):
            mlp = MLPRegressor(penalty="group_inputs", selection_rule=rule, random_state=seed)
            mlp.fit_path(X_tr, y_tr)
            scores[name].append(mlp.score(X_te, y_te))
            cells.append(f"{scores[name][-1]:.3f} ({len(mlp.selected_features_)})")
        for name, model in zip(names[2:], (LinearRegression(), LassoCV(cv=5)), strict=True):
            model.fit(X_tr, y_tr)
            scores[name].append(model.score(X_te, y_te))
            cells.append(f"{scores[name][-1]:.3f} ({int(np.count_nonzero(model.coef_))})")
        print(f"{seed:>4}  " + "  ".join(f"{c:>24}" for c in cells))
    print(f"{'mean':>4}  " + "  ".join(f"{np.mean(scores[n]):>24.3f}" for n in names))


if __name__ == "__main__":
    main()
