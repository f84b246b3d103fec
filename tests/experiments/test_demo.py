"""The digits figures of the demo table: at the same ``lam``, L1 by prox gives exact zeros at
no accuracy cost; L1 as a loss term gives none."""

from __future__ import annotations

import pytest

from shrinkage import L1
from shrinkage.demo import DemoConfig, digits_split, format_table, train_digits


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return digits_split(seed=0)


def test_l1_prox_is_sparse_and_as_accurate_as_no_penalty(data) -> None:  # type: ignore[no-untyped-def]
    baseline = train_digits(DemoConfig("no penalty", "none"), data)
    sparse = train_digits(DemoConfig("L1", "prox", L1(1e-3)), data)
    print(format_table([baseline, sparse]))
    assert baseline.test_accuracy > 0.95
    assert sparse.fraction_zero >= 0.85
    assert sparse.test_accuracy >= baseline.test_accuracy - 0.015


@pytest.mark.parametrize("lam", [1e-5, 1e-4, 1e-3])
def test_l1_loss_term_gives_almost_no_exact_zeros(data, lam: float) -> None:  # type: ignore[no-untyped-def]
    result = train_digits(DemoConfig("L1", "loss", L1(lam)), data)
    assert result.fraction_zero < 0.01
