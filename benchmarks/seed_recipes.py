"""The recipes users learn from, side by side: the textbook penalty against shrinkage's.

The articles write, in PyTorch, ``Adam(lr=1e-3)`` and ``loss += 0.01 * sum|w|``, and in Keras
``Dense(..., kernel_regularizer=l1(0.01))`` compiled with ``'adam'``. Each recipe here is
trained twice from the same initial weights, batches and epochs: once as written (the
penalty a loss term) and once with shrinkage's default (PyTorch: ``Proximal(Adam(...),
Regularizer(...))``; Keras: ``shrinkage.keras.L1/L2(0.01)`` with ``ProximalAdam``), which
applies the same penalty by its proximal step with Adam's own element-wise step.

* the model: an MLP ``inputs -> 128 ReLU -> classes``, the penalty (strength ``--lam``) on
  the hidden kernel, as the tutorials put it (``--penalize hidden``, the default), or on both
  kernels (``both``); Adam, ``lr=1e-3``, batch 32, ``--epochs`` epochs (100);
* the data: digits (64 inputs, 10 classes, 75/25 split) and a wider problem,
  ``make_classification(6000 x 200, 20 informative, 5 classes, class_sep=1.5)`` (a test
  accuracy near 87 %), both standardized on the training part;
* the recipes: PyTorch L1 and L2, Keras L1 and L2 on the torch and JAX backends (each in a
  process of its own, as Keras picks its backend at import), three seeds each.

Printed for each run: the objective the user wrote down (mean cross-entropy on the training
set plus the penalty, in float64) after the last epoch, the hidden kernel's exact zeros and
entries below 1e-3, test accuracy, and dead inputs (features whose every weight is zero) and
dead neurons (hidden units whose every incoming weight is zero); then, for each recipe and seed, the
checks against its textbook twin: objective at most 1.02x, at least half of the weights the
textbook leaves below 1e-3 exactly zero (L1: an L2 penalty has no exact zeros at its optimum
but for inputs that carry no gradient), test accuracy at most one point lower.

With the hidden kernel alone penalized the objective has no minimizer. ReLU is positively
homogeneous, so scaling the hidden layer (kernel and bias) by ``c < 1`` and the output kernel
by ``1 / c`` leaves every prediction as it was and scales the penalty by ``c`` (L1) or ``c^2``
(L2): the infimum lies at a hidden kernel of zero, and the objective after a fixed number of
epochs also measures how far a run has drifted towards it, and Adam's steps keep it moving:
the report gives, for each pair, how much each twin's objective moved over the last
``--late`` checkpoints (every 10th epoch) and the ratio at each (``docs/benchmarks.md``: for
L2 on the wide problem one run's objective moves by up to 1.8x over epochs 80 - 100).
``--penalize both`` compares at a problem with a minimizer: the rescaling then changes the
penalty both ways. ``--null`` also trains each textbook recipe a second time from initial
weights one float32 ulp away (``nextafter`` towards +inf) and puts it through the same
objective and accuracy checks: what the recipe's own figures move by when nothing but rounding
changes, the floor under any comparison of two different runs.

    python benchmarks/seed_recipes.py                       # everything (8 - 20 minutes)
    python benchmarks/seed_recipes.py --epochs 20 --seeds 1 --parts torch
    python benchmarks/seed_recipes.py --null --json runs.json   # and the one-ulp twins
    python benchmarks/seed_recipes.py --report runs.json        # that run's report again
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

PARTS = ["torch", "keras-torch", "keras-jax"]
HIDDEN, LR, BATCH = 128, 1e-3, 32


@dataclass(frozen=True)
class Run:
    """One training: what it was, and the figures of its hidden kernel and predictions."""

    framework: str
    data: str
    penalty: str
    how: str  # "textbook", "shrinkage", or "nudged" (the textbook's, one ulp away)
    seed: int
    objective: float
    zeros: float
    small: float
    accuracy: float
    dead_inputs: int
    dead_neurons: int
    small_zeroed: float  # of the textbook twin's entries below 1e-3, the fraction zero here
    late: tuple[float, ...] = ()  # the objective at the checkpoints (last: ``objective``)


def datasets() -> dict[str, tuple[np.ndarray, ...]]:
    """Each problem as ``x_train, x_test, y_train, y_test`` (float32 inputs, int labels)."""
    x, y = load_digits(return_X_y=True)
    wide_x, wide_y = make_classification(
        n_samples=6000, n_features=200, n_informative=20, n_redundant=0, n_classes=5,
        class_sep=1.5, random_state=0,
    )  # fmt: skip
    out = {}
    for name, (a, b) in {"digits": (x, y), "wide": (wide_x, wide_y)}.items():
        x_tr, x_te, y_tr, y_te = train_test_split(a, b, test_size=0.25, random_state=0, stratify=b)
        scaler = StandardScaler().fit(x_tr)
        out[name] = (
            scaler.transform(x_tr).astype("float32"),
            scaler.transform(x_te).astype("float32"),
            y_tr.astype("int64"),
            y_te.astype("int64"),
        )
    return out


def figures(
    kernels: list[np.ndarray],
    logits_train: np.ndarray,
    y_train: np.ndarray,
    penalty: str,
    lam: float,
) -> dict[str, float]:
    """The objective (float64, the penalty summed over the penalized ``kernels``), and the
    zeros, small entries and dead units of the hidden kernel ``kernels[0]``
    (``[inputs, hidden]``)."""
    z = logits_train.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    loss = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), y_train]))
    wide = [k.astype(np.float64) for k in kernels]
    term = sum(float(np.abs(k).sum() if penalty == "l1" else np.square(k).sum()) for k in wide)
    kernel = kernels[0]
    return {
        "objective": loss + lam * term,
        "zeros": float((kernel == 0).mean()),
        "small": float((np.abs(kernel) < 1e-3).mean()),
        "dead_inputs": int(np.all(kernel == 0, axis=1).sum()),
        "dead_neurons": int(np.all(kernel == 0, axis=0).sum()),
    }


def checkpoints(args: Any) -> list[int]:
    """The epochs after which the objective is recorded: every 10th of the last ``--late``
    tens, the last epoch among them (one run's objective moves from epoch to epoch; these show
    by how much)."""
    return sorted({max(1, args.epochs - 10 * k) for k in range(max(1, args.late))})


def torch_run(data: tuple[np.ndarray, ...], penalty: str, how: str, seed: int, args: Any) -> Any:
    """Train the PyTorch recipe; returns ``(kernels, training logits)`` at each checkpoint and
    the test accuracy."""
    import torch
    from torch import nn

    import shrinkage

    x_tr, x_te, y_tr, y_te = (torch.from_numpy(a) for a in data)
    torch.manual_seed(seed)
    classes = int(y_tr.max()) + 1
    model = nn.Sequential(nn.Linear(x_tr.shape[1], HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, classes))
    penalty_obj = shrinkage.L1(args.lam) if penalty == "l1" else shrinkage.L2(args.lam)
    penalized = [0, 2] if args.penalize == "both" else [0]  # the Linear layers' indices
    reg = shrinkage.Regularizer(model, {f"{i}.weight": penalty_obj for i in penalized})
    if how == "nudged":
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.nextafter(p, torch.full_like(p, float("inf"))))
    opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    if how == "shrinkage":
        opt = shrinkage.Proximal(opt, reg)
    order, snapshots, marks = torch.Generator().manual_seed(seed), [], checkpoints(args)
    for epoch in range(1, args.epochs + 1):
        for idx in torch.randperm(len(x_tr), generator=order).split(BATCH):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx])
            if how != "shrinkage":
                loss = loss + reg.penalty()
            loss.backward()
            opt.step()
        if epoch in marks:
            with torch.no_grad():
                kernels = [model[i].weight.T.numpy().copy() for i in penalized]
                snapshots.append((kernels, model(x_tr).numpy()))
    with torch.no_grad():
        accuracy = float((model(x_te).argmax(1) == y_te).float().mean())
    return snapshots, accuracy


def keras_run(data: tuple[np.ndarray, ...], penalty: str, how: str, seed: int, args: Any) -> Any:
    """Train the Keras recipe on the backend this process imported; returns what
    :func:`torch_run` returns."""
    import keras

    import shrinkage.keras as sk

    x_tr, x_te, y_tr, y_te = data
    if how != "shrinkage":
        regularizer = (keras.regularizers.l1 if penalty == "l1" else keras.regularizers.l2)(
            args.lam
        )
        optimizer: Any = "adam"
    else:
        regularizer = (sk.L1 if penalty == "l1" else sk.L2)(args.lam)
        optimizer = sk.ProximalAdam(LR)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((x_tr.shape[1],)),
            keras.layers.Dense(HIDDEN, activation="relu", kernel_regularizer=regularizer),
            keras.layers.Dense(
                int(y_tr.max()) + 1,
                kernel_regularizer=regularizer if args.penalize == "both" else None,
            ),
        ]
    )
    if how == "nudged":
        for weight in model.weights:
            value = keras.ops.convert_to_numpy(weight)
            weight.assign(np.nextafter(value, np.asarray(np.inf, value.dtype)))
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(True))
    layers = model.layers if args.penalize == "both" else model.layers[:1]
    snapshots, done = [], 0
    for mark in checkpoints(args):
        model.fit(x_tr, y_tr, initial_epoch=done, epochs=mark, batch_size=BATCH, verbose=0)
        kernels = [keras.ops.convert_to_numpy(layer.kernel) for layer in layers]
        snapshots.append((kernels, keras.ops.convert_to_numpy(model.predict(x_tr, verbose=0))))
        done = mark
    accuracy = float(
        (keras.ops.convert_to_numpy(model.predict(x_te, verbose=0)).argmax(1) == y_te).mean()
    )
    return snapshots, accuracy


def runs_of(framework: str, args: Any) -> list[Run]:
    """Every recipe of ``framework`` ("torch", or "keras" on this process's backend)."""
    train = torch_run if framework == "torch" else keras_run
    label = framework if framework == "torch" else f"keras-{os.environ['KERAS_BACKEND']}"
    out = []
    for name, data in datasets().items():
        for penalty in ("l1", "l2"):
            for seed in range(args.seeds):
                pair = {}
                for how in ("textbook", "shrinkage", "nudged")[: 3 if args.null else 2]:
                    snapshots, accuracy = train(data, penalty, how, seed, args)
                    figs = [figures(k, z, data[2], penalty, args.lam) for k, z in snapshots]
                    pair[how] = (snapshots[-1][0][0], figs, accuracy)
                small = np.abs(pair["textbook"][0]) < 1e-3
                for how, (kernel, figs, accuracy) in pair.items():
                    zeroed = float((kernel[small] == 0).mean()) if small.any() else float("nan")
                    late = tuple(f["objective"] for f in figs)
                    out.append(Run(label, name, penalty, how, seed, accuracy=accuracy,
                                   small_zeroed=zeroed, late=late, **figs[-1]))  # fmt: skip
                    print(f"  {label} {name} {penalty} {how} seed {seed}: done", file=sys.stderr)
    return out


def keras_in_subprocess(backend: str, args: Any) -> list[Run]:
    """The Keras recipes in a process that imports Keras with ``backend``."""
    command = [sys.executable, __file__, "--keras-worker", "--epochs", str(args.epochs),
               "--seeds", str(args.seeds), "--lam", str(args.lam), "--late", str(args.late),
               "--penalize", args.penalize] + (["--null"] if args.null else [])  # fmt: skip
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, text=True)
    return [Run(**{**row, "late": tuple(row["late"])}) for row in json.loads(done.stdout)]


def report(runs: list[Run]) -> bool:
    """Print the runs and the checks against each textbook twin; whether every check held.

    A ``nudged`` run (``--null``) faces the same objective and accuracy checks, as if it were
    a method of its own: what it fails, rounding alone fails.
    """
    print(f"{'recipe':34} {'seed':>4} {'objective':>10} {'zeros':>7} {'|w|<1e-3':>9} "
          f"{'of those 0':>10} {'test acc':>8} {'dead in':>7} {'dead out':>8}")  # fmt: skip
    twins = {(r.framework, r.data, r.penalty, r.seed): r for r in runs if r.how == "textbook"}
    failures = {"shrinkage": 0, "nudged": 0}
    for r in runs:
        name = f"{r.framework} {r.data} {r.penalty} {r.how}"
        print(f"{name:34} {r.seed:>4} {r.objective:>10.4f} {r.zeros:>7.1%} {r.small:>9.1%} "
              f"{r.small_zeroed:>10.1%} {r.accuracy:>8.2%} {r.dead_inputs:>7} "
              f"{r.dead_neurons:>8}")  # fmt: skip
        if r.how == "textbook":
            continue
        t = twins[(r.framework, r.data, r.penalty, r.seed)]
        failed = failed_checks(r, t)
        failures[r.how] += bool(failed)
        who = "objective" if r.how == "shrinkage" else "the textbook one ulp away: objective"
        verdict = "all checks hold" if not failed else "FAILED: " + ", ".join(failed)
        print(f"{'':34} {who} {r.objective / t.objective:.3f}x textbook; {verdict}")
        if r.how == "shrinkage":
            print(f"{'':34} {_spread(r, t)}")
    pairs = sum(r.how == "shrinkage" for r in runs)
    print(f"pairs failing a check: shrinkage {failures['shrinkage']} of {pairs}", end="")
    if any(r.how == "nudged" for r in runs):
        print(f"; the textbook against itself one ulp away {failures['nudged']} of {pairs}", end="")
    print()
    return not failures["shrinkage"]


def failed_checks(r: Run, t: Run) -> list[str]:
    """The checks run ``r`` fails against its textbook twin ``t``: objective at most 1.02x,
    test accuracy at most a point lower, and for shrinkage's L1 at least half of the weights
    the textbook leaves below 1e-3 exactly zero."""
    checks = {
        "objective <= 1.02x": r.objective <= 1.02 * t.objective,
        "accuracy at most 1 point lower": r.accuracy >= t.accuracy - 0.01,
    }
    if r.penalty == "l1" and r.how == "shrinkage":
        checks["half of textbook's small weights zero"] = r.small_zeroed >= 0.5
    return [k for k, ok in checks.items() if not ok]


def _spread(r: Run, t: Run) -> str:
    """How far each twin's objective moved over the checkpoints, and how the two compare at
    each, as a line of the report."""
    marks = len(t.late)
    if marks < 2:
        return "(one checkpoint: --late 1)"
    spans = [f"{min(x.late) / x.late[-1]:.2f} - {max(x.late) / x.late[-1]:.2f}x" for x in (t, r)]
    ratios = ", ".join(f"{a / b:.2f}" for a, b in zip(r.late, t.late, strict=True))
    return (
        f"over the last {marks} checkpoints the textbook's objective spans {spans[0]} its last, "
        f"shrinkage's {spans[1]}; shrinkage / textbook at each: {ratios}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lam", type=float, default=0.01)
    parser.add_argument("--penalize", choices=["hidden", "both"], default="hidden")
    parser.add_argument(
        "--late", type=int, default=3, help="checkpoints: every 10th of the last epochs"
    )
    parser.add_argument("--null", action="store_true", help="also the textbook, one ulp away")
    parser.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS)
    parser.add_argument("--keras-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the runs to this file")
    parser.add_argument("--report", help="print the report of runs written by --json, and stop")
    args = parser.parse_args()
    if args.report:
        with open(args.report) as f:
            report([Run(**{**row, "late": tuple(row["late"])}) for row in json.load(f)])
        return
    if args.keras_worker:
        print(json.dumps([asdict(r) for r in runs_of("keras", args)]))
        return
    runs: list[Run] = []
    for part in args.parts:
        print(f"{part} ...", file=sys.stderr)
        if part == "torch":
            import torch

            torch.set_num_threads(1)
            runs += runs_of("torch", args)
        else:
            runs += keras_in_subprocess(part.split("-")[1], args)
    print(f"lam {args.lam}, Adam lr {LR}, batch {BATCH}, {args.epochs} epochs, MLP -> {HIDDEN}")
    held = report(runs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in runs], f, indent=1)
    print("every check holds" if held else "some checks failed")


if __name__ == "__main__":
    main()
