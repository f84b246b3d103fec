"""Intra-op threads: sized to the work, within the caller's limit, and always given back."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from sklearn.datasets import make_friedman1, make_regression
from threadpoolctl import threadpool_limits
from torch import nn

import shrinkage._threads
from shrinkage._threads import POLICY_VARIABLE, WORK_PER_THREAD, thread_count, threads_for
from shrinkage.linear import Lasso, LassoCV
from shrinkage.neural import MLPRegressor, train_epochs


@pytest.fixture
def two_threads(monkeypatch):
    """torch at two intra-op threads for the test (the user's setting), restored after; the
    machine's load left out (other processes may run beside the tests)."""
    monkeypatch.setattr(shrinkage._threads, "free_cores", lambda: None)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def test_thread_count_is_the_work_over_the_share_within_the_limit() -> None:
    assert thread_count(0, 4) == 1
    assert thread_count(WORK_PER_THREAD, 4) == 1
    assert thread_count(WORK_PER_THREAD + 1, 4) == 2
    assert thread_count(10 * WORK_PER_THREAD, 4) == 4
    assert thread_count(10 * WORK_PER_THREAD, 1) == 1
    assert thread_count(10 * WORK_PER_THREAD, 4, free=1.2) == 1  # another process's core
    assert thread_count(10 * WORK_PER_THREAD, 4, free=2.6) == 3
    assert thread_count(0, 4, free=0.2) == 1


def test_only_the_adaptive_policy_reads_the_load(monkeypatch) -> None:
    """The default count is the work's, within the limit; ``adaptive`` also caps it by the
    idle cores."""
    monkeypatch.setattr(shrinkage._threads, "free_cores", lambda: 1.0)  # one core left idle
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads_for(10 * WORK_PER_THREAD) as count:
            assert count == 2
        monkeypatch.setenv(POLICY_VARIABLE, "adaptive")
        with threads_for(10 * WORK_PER_THREAD) as count:
            assert count == 1
    finally:
        torch.set_num_threads(before)


def test_the_load_of_other_processes_is_read_as_cores() -> None:
    shrinkage._threads.free_cores()  # a first reading: the start of the interval
    time.sleep(0.3)
    free = shrinkage._threads.free_cores()
    if free is None:
        pytest.skip("no /proc/stat here")
    assert 1.0 <= free <= (torch.get_num_threads() + 64)


def test_the_sizing_can_be_turned_off_and_a_bad_setting_is_named(two_threads, monkeypatch) -> None:
    monkeypatch.setenv(POLICY_VARIABLE, "all")
    with threads_for(0) as inside:
        assert inside == two_threads
    monkeypatch.setenv(POLICY_VARIABLE, "many")
    bad = "SHRINKAGE_THREADS='many' must be one of 'auto', 'all', 'adaptive'"
    with pytest.raises(ValueError, match=bad), threads_for(0):
        pass
    assert torch.get_num_threads() == two_threads


def test_scope_gives_the_setting_back_also_on_error(two_threads: int) -> None:
    with threads_for(0) as inside:
        assert inside == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == two_threads
    with pytest.raises(RuntimeError, match="inside"), threads_for(0):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == two_threads


def test_nested_scopes_share_the_outer_limit(two_threads: int) -> None:
    with threads_for(0):
        with threads_for(10 * WORK_PER_THREAD) as inner:
            assert inner == two_threads == torch.get_num_threads()
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == two_threads


def _train(model: nn.Module, X: torch.Tensor, on_epoch) -> None:
    y = torch.zeros(X.shape[0], model[-1].out_features)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    train_epochs(
        model, opt, nn.functional.mse_loss, (X, y), epochs=2, batch_size=X.shape[0], seed=0,
        on_epoch=on_epoch,
    )  # fmt: skip


def test_training_sizes_threads_to_its_steps(two_threads: int) -> None:
    seen: list[int] = []
    record = lambda epoch, model: seen.append(torch.get_num_threads())  # noqa: E731
    _train(nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 1)), torch.randn(64, 10), record)
    assert seen == [1, 1]  # ~700 multiply-accumulates a step: one thread
    seen.clear()
    big = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 512))
    _train(big, torch.randn(256, 512), record)  # ~1.6e9 a step: every allowed thread
    assert seen == [two_threads, two_threads]
    assert torch.get_num_threads() == two_threads


def test_training_respects_an_outer_limit(two_threads: int) -> None:
    seen: list[int] = []
    record = lambda epoch, model: seen.append(torch.get_num_threads())  # noqa: E731
    big = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 512))
    with threadpool_limits(limits=1):
        if torch.get_num_threads() != 1:
            pytest.skip("threadpoolctl does not reach this torch build's thread pool")
        _train(big, torch.randn(256, 512), record)
        assert torch.get_num_threads() == 1
    assert seen == [1, 1]


def test_a_fit_leaves_the_users_setting_also_when_it_raises(two_threads: int) -> None:
    X, y = make_friedman1(n_samples=200, n_features=10, random_state=0)
    MLPRegressor((16,), max_epochs=3, random_state=0).fit(X, y)
    assert torch.get_num_threads() == two_threads

    def stop(epoch: int, model: nn.Module) -> None:
        assert torch.get_num_threads() == 1
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(nn.Sequential(nn.Linear(10, 1)), torch.randn(32, 10), stop)
    assert torch.get_num_threads() == two_threads
    with pytest.raises(FloatingPointError):
        MLPRegressor((16,), max_epochs=3, learning_rate=1e12, random_state=0).fit(X, 1e30 * y)
    assert torch.get_num_threads() == two_threads


def test_a_linear_fit_is_sized_and_gives_the_setting_back(two_threads: int) -> None:
    X, y = make_regression(n_samples=50, n_features=20, random_state=0)
    coef = Lasso(alpha=1.0).fit(X, y).coef_
    assert torch.get_num_threads() == two_threads
    assert np.count_nonzero(coef) > 0


def test_a_cross_validated_linear_fit_gives_the_setting_back_when_it_raises(
    two_threads: int,
) -> None:
    X, y = make_regression(n_samples=40, n_features=200, random_state=0)
    seen: list[int] = []

    def folds(n: int):
        seen.append(torch.get_num_threads())  # read inside the fit's scope
        yield np.arange(30), np.arange(30, n + 5)  # past the last row: IndexError

    with pytest.raises(IndexError):
        LassoCV(cv=folds(40)).fit(X, y)
    assert seen == [1]  # 40 x 200 is far below a thread's worth of work
    assert torch.get_num_threads() == two_threads
