"""Admission: refuse, before anything runs, a run that cannot fit in memory or in time.

Each experiment estimates its peak memory (``Experiment.memory``, bytes) and its work
(``Experiment.work``, elementary operations: particle–node pair evaluations, cell updates,
network passes). A run is refused when its estimate exceeds the device's free memory or
the time allowed; the message gives the estimate and the largest values of the
experiment's size-setting keys (``Experiment.size_keys``) that would fit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from . import io
from .errors import ConfigError

RUNTIME_BYTES = 512 * 2**20
"""Memory of the process beyond a run's arrays (compiler, runtime; measured 120–410 MiB
on CPU by benchmarks/memory.py), added to every estimate."""

OPERATIONS_PER_SECOND = 1e9
"""Elementary operations per second that time estimates assume: a 2-core CPU evaluates
about 2·10⁹ particle–node pairs of a tanh velocity per second (DESIGN §5), so estimates
err long by up to 2× there and more on a GPU."""


def capped(config: dict[str, Any], keys: tuple[str, ...], cap: int) -> dict[str, Any]:
    """``config`` with the integer (list) values of ``keys`` cut to at most ``cap``."""
    return config | {
        k: [min(v, cap) for v in config[k]] if isinstance(config[k], list) else min(config[k], cap)
        for k in keys
    }


def _largest(need: Callable[[dict[str, Any]], float], config, keys, limit) -> dict | None:
    """The config with ``keys`` cut to the largest common bound for which ``need`` is at
    most ``limit`` (``None`` if even 1 is too much)."""
    if need(capped(config, keys, 1)) > limit:
        return None
    low, high = 1, max(max(np.atleast_1d(config[k])).item() for k in keys)
    while high - low > 1:  # bisect the largest bound that fits
        mid = (low + high) // 2
        low, high = (mid, high) if need(capped(config, keys, mid)) <= limit else (low, mid)
    return capped(config, keys, low)


def _suggestion(need, config: dict[str, Any], keys: tuple[str, ...], limit: float) -> str:
    """Which size keys to cut, and to what, for ``need(config) <= limit``: one key alone
    where that suffices (each such key as an alternative), else all of them together."""
    alone = []
    for key in keys:
        fits = _largest(need, config, (key,), limit)
        if fits is not None:
            alone.append(f"{key}={json.dumps(fits[key])}")
    if alone:
        return "; it would fit with " + " or ".join(alone)
    fits = _largest(need, config, keys, limit) if keys else None
    if fits is not None:
        return "; it would fit with " + ", ".join(f"{k}={json.dumps(fits[k])}" for k in keys)
    return f"; it does not fit even with {', '.join(keys)} cut to 1" if keys else ""


def check_memory(experiment, config: dict[str, Any], devices: int = 1) -> None:
    """Refuse a run whose estimated peak memory per device exceeds what is free."""
    if experiment.memory is None:
        return
    free = io.available_memory()

    def need(config: dict[str, Any]) -> float:
        return experiment.memory(config) / devices + RUNTIME_BYTES

    if need(config) <= free:
        return
    hint = _suggestion(need, config, experiment.size_keys, free)
    raise ConfigError(
        f"memory: this run needs about {io.format_bytes(need(config))} per device (including "
        f"{io.format_bytes(RUNTIME_BYTES)} for the runtime), only {io.format_bytes(free)} is "
        f"available{hint}; or split it over more --devices"
    )


def format_seconds(seconds: float) -> str:
    """``seconds`` in s, min, h, days or years."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def check_time(
    experiment, config: dict[str, Any], max_hours: float, devices: int = 1, *, runs: int = 1
) -> None:
    """Refuse a run (or ``runs`` runs like it: a sweep) whose estimated time exceeds
    ``max_hours`` (``inf``: no limit)."""
    if experiment.work is None or not np.isfinite(max_hours):
        return
    limit = max_hours * 3600.0

    def need(config: dict[str, Any]) -> float:
        return runs * experiment.work(config) / (OPERATIONS_PER_SECOND * devices)

    if need(config) <= limit:
        return
    hint = _suggestion(need, config, experiment.time_keys, limit)
    what = "this run" if runs == 1 else f"these {runs:,} runs"
    raise ConfigError(
        f"time: {what} would take about {format_seconds(need(config))} (estimated at "
        f"{OPERATIONS_PER_SECOND:.0e} operations/s), more than --max-hours {max_hours:g}"
        f"{hint}; or raise --max-hours"
    )
