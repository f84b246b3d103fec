"""Held-out predictions ``X @ coef`` as the cross-validations score them: the same numbers as
NumPy's product on every input layout, whichever columns are read."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from shrinkage.linear._design import held_out_product


def _coef(p: int, k: int | None, used: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coef = np.zeros((p,) if k is None else (p, k))
    rows = rng.choice(p, size=used, replace=False)
    coef[rows] = rng.normal(size=(used,) if k is None else (used, k))
    return coef


@pytest.mark.parametrize("used", [0, 3, 40, 200])  # none, under a quarter, over, all
@pytest.mark.parametrize("k", [None, 1, 3])
@pytest.mark.parametrize("layout", ["C", "F", "float32", "csr", "csc"])
def test_held_out_product_is_numpys(used: int, k: int | None, layout: str) -> None:
    rng = np.random.default_rng(used)
    X = rng.normal(size=(30, 200))
    if layout in ("csr", "csc"):
        X[rng.random(X.shape) < 0.9] = 0.0
    coef = _coef(200, k, used, seed=used + 1)
    expected = X @ coef
    given = {
        "C": X,
        "F": np.asfortranarray(X),
        "float32": X.astype(np.float32),
        "csr": sparse.csr_matrix(X),
        "csc": sparse.csc_matrix(X),
    }[layout]
    if layout == "float32":
        expected = X.astype(np.float32).astype(np.float64) @ coef
    got = held_out_product(given, coef)
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_a_transposed_coefficient_matrix_is_read_as_given() -> None:
    rng = np.random.default_rng(0)
    X, W = rng.normal(size=(20, 50)), rng.normal(size=(3, 50))
    np.testing.assert_allclose(held_out_product(X, W.T), X @ W.T, rtol=1e-12)
