"""Grids of runs in one compiled call, and gradients of outcomes (DESIGN §4).

Both work on an experiment's ``outcomes``: its summary numbers as a traceable function of
the resolved config. A key is

* **continuous** if ``outcomes`` accepts a JAX tracer for it (floats such as ``c``,
  ``lam``, ``beta``, initial-law parameters; the integer ``seed``): :func:`sweep` ``vmap`` s
  over them, :func:`grad_outcome` differentiates the float ones;
* **discrete** if it is a string with a fixed set of choices or a bool (``clip``,
  ``activation``, ``solver``): :func:`sweep` loops over them outside the compiled call (one
  compilation per combination);
* **not sweepable** otherwise: lists (``data_means``), free strings, and numbers that set
  shapes, step counts or save times (``n_gen``, ``quadrature``, ``t1``, ``dt``). The trace
  finds these and the error names them; run separate sweeps in a Python loop instead.

A sweep's runs can be split over several devices (``devices=``: data parallel over the
grid); a single large run is split over devices along its particle axis by
:mod:`gandyn.sharding`.

Where a gradient is zero or undefined by construction (see :func:`grad_outcome`):

* integer keys (``seed``, ``n_gen``): no derivative; refused;
* ``HardClip``: the projection ``clip(u, −c, c)`` has derivative 0 in ``u`` on the wall, so a
  particle stuck on a wall forgets its past: gradients of later outcomes through it vanish;
  the outcomes are piecewise smooth with kinks where a particle reaches the wall one step
  earlier or later, and the gradient is that of the smooth piece (finite differences across
  a kink disagree with it). Use ``PenaltyClip`` (Lipschitz in the state) or ``SmoothClip``;
* counts (``wall_fraction_*``): step functions of every continuous key in a fixed-step
  solve (the fraction of particles with ``|ω| ≥ c``), so their gradient is 0 almost
  everywhere and undefined at the jumps, with any constraint. Differentiate a smooth
  surrogate instead (under ``PenaltyClip``: ``critic_max_abs``, whose level ``c`` marks the
  contact, or ``value_final``, ``data_distance_final``, ``invariant_final``).
  ``first_contact_time`` is interpolated inside the step where it happens, so it is
  continuous, with the derivative of that interpolated crossing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from . import runs
from .checkpoint import CheckpointSpec, stage
from .errors import ConfigError
from .experiments import Experiment, get_experiment, resolve_config
from .io import available_memory, format_bytes

if TYPE_CHECKING:
    import xarray

_TRACER_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerBoolConversionError,
)


MAX_RUNS = 1_000_000
"""Most runs one sweep takes (each point is validated and planned up front)."""


def _experiment(experiment: str | Experiment) -> Experiment:
    exp = get_experiment(experiment) if isinstance(experiment, str) else experiment
    if exp.outcomes is None:
        raise ConfigError(
            f"experiment {exp.name!r} has no traceable outcomes, so it cannot be swept or "
            "differentiated; run it in a loop with gandyn.run_experiment"
        )
    return exp


def _kind(exp: Experiment, key: str) -> str:
    """``continuous`` (try tracing), ``discrete`` (loop), or raise for lists/free strings."""
    if key not in exp.params:
        raise ConfigError(
            f"unknown key {key!r} for experiment {exp.name!r}; allowed: {', '.join(exp.params)}"
        )
    param = exp.params[key]
    kind = param.kind
    if kind in ("int", "float"):
        return "continuous"
    if kind == "bool" or (kind == "str" and param.choices):
        return "discrete"
    raise ConfigError(
        f"{key}: cannot be swept (a {param.describe()}); sweepable keys are numbers, "
        "bools and strings with fixed choices; run separate sweeps in a Python loop instead"
    )


def _trace(exp: Experiment, config: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Shapes of ``outcomes`` with ``keys`` traced; a :class:`ConfigError` naming the keys
    ``outcomes`` needs as Python numbers."""
    assert exp.outcomes is not None
    try:
        return _shapes(exp.outcomes, json.dumps(config, sort_keys=True), tuple(keys))
    except _TRACER_ERRORS:
        bad = []
        for key in keys:
            try:
                _shapes(exp.outcomes, json.dumps(config, sort_keys=True), (key,))
            except _TRACER_ERRORS:
                bad.append(key)
        names = ", ".join(bad or keys)
        raise ConfigError(
            f"{names}: cannot be swept or differentiated: experiment {exp.name!r} uses "
            "the value as a Python number (it sets array shapes, step counts or save times); "
            "run separate sweeps in a Python loop instead"
        ) from None


@functools.lru_cache(maxsize=64)
def _shapes(
    outcomes: Callable[[dict[str, Any]], dict[str, Any]], config_json: str, keys: tuple[str, ...]
) -> dict[str, Any]:
    """``jax.eval_shape`` of ``outcomes`` at ``config_json`` with ``keys`` traced (cached)."""
    config = json.loads(config_json)
    abstract = {k: jax.ShapeDtypeStruct((), jnp.asarray(config[k]).dtype) for k in keys}
    return jax.eval_shape(lambda values: outcomes(config | values), abstract)


def _grid_values(exp: Experiment, grid: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """Each key's values validated by its :class:`Param`, non-empty and distinct."""
    if not grid:
        raise ConfigError("grid: give at least one key with a list of values")
    values = {}
    for key, raw in grid.items():
        _kind(exp, key)
        if isinstance(raw, str | bytes) or not isinstance(raw, Sequence | np.ndarray):
            raise ConfigError(f"{key}: expected a list of values, got {raw!r}")
        if len(raw) == 0:
            raise ConfigError(f"{key}: empty list of values; give at least one")
        param = exp.params[key]
        checked = [param.validate(key, v.item() if isinstance(v, np.generic) else v) for v in raw]
        if len(set(checked)) != len(checked):
            raise ConfigError(f"{key}: values must be distinct, got {list(raw)!r}")
        values[key] = checked
    return values


def sweep(
    experiment: str | Experiment,
    grid: Mapping[str, Sequence[Any]],
    base: Mapping[str, Any] | None = None,
    *,
    chunk: int | None = None,
    devices: int = 1,
    max_memory: int | None = None,
    series: Sequence[str] = (),
    checkpoint: CheckpointSpec | None = None,
) -> xarray.Dataset:
    """The outcomes of ``experiment`` on the Cartesian product of ``grid``.

    **Arguments:**

    - ``experiment``: a registered name (``gandyn list``) or an :class:`Experiment` with
      ``outcomes``;
    - ``grid``: ``{key: [values, ...]}``; every value is validated like a config value;
    - ``base``: overrides of the defaults for the keys not swept;
    - ``chunk``: runs per compiled call (default: the whole continuous grid at once); the
      last chunk is padded by repeating its last point, so every call has one shape;
    - ``devices``: split each chunk's runs over this many devices (``jax.devices()``;
      the chunk is rounded up to a multiple of it);
    - ``max_memory``: bytes the sweep may use (default :func:`available_memory`);
    - ``series``: names of recorded time series (diagnostics of a particle experiment,
      e.g. ``critic_mean``) to keep as variables ``series_<name>`` over a dimension ``t``;
    - ``checkpoint``: save each chunk's outcomes as it finishes; with ``checkpoint.resume``
      the chunks already saved are read back, not computed (see :meth:`SweepPlan.run`).

    Continuous keys (see the module doc) are ``vmap`` ped in one compiled call per chunk,
    discrete keys loop outside it. Before running, the memory of the grid is estimated
    (the outputs of every run, plus XLA's own memory analysis of one compiled chunk) and a
    grid needing more than ``max_memory`` is refused with the estimate in the message.

    **Returns:** an ``xarray.Dataset`` with one dimension and coordinate per swept key (in
    the order of ``grid``) and one variable per outcome (extra axes of array-valued
    outcomes are named ``<outcome>_<axis>``); ``attrs`` hold the experiment's name and the
    resolved config of the keys not swept, as JSON.
    """
    plan = plan_sweep(
        experiment, grid, base, chunk=chunk, devices=devices, max_memory=max_memory, series=series
    )
    return plan.run(checkpoint)


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """A sweep checked and compiled by :func:`plan_sweep`, ready to :meth:`run`."""

    experiment: str
    values: dict[str, list[Any]]
    fixed: dict[str, Any]
    """The resolved config of the keys not swept."""
    order: list[str]
    """The swept keys as the runs are laid out: discrete keys, then continuous ones."""
    shapes: dict[str, Any]
    """Shape and dtype of each outcome of one run."""
    n: int
    """Points of the continuous grid (the last chunk repeats the last one up to ``chunk``)."""
    starts: range
    """Start of each chunk in the continuous grid."""
    blocks: list[tuple[str, Callable[[int], Mapping[str, Any]]]]
    """Per combination of the discrete keys: its checkpoint name and its compiled call,
    mapping a chunk's start to the chunk's outcomes."""

    def run(
        self, checkpoint: CheckpointSpec | None = None, *, progress: bool = False
    ) -> xarray.Dataset:
        """The dataset of :func:`sweep`. With a ``checkpoint``, each chunk's outcomes are
        saved as the stage ``chunk-<combination>-<digest>-<start>`` (the digest is that of
        the sweep's settings; see :func:`gandyn.checkpoint.stage`), so with
        ``checkpoint.resume`` only the chunks not saved yet are computed and the dataset is
        the same, bit for bit. ``progress`` shows a bar over the chunks."""
        import xarray as xr

        results = []
        total = len(self.blocks) * len(self.starts)
        with tqdm(total=total, unit="chunk", disable=not progress) as bar:
            for name, call in self.blocks:
                parts = []
                for start in self.starts:
                    parts.append(
                        stage(checkpoint, f"{name}-{start}", functools.partial(call, start))
                    )
                    bar.update()
                results.append(
                    {k: np.concatenate([p[k] for p in parts])[: self.n] for k in parts[0]}
                )

        lengths = [len(self.values[k]) for k in self.order]
        coords = {key: np.asarray(v) for key, v in self.values.items()}
        if "series_t" in self.shapes:
            coords["t"] = results[0]["series_t"].reshape(-1, self.shapes["series_t"].size)[0]
        data_vars = {}
        for name, shape in self.shapes.items():
            if name == "series_t":
                continue
            stacked = np.stack([r[name] for r in results]).reshape(*lengths, *shape.shape)
            extra = [f"{name}_{axis}" for axis in range(shape.ndim)]
            if name.startswith("series_"):
                extra[0] = "t"
            dims = self.order + extra
            target = list(self.values) + extra
            data_vars[name] = (target, np.transpose(stacked, [dims.index(d) for d in target]))
        return xr.Dataset(
            data_vars,
            coords=coords,
            attrs={"experiment": self.experiment, "config": json.dumps(self.fixed)},
        )


def plan_sweep(
    experiment: str | Experiment,
    grid: Mapping[str, Sequence[Any]],
    base: Mapping[str, Any] | None = None,
    *,
    chunk: int | None = None,
    devices: int = 1,
    max_memory: int | None = None,
    series: Sequence[str] = (),
) -> SweepPlan:
    """Everything :func:`sweep` checks and compiles before running anything (the same
    arguments), so a :class:`ConfigError` comes before any work is done or written."""
    exp = _experiment(experiment)
    if series:
        assert exp.outcomes is not None
        exp = dataclasses.replace(
            exp, outcomes=functools.partial(exp.outcomes, series=tuple(series))
        )
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ConfigError(f"chunk: expected a positive integer, got {chunk!r}")
    available = len(jax.devices())
    if isinstance(devices, bool) or not isinstance(devices, int) or not 1 <= devices <= available:
        raise ConfigError(f"devices: expected an integer from 1 to {available}, got {devices!r}")
    values = _grid_values(exp, grid)
    base = dict(base or {})
    clash = sorted(set(base) & set(values))
    if clash:
        raise ConfigError(f"{clash[0]}: given both in grid and in base; give it once")
    config = resolve_config(exp, base | {key: v[0] for key, v in values.items()})
    continuous = [k for k in values if _kind(exp, k) == "continuous"]
    discrete = [k for k in values if _kind(exp, k) == "discrete"]
    shapes = _trace(exp, config, continuous)

    limit = available_memory() if max_memory is None else int(max_memory)
    n_cont = math.prod(len(values[k]) for k in continuous)
    n_total = n_cont * math.prod(len(values[k]) for k in discrete)
    per_run = sum(s.size * s.dtype.itemsize for s in jax.tree_util.tree_leaves(shapes))
    if n_total * per_run > limit:
        raise ConfigError(
            f"grid: {n_total:,} runs need about {format_bytes(n_total * per_run)} for their "
            f"outcomes alone, more than the {format_bytes(limit)} available; sweep a smaller grid"
        )
    if n_total > MAX_RUNS:
        raise ConfigError(
            f"grid: {n_total:,} runs; at most {MAX_RUNS:,} per sweep: sweep a coarser grid "
            "or split it"
        )
    for point in itertools.product(*values.values()):
        resolve_config(exp, config | dict(zip(values, point, strict=True)))

    chunk = min(n_cont if chunk is None else chunk, n_cont)
    chunk = -(-chunk // devices) * devices
    points = _cartesian([values[k] for k in continuous], config, continuous)
    padded = -(-n_cont // chunk) * chunk
    points = {k: np.concatenate([v, np.repeat(v[-1:], padded - n_cont)]) for k, v in points.items()}
    batch = tuple((key, str(jnp.asarray(points[key][:1]).dtype)) for key in continuous)
    blocks = []
    for index, point in enumerate(itertools.product(*(values[k] for k in discrete))):
        run_config = config | dict(zip(discrete, point, strict=True))
        config_json = json.dumps(run_config, sort_keys=True)
        compiled, sharding = _compile(exp.outcomes, config_json, batch, chunk, devices)
        _check_memory(compiled, n_cont, chunk, n_total * per_run, limit)
        what = [exp.name, config_json, {k: values[k] for k in continuous}, batch, chunk, devices]
        digest = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]
        call = functools.partial(_run_chunk, compiled, sharding, points, chunk)
        blocks.append((f"chunk-{index}-{digest}", call))
    return SweepPlan(
        experiment=exp.name,
        values=values,
        fixed={k: v for k, v in config.items() if k not in values},
        order=discrete + continuous,
        shapes=shapes,
        n=n_cont,
        starts=range(0, padded, chunk),
        blocks=blocks,
    )


def _cartesian(
    axes: list[list[Any]], config: Mapping[str, Any], keys: Sequence[str]
) -> dict[str, np.ndarray]:
    """Flattened Cartesian product, one ``(n,)`` array per key (last key fastest)."""
    mesh = np.meshgrid(*(np.asarray(a) for a in axes), indexing="ij")
    return {
        key: m.reshape(-1).astype(np.asarray(config[key]).dtype)
        for key, m in zip(keys, mesh, strict=True)
    }


@functools.lru_cache(maxsize=16)
def _compile(
    outcomes: Callable[[dict[str, Any]], dict[str, Any]],
    config_json: str,
    batch: tuple[tuple[str, str], ...],
    chunk: int,
    devices: int,
):
    """``vmap(outcomes)`` over the keys of ``batch`` (name, dtype; none: ``chunk`` copies
    of one run), compiled for ``chunk`` points split over the first ``devices`` devices, at
    the config ``config_json``, and the sharding its inputs take; cached, so repeated sweeps
    compile once."""
    config = json.loads(config_json)

    def one(values):
        return outcomes(config | values)

    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:devices]), ("configs",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("configs"))
    shapes = {key: jax.ShapeDtypeStruct((chunk,), dtype, sharding=sharding) for key, dtype in batch}
    return jax.jit(jax.vmap(one, axis_size=chunk)).lower(shapes).compile(), sharding


def _check_memory(compiled, n: int, chunk: int, output_bytes: int, limit: int) -> None:
    """Refuse a grid of ``n`` runs whose outcomes (``output_bytes``) and one compiled chunk
    in flight (XLA's memory analysis) need more than ``limit`` bytes."""
    stats = compiled.memory_analysis()
    if stats is None:
        return
    in_flight = stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes
    if output_bytes + in_flight > limit:
        fits = max(0, (limit - output_bytes) * chunk // max(in_flight, 1))
        hint = f"pass chunk <= {fits}" if fits >= 1 else "sweep a smaller grid"
        raise ConfigError(
            f"grid: {n:,} runs, {chunk:,} per compiled call, need about "
            f"{format_bytes(output_bytes + in_flight)} ({format_bytes(in_flight)} per chunk "
            f"in flight, {format_bytes(output_bytes)} of outcomes), more than the "
            f"{format_bytes(limit)} available; " + hint
        )


def _run_chunk(compiled, sharding, points: dict[str, np.ndarray], chunk: int, start: int):
    """The outcomes of the ``chunk`` points of ``points`` from ``start``."""
    inputs = {k: v[start : start + chunk] for k, v in points.items()}
    return compiled(jax.device_put(inputs, sharding))


def write_sweep(
    dataset: xarray.Dataset,
    out: Path,
    *,
    overwrite: bool = False,
    plots: bool = True,
    meta: Mapping[str, Any] | None = None,
    in_place: bool = False,
) -> list[Path]:
    """Write ``sweep.nc`` (NetCDF 3, read back with ``xarray.load_dataset``), ``sweep.json``
    (experiment, swept keys, config, environment, status ``ok``, and ``meta``) and, if
    ``plots``, heat-maps and line plots into ``out``: staged in a temporary sibling folder
    renamed into place at the end, so an error leaves ``out`` as it was. ``in_place`` (the
    folder of a checkpointed sweep) replaces the files one by one, ``sweep.json`` last."""
    record = {
        "experiment": dataset.attrs["experiment"],
        "grid": {key: dataset[key].values.tolist() for key in dataset.coords},
        "config": json.loads(dataset.attrs["config"]),
    } | dict(meta or {})
    record["status"] = "ok"
    with runs.staged_folder(out, overwrite=overwrite, in_place=in_place) as staging:
        dataset.to_netcdf(staging / "sweep.nc", engine="scipy")
        if plots:
            from .plotting.sweep import plot_sweep  # matplotlib only when plotting

            plot_sweep(dataset, staging)
        if not in_place:
            runs.write_record(staging, runs.SWEEP, record)
    if in_place:
        runs.write_record(out, runs.SWEEP, record)
    return sorted(Path(out).iterdir())


@eqx.filter_jit
def _value_and_grad(
    outcomes: Callable[[dict[str, Any]], dict[str, Any]],
    outcome: str,
    config: dict[str, Any],
    wrt: dict[str, jax.Array],
):
    def value(w):
        out = outcomes(config | w)
        if outcome not in out:
            raise ConfigError(f"outcome: unknown {outcome!r}; allowed: {', '.join(sorted(out))}")
        return out[outcome]

    return jax.value_and_grad(value)(wrt)


def value_and_grad_outcome(
    experiment: str | Experiment,
    outcome: str,
    wrt: Sequence[str],
    at: Mapping[str, Any] | None = None,
) -> tuple[float, dict[str, float]]:
    """``(value, {key: ∂ outcome/∂ key})`` at the config ``at``; see :func:`grad_outcome`."""
    exp = _experiment(experiment)
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            "gradients of outcomes are taken in float64: call "
            "jax.config.update('jax_enable_x64', True) first"
        )
    wrt = list(wrt)
    if not wrt or len(set(wrt)) != len(wrt):
        raise ConfigError(f"wrt: give one or more distinct keys, got {wrt!r}")
    for key in wrt:
        _kind(exp, key)
        kind = exp.params[key].kind
        if kind != "float":
            what = "an integer" if kind == "int" else "a discrete"
            raise ConfigError(
                f"{key}: {what} key has no derivative; differentiate with respect to float "
                f"keys: {', '.join(k for k, p in exp.params.items() if p.kind == 'float')}"
            )
    config = resolve_config(exp, dict(at or {}))
    _trace(exp, config, wrt)
    point = {key: jnp.asarray(config[key], dtype=jnp.float64) for key in wrt}
    assert exp.outcomes is not None
    fixed = {key: v for key, v in config.items() if key not in point}  # static: one compile
    value, grads = _value_and_grad(exp.outcomes, outcome, fixed, point)
    return float(value), {key: float(grads[key]) for key in wrt}


def grad_outcome(
    experiment: str | Experiment,
    outcome: str,
    wrt: Sequence[str],
    at: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """``{key: ∂ outcome/∂ key}`` for the float keys ``wrt`` at the config ``at`` (defaults
    for the rest), by ``jax.grad`` of the experiment's ``outcomes`` in float64: through
    ``diffeqsolve`` with its checkpointed adjoint, or a ``lax.scan``.

    One compilation per experiment, outcome, ``wrt`` and values of the other keys; calls
    that change only the ``wrt`` values reuse it (a gradient-descent loop). The gradient is
    that of the discretized run (fixed steps: the derivative of the numerical solution, not
    of the exact flow). It is zero almost everywhere for step-function outcomes
    (``wall_fraction_*``) and loses information through particles
    stuck on a ``HardClip`` wall; see the module documentation for what to use instead.
    """
    return value_and_grad_outcome(experiment, outcome, wrt, at)[1]
