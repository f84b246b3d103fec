"""Intra-op threads sized to the work, in a scope that gives the caller's setting back.

torch runs a matrix product on every thread of its intra-op pool (one per core by default),
and its threads spin while they wait for each other. On the products of a small network or a
small linear model a second thread gains little, and beside any other busy process each
waiting thread competes for a core. So every fit runs inside :func:`threads_for`, on

    n = clamp(ceil(work / WORK_PER_THREAD), 1, limit)

threads, where ``work`` is the multiply-accumulates of one step of the fit (one gradient of a
linear model, one batch of a network) and ``limit`` is the count torch reports when the
outermost fit starts (the user's ``torch.set_num_threads``, ``OMP_NUM_THREADS``,
``threadpoolctl.threadpool_limits``, or the limit joblib gives its workers). On exit, also
when the fit raises, torch's count is set back. Nested scopes (a path's points, an
estimator's refits) share the outermost scope's ``limit``.

The count depends only on the problem and the user's limit, never on what else runs on the
machine, so a fit gives the same numbers whatever the machine's load (a product's reduction
order, hence its last bits, follows its thread count).

The environment variable ``SHRINKAGE_THREADS`` chooses the policy:

* ``auto`` (default): as above;
* ``all``: every step on ``limit`` threads, as torch does by itself;
* ``adaptive``: as ``auto``, and never more threads than the cores other processes left idle
  over the last quarter second or more (Linux ``/proc/stat`` less this process's own CPU
  time). Faster beside busy processes, but **not reproducible**: the thread count, hence the
  last bits of the result, follows other processes' load.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = [
    "POLICIES",
    "POLICY_VARIABLE",
    "WORK_PER_THREAD",
    "free_cores",
    "thread_count",
    "threads_for",
]

WORK_PER_THREAD = 1 << 24
"""Multiply-accumulates per step below which one more thread is not worth its wait."""

POLICY_VARIABLE = "SHRINKAGE_THREADS"
"""The environment variable that chooses the policy (see the module docstring)."""

POLICIES = ("auto", "all", "adaptive")
"""The values :data:`POLICY_VARIABLE` accepts; ``auto`` when it is unset or empty."""

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
    if value not in POLICIES:
        allowed = ", ".join(repr(p) for p in POLICIES)
        raise ValueError(
            f"the environment variable {POLICY_VARIABLE}={value!r} must be one of {allowed}"
        )
    return value


def _count(policy: str, work: float, limit: int) -> int:
    """The thread count of a scope under ``policy`` (see the module docstring)."""
    if policy == "all":
        return limit
    wanted = thread_count(work, limit)
    if policy == "adaptive" and wanted > 1:
        return thread_count(work, limit, free_cores())
    return wanted


@contextmanager
def threads_for(work: float) -> Iterator[int]:
    """Run the block on the intra-op threads ``work`` multiply-accumulates a step are worth.

    Args:
        work: multiply-accumulates of one step of the fit.

    Yields:
        The thread count, :func:`thread_count` ``(work, limit)`` under the default policy
        (see the module docstring); torch's setting is restored on exit, also on error.

    Raises:
        ValueError: ``SHRINKAGE_THREADS`` names no policy.

    Example:
        >>> with threads_for(0) as n:
        ...     n
        1
    """
    outer = getattr(_scope, "limit", None)
    limit = torch.get_num_threads() if outer is None else outer
    before = torch.get_num_threads()
    count = _count(_policy(), work, limit)
    _scope.limit = limit
    try:
        if count != before:
            torch.set_num_threads(count)
        yield count
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
        _scope.limit = outer
