"""Intra-op threads sized to the work and to the machine, in a scope that gives the caller's
setting back.

torch runs a matrix product on every thread of its intra-op pool (one per core by default),
and its threads spin while they wait for each other. On the products of a small network or a
small linear model a second thread gains little, and beside any other busy process each
waiting thread competes for a core: a fit becomes several times slower. So every fit runs
inside :func:`threads_for`, on

    n = clamp(ceil(work / WORK_PER_THREAD), 1, min(limit, free))

threads, where ``work`` is the multiply-accumulates of one step of the fit (one gradient of a
linear model, one batch of a network), ``limit`` is the count torch reports when the
outermost fit starts (the user's ``torch.set_num_threads``, ``OMP_NUM_THREADS``,
``threadpoolctl.threadpool_limits``, or the limit joblib gives its workers), and ``free`` the
cores that other processes left idle over the last quarter second or more (Linux
``/proc/stat`` less this process's own CPU time; every core elsewhere). On exit, also when the
fit raises, torch's count is set back. Nested scopes (a path's points, an estimator's refits)
share the outermost scope's ``limit``.

The environment variable ``SHRINKAGE_THREADS=all`` turns the sizing off: every step runs on
``limit`` threads, as torch does by itself.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["POLICY_VARIABLE", "WORK_PER_THREAD", "free_cores", "thread_count", "threads_for"]

WORK_PER_THREAD = 1 << 24
"""Multiply-accumulates per step below which one more thread is not worth its wait."""

POLICY_VARIABLE = "SHRINKAGE_THREADS"
"""``auto`` (default): sized as the module docstring says; ``all``: every step on torch's
count."""

_PERIOD = 0.25
_scope = threading.local()


def thread_count(work: float, limit: int, free: float | None = None) -> int:
    """``clamp(ceil(work / WORK_PER_THREAD), 1, min(limit, round(free)))``: the intra-op
    threads for a step of ``work`` multiply-accumulates when ``limit`` threads are allowed
    and ``free`` cores are idle (``None``: not known)."""
    wanted = math.ceil(max(float(work), 0.0) / WORK_PER_THREAD)
    cap = int(limit) if free is None else min(int(limit), math.floor(free + 0.5))
    return max(1, min(cap, wanted))


class _OtherLoad:
    """Cores kept busy by other processes: the machine's busy time (``/proc/stat``) less this
    process's CPU time, over the interval since the last reading (at least ``_PERIOD``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[float, float, float] | None = None
        self._value: float | None = None
        self._ticks = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        if len(fields) < 5:
            return None
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        return time.monotonic(), busy / self._ticks, time.process_time()

    def cores(self) -> float | None:
        """The latest reading, refreshed when ``_PERIOD`` has passed (``None``: none yet)."""
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < _PERIOD:
                return self._value
            sample = self._sample()
            if sample is None:
                return None
            if self._last is not None:
                wall = sample[0] - self._last[0]
                others = (sample[1] - self._last[1]) - (sample[2] - self._last[2])
                self._value = max(others / wall, 0.0)
            self._last = sample
            return self._value


_load = _OtherLoad()


def free_cores() -> float | None:
    """The cores this process may use less those other processes keep busy (``None`` where
    the machine's load cannot be read)."""
    others = _load.cores()
    if others is None:
        return None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max((usable or 1) - others, 1.0)


def _policy() -> str:
    value = os.environ.get(POLICY_VARIABLE, "auto").strip().lower() or "auto"
    if value not in ("auto", "all"):
        raise ValueError(
            f"the environment variable {POLICY_VARIABLE}={value!r} must be 'auto' or 'all'"
        )
    return value


@contextmanager
def threads_for(work: float) -> Iterator[int]:
    """Run the block on :func:`thread_count` ``(work, limit, free_cores())`` intra-op threads
    (see the module docstring); yields that count. torch's setting is restored on exit."""
    outer = getattr(_scope, "limit", None)
    limit = torch.get_num_threads() if outer is None else outer
    before = torch.get_num_threads()
    if _policy() == "all":
        count = limit
    else:
        wanted = thread_count(work, limit)
        count = thread_count(work, limit, free_cores()) if wanted > 1 else 1
    _scope.limit = limit
    try:
        if count != before:
            torch.set_num_threads(count)
        yield count
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
        _scope.limit = outer
