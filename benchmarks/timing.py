"""Side-by-side timing for the benchmarks: every callable takes its turn in every round."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch


def interleaved(calls: dict[str, Callable[[], Any]], rounds: int, inner: int) -> dict[str, float]:
    """Median seconds per call of each of ``calls`` over ``rounds`` rounds of ``inner`` calls,
    the callables taking turns within every round (after one warm-up round), in inference
    mode, so a slow spell of a shared machine falls on all of them alike."""
    samples: dict[str, list[float]] = {k: [] for k in calls}
    with torch.inference_mode():
        for call in calls.values():
            for _ in range(inner):
                call()
        for _ in range(rounds):
            for name, call in calls.items():
                start = time.perf_counter()
                for _ in range(inner):
                    call()
                samples[name].append((time.perf_counter() - start) / inner)
    return {k: statistics.median(v) for k, v in samples.items()}


def best_time(fit: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The shortest of ``repeats`` wall times of ``fit()``, and its last result (for fits
    that take long enough to be timed one at a time)."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fit()
        times.append(time.perf_counter() - start)
    return min(times), out
