"""Named experiments as data: a parameter schema, a run function and estimates of its cost.

An :class:`Experiment` declares its keys (:class:`Param`: default, doc, allowed values);
:func:`resolve_config` validates user overrides against them; ``run`` turns a resolved
config into a :class:`Result` (flat ``summary`` of numbers and a ``trajectory`` of named
arrays). The registry of named experiments is :data:`gandyn.experiments.REGISTRY`; its plots
are in :mod:`gandyn.plotting.registry`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

MAX_INT = 2**31 - 1
"""Largest integer a key takes: array sizes, step counts and seeds are 32-bit in JAX."""

MAX_STEPS = 2**31 - 1
"""Most time steps a run takes (``t1 / dt``): diffrax counts steps in 32 bits."""


@dataclass(frozen=True)
class Param:
    """One configuration key.

    The type is the default's: ``float`` (ints accepted), ``int``, ``bool``, ``str``,
    or a list of floats/ints (non-empty). Numbers must be finite. ``choices`` restricts
    strings; ``minimum``/``maximum`` bound numbers (inclusive) and list elements;
    ``positive`` asks for ``> 0``.
    """

    default: Any
    doc: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False

    @property
    def kind(self) -> str:
        d = self.default
        if isinstance(d, bool):
            return "bool"
        if isinstance(d, int):
            return "int"
        if isinstance(d, float):
            return "float"
        if isinstance(d, str):
            return "str"
        if isinstance(d, list | tuple):
            return "ints" if d and all(isinstance(v, int) for v in d) else "floats"
        raise TypeError(f"unsupported default {d!r}")

    def describe(self) -> str:
        text = {"floats": "list of numbers", "ints": "list of integers"}.get(self.kind, self.kind)
        if self.choices:
            text = "one of " + ", ".join(self.choices)
        bounds = []
        if self.positive:
            bounds.append("> 0")
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        return text + (" " + " and ".join(bounds) if bounds else "")

    def _number(self, key: str, value: Any, integer: bool) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected {self.describe()}, got {value!r}")
        if integer and not (isinstance(value, int) or float(value).is_integer()):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}: must be finite, got {value!r}")
        if integer and abs(value) > MAX_INT:
            raise ConfigError(
                f"{key}: {value!r} is too large; integers (counts, sizes, seeds) are at most "
                f"{MAX_INT} (32-bit)"
            )
        value = int(value) if integer else float(value)
        if (
            (self.positive and value <= 0)
            or (self.minimum is not None and value < self.minimum)
            or (self.maximum is not None and value > self.maximum)
        ):
            raise ConfigError(f"{key}: expected {self.describe()}, got {value!r}")
        return value

    def validate(self, key: str, value: Any) -> Any:
        """``value`` converted to this key's type, or :class:`ConfigError`."""
        kind = self.kind
        if kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{key}: expected true or false, got {value!r}")
            return value
        if kind in ("int", "float"):
            return self._number(key, value, integer=kind == "int")
        if kind == "str":
            if not isinstance(value, str):
                raise ConfigError(f"{key}: expected {self.describe()}, got {value!r}")
            if self.choices and value not in self.choices:
                raise ConfigError(f"{key}: unknown value {value!r}; allowed: {self.describe()}")
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(f"{key}: expected a non-empty {self.describe()}, got {value!r}")
        return [self._number(key, v, integer=kind == "ints") for v in value]


@dataclass
class Result:
    """What a run returns: the resolved ``config``, a flat ``summary`` (numbers, bools,
    strings, ``None`` for undefined), a ``trajectory`` of named NumPy arrays, a ``status``
    (``ok`` or what stopped the run) and a ``message`` for the user when not ok."""

    experiment: str
    config: dict[str, Any]
    summary: dict[str, Any]
    trajectory: dict[str, np.ndarray]
    status: str = "ok"
    message: str | None = None

    def finite(self) -> Result:
        """This result with every non-finite summary number (lists included) as ``None``;
        a run that claimed ``ok`` with such numbers becomes ``nonfinite``, its message
        naming them (no run ends ok with a NaN in its summary)."""
        bad: list[str] = []

        def clean(key: str, value: Any) -> Any:
            if isinstance(value, list | tuple):
                return [clean(key, v) for v in value]
            if isinstance(value, float | np.floating) and not math.isfinite(value):
                bad.append(key)
                return None
            return value

        summary = {key: clean(key, value) for key, value in self.summary.items()}
        if not bad:
            return self
        status, message = self.status, self.message
        if status == "ok":
            names = ", ".join(sorted(set(bad)))
            status, message = "nonfinite", f"summary values not finite (written as null): {names}"
            if "status" in summary:
                summary["status"] = status
        return replace(self, summary=summary, status=status, message=message)


@dataclass(frozen=True)
class RunOptions:
    """How to run, not what (none of it changes the numbers beyond round-off):
    ``progress`` shows a progress bar on long solves;
    ``checkpoint`` (a :class:`gandyn.checkpoint.CheckpointSpec`) saves the run as it goes:
    time integrations in checkpointed segments, other work in stages
    (:func:`gandyn.checkpoint.stage`); with ``resume`` it continues from what was saved."""

    progress: bool = False
    checkpoint: Any = None
    devices: int = 1
    """Split the particle axis over this many devices (particle experiments)."""


@dataclass(frozen=True)
class Experiment:
    """A named, documented experiment."""

    name: str
    doc: str
    params: Mapping[str, Param]
    run: Callable[[dict[str, Any], RunOptions], Result]
    check: Callable[[dict[str, Any]], None] | None = field(default=None)
    """Cross-key validation on the resolved config; raises :class:`ConfigError`."""
    memory: Callable[[dict[str, Any]], int] | None = field(default=None)
    """An estimate in bytes of the peak memory of ``run`` for a config (checked by the CLI
    against the available memory before anything runs)."""
    size_keys: tuple[str, ...] = ()
    """Integer keys (or lists of integers) that set the size of the data: what to scale
    down when a run does not fit in memory."""
    work: Callable[[dict[str, Any]], float] | None = field(default=None)
    """An estimate of the elementary operations of ``run`` for a config (order of
    magnitude; checked against the time allowed, see :mod:`gandyn.admission`)."""
    time_keys: tuple[str, ...] = ()
    """Integer keys (or lists of integers) that set the work: what to scale down when a
    run would take too long."""
    outcomes: Callable[..., dict[str, Any]] | None = field(default=None)
    """The summary numbers as a traceable function of the config: continuous values
    (floats, seeds) may be JAX tracers, so sweeps ``vmap`` and gradients ``grad`` it.
    Particle experiments take ``series=(names...)`` too and then also return those
    recorded time series as ``series_<name>`` with their times as ``series_t``."""

    @property
    def title(self) -> str:
        return self.doc.strip().splitlines()[0]

    def defaults(self) -> dict[str, Any]:
        return {key: param.default for key, param in self.params.items()}


def resolve_config(experiment: Experiment, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults updated by ``overrides``, every key validated."""
    unknown = sorted(set(overrides) - set(experiment.params))
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} for experiment {experiment.name!r}; "
            f"allowed: {', '.join(experiment.params)}"
        )
    config = {}
    for key, param in experiment.params.items():
        config[key] = param.validate(key, overrides.get(key, param.default))
    _check_step_count(config)
    if experiment.check is not None:
        experiment.check(config)
    return config


def _check_step_count(config: Mapping[str, Any]) -> None:
    """Refuse ``t1 / dt`` beyond :data:`MAX_STEPS` (before it overflows somewhere later)."""
    t1, dt = config.get("t1"), config.get("dt")
    if isinstance(t1, float) and isinstance(dt, float) and dt > 0 and t1 / dt > MAX_STEPS:
        raise ConfigError(
            f"t1 / dt: {t1:g} / {dt:g} = {t1 / dt:.3g} steps; at most {MAX_STEPS} are allowed"
        )


def load_config_file(path: Path) -> dict[str, Any]:
    """Keys and values from a TOML file (one flat table; checked later by
    :func:`resolve_config`). Syntax errors and nested tables are :class:`ConfigError`."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(f"--config: no such file {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"--config: {path} is a folder; give a TOML file") from None
    except OSError as err:
        raise ConfigError(f"--config: cannot read {path} ({err.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"--config: {path} is not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(f"--config: {path} nests too deeply; keys must be flat") from None
    for key, value in data.items():
        if isinstance(value, dict):
            raise ConfigError(
                f"{path}: key {key!r} is a table; the file must be a flat list of key = value"
            )
        if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            raise ConfigError(f"{path}: key {key!r} must be a flat list of numbers")
    return data
