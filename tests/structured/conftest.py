"""The data the structured-sparsity tests share: scikit-learn's digits, as flat standardized
features and as 8x8 images."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import Tensor


@pytest.fixture(scope="session")
def digits_xy() -> tuple[Tensor, Tensor]:
    """``[1797, 64]`` features standardized per pixel (float32), ``[1797]`` labels."""
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    return torch.tensor(X, dtype=torch.float32), torch.tensor(y)


@pytest.fixture(scope="session")
def digits_x(digits_xy: tuple[Tensor, Tensor]) -> Tensor:
    """The features of :func:`digits_xy`."""
    return digits_xy[0]


@pytest.fixture(scope="session")
def digit_images() -> tuple[Tensor, Tensor]:
    """``[1797, 1, 8, 8]`` images scaled to ``[-1, 1]`` (float32), ``[1797]`` labels."""
    X, y = load_digits(return_X_y=True)
    images = torch.tensor((X - 8.0) / 8.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    return images, torch.tensor(y)
