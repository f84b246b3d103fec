"""The same fit gives the same numbers whether the machine is quiet or busy.

A fit's intra-op thread count decides the reduction order of its products, hence the last
bits of its result; the count follows the problem and the user's limit only
(:mod:`shrinkage._threads`), never the load of other processes. These tests run the same fits
alone and beside a busy process that they start and stop, at a limit of two threads and on
problems large enough that the sizing gives them both threads.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_regression

import shrinkage._threads
from shrinkage.linear import ElasticNetCV
from shrinkage.neural import MLPClassifier

BUSY = "while True:\n    pass\n"


@contextmanager
def busy_process() -> Iterator[None]:
    """A single-threaded busy loop in another process for the duration of the block."""
    process = subprocess.Popen([sys.executable, "-c", BUSY])
    time.sleep(0.5)  # let it take a core, and the load readings see it
    try:
        assert process.poll() is None, "the busy process ended early"
        yield
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def two_threads() -> Iterator[int]:
    """torch at two intra-op threads (the user's limit) for the test, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every thread count a scope chooses during the test, in order."""
    seen: list[int] = []
    choose = shrinkage._threads._count

    def recording(policy: str, work: float, limit: int) -> int:
        seen.append(choose(policy, work, limit))
        return seen[-1]

    monkeypatch.setattr(shrinkage._threads, "_count", recording)
    return seen


def linear_cv_fit(n_samples: int = 2000, n_features: int = 8500) -> list[np.ndarray]:
    """A wide problem by default: 1.7e7 stored values, and every solve's gradient (two
    products with ``X``) worth two threads."""
    X, y = make_regression(
        n_samples=n_samples, n_features=n_features, n_informative=30, noise=1.0, random_state=0
    )
    model = ElasticNetCV(l1_ratio=0.7, cv=3, alphas=5, tol=1e-6).fit(X, y)
    return [model.coef_, np.atleast_1d(model.intercept_), model.mse_path_, model.alphas_]


def tall_linear_cv_fit() -> list[np.ndarray]:
    """1.8e7 stored values: two threads for the fit's scope, one for the Gram solves."""
    return linear_cv_fit(n_samples=20000, n_features=900)


def network_fit() -> list[np.ndarray]:
    X, y = load_digits(return_X_y=True)
    model = MLPClassifier((512, 512), max_epochs=3, batch_size=256, random_state=0).fit(X, y)
    return [p.detach().numpy() for p in model.model_.parameters()] + [model.predict_proba(X)]


FITS: dict[str, Callable[[], list[np.ndarray]]] = {
    "ElasticNetCV": linear_cv_fit,
    "ElasticNetCV-tall": tall_linear_cv_fit,
    "MLPClassifier": network_fit,
}


@pytest.mark.parametrize("name", ["ElasticNetCV-tall", "MLPClassifier"])
def test_a_fit_is_bit_identical_beside_a_busy_process(
    name: str, two_threads: int, counts: list[int]
) -> None:
    quiet = FITS[name]()
    chosen = list(counts)
    assert max(chosen) == two_threads  # the sizing gave the fit both threads
    with busy_process():
        loaded = FITS[name]()
    for a, b in zip(quiet, loaded, strict=True):
        np.testing.assert_array_equal(a, b)


def never_read() -> float:
    raise AssertionError("the default policy read the machine's load")


@pytest.mark.parametrize("name", ["ElasticNetCV-tall", "MLPClassifier"])
def test_the_thread_count_does_not_follow_another_process_load(
    name: str, two_threads: int, counts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same counts, quiet and busy; the load is not even read (``free_cores`` is only
    consulted under ``SHRINKAGE_THREADS=adaptive``)."""
    monkeypatch.setattr(shrinkage._threads, "free_cores", never_read)
    FITS[name]()
    quiet = list(counts)
    counts.clear()
    with busy_process():
        FITS[name]()
    assert counts == quiet
    assert two_threads in quiet
