"""Timing shared by the benchmarks: medians of blocked calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def timed(fn: Callable[[], object], repeats: int, min_time: float = 0.0) -> dict[str, float]:
    """Seconds per call of ``fn`` (already warmed up): median, min, max over ``repeats``
    calls, or more until ``min_time`` seconds have passed."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "repeats": len(times),
    }


def warm_median(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``fn()`` after one warm-up call, and that call's output."""
    out = jax.block_until_ready(fn())
    return timed(fn, repeats)["median"], out
