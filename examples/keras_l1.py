"""The classic Keras L1 example, made true: Keras's ``l1`` against shrinkage's proximal L1.

A Dense network (64 inputs -> 64 ReLU -> 10 classes) with ``kernel_regularizer`` on its
hidden layer learns the 8x8 digits that scikit-learn ships, once with Keras's own
``keras.regularizers.l1(lam)`` and once with ``shrinkage.keras.L1(lam)`` (the same penalty,
``lam * sum|w|``) under the proximal version of the same optimizer. Keras's penalty is a loss
term: its subgradient pushes weights around zero and never onto it. The proximal step
``sign(w) * max(|w| - s * lam, 0)`` after each update, with ``s`` the optimizer's own step
(``lr`` for SGD, ``lr / (sqrt(v_hat) + epsilon)`` element-wise for Adam), sets them exactly
to zero, and solves the same problem ``loss + lam * sum|w|``.

Printed for SGD and Adam: the hidden kernel's exact zeros and the test accuracy. It runs on
the installed Keras backend (``KERAS_BACKEND``: torch, jax or tensorflow).

    python examples/keras_l1.py [--lam 0.01] [--epochs 30]

Needs the ``keras`` extra: ``pip install 'shrinkage[keras]'``; it runs on PyTorch (which
shrinkage installs) unless ``KERAS_BACKEND`` names another backend.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

try:
    import keras
except ModuleNotFoundError as error:
    sys.exit(f"keras_l1.py needs {error.name}: pip install 'shrinkage[keras]'")
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from shrinkage.keras import L1, ProximalAdam, ProximalSGD


def fit(
    regularizer: keras.regularizers.Regularizer,
    optimizer: keras.optimizers.Optimizer,
    data: tuple[np.ndarray, ...],
    epochs: int,
) -> tuple[float, float]:
    """The hidden kernel's fraction of exact zeros and the test accuracy after training."""
    x_train, x_test, y_train, y_test = data
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=regularizer),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    kernel = keras.ops.convert_to_numpy(model.layers[0].kernel)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    return float((kernel == 0).mean()), float(accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lam", type=float, default=0.01, help="the L1 strength of both")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    x, y = load_digits(return_X_y=True)
    data = train_test_split(
        (x / 16).astype("float32"), y, test_size=0.25, random_state=0, stratify=y
    )
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}; lam = {args.lam}")
    print(f"{'optimizer':14} {'penalty':28} {'exact zeros':>11} {'test acc':>9}")
    for name, plain, prox in (
        ("SGD(0.05)", keras.optimizers.SGD(0.05), ProximalSGD(0.05)),
        ("Adam(1e-3)", keras.optimizers.Adam(1e-3), ProximalAdam(1e-3)),
    ):
        for label, regularizer, optimizer in (
            ("keras.regularizers.l1", keras.regularizers.l1(args.lam), plain),
            ("shrinkage.keras.L1 (prox)", L1(args.lam), prox),
        ):
            zeros, accuracy = fit(regularizer, optimizer, data, args.epochs)
            print(f"{name:14} {label:28} {zeros:11.1%} {accuracy:9.2%}")


if __name__ == "__main__":
    main()
