"""The run vocabulary every solver shares: one result type, one status set, one failure
report, one array packing for stage checkpoints, one time grid and one non-finite stopping
loop. A solver adds only its step and its state."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from .._types import Array, Bool, Float, Int, PyTree
from ..checkpoint import CheckpointSpec, stage, within


class RESULTS(eqx.Enumeration):
    """How a run ended (``Trajectory.status`` is the name)."""

    ok = ""
    nonfinite = "the state went non-finite"
    max_steps = "the step budget ran out before the end time"
    interrupted = "stopped by Ctrl-C"


STATUSES = ("ok", "nonfinite", "max_steps", "interrupted")


def finite(state: PyTree) -> Bool[Array, ""]:
    """Every entry of every leaf of ``state`` is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state)]))


def nonfinite_event(t, y, args, **kwargs) -> Bool[Array, ""]:
    """A diffrax event condition: the state ``y`` is not finite."""
    del t, args, kwargs
    return ~finite(y)


def outcome(state: PyTree, t, t1) -> RESULTS:
    """The one status rule: ``nonfinite`` if ``state`` is not finite, else ``max_steps`` if
    the run stopped at ``t < t1``, else ``ok``."""
    return RESULTS.where(
        finite(state), RESULTS.where(t < t1, RESULTS.max_steps, RESULTS.ok), RESULTS.nonfinite
    )


def while_finite(going: Callable, step: Callable, carry, state: Callable):
    """``lax.while_loop(going, step, carry)`` that also stops after the first step whose
    ``state(carry)`` is not finite (that state is kept)."""
    return jax.lax.while_loop(lambda c: going(c) & finite(state(c)), step, carry)


class AbstractTrajectory(eqx.Module):
    """What every solver returns (:class:`Trajectory`, or a subclass adding what one
    solver's result needs beyond it).

    - ``ts (T,)`` and ``diagnostics``: a dict name → ``(T, ...)`` recorded on the fly;
    - ``snapshot_ts (S,)`` and ``snapshots``: full states (a leading ``S`` axis);
    - ``final``: the last state, reached at ``final_t``; ``num_steps``: steps taken;
    - ``result``: a :class:`RESULTS` item (``status`` is its name);
    - ``entries``: what the rows of a state are (``particles`` or ``cells``), for the
      failure report.

    After a run stopped early, saves past the stop are ``inf`` or NaN (or repeat the
    failed state, as the solver documents); everything before it is kept. Batched runs
    (``vmap``) carry a leading axis on every field.
    """

    ts: Float[Array, " T"]
    diagnostics: dict[str, Array]
    snapshot_ts: Float[Array, " S"]
    snapshots: PyTree
    final: PyTree
    final_t: Float[Array, ""]
    result: RESULTS
    num_steps: Int[Array, ""]
    entries: str = eqx.field(static=True)

    @property
    def status(self) -> str:
        """``ok``, ``nonfinite`` (stopped on a non-finite state), ``max_steps`` (stopped
        before the end time) or ``interrupted`` (Ctrl-C during a checkpointed run)."""
        return next(name for name in STATUSES if bool(self.result == getattr(RESULTS, name)))

    @property
    def interrupted(self) -> bool:
        """Whether Ctrl-C stopped the run (any of a batch)."""
        code = jax.tree.leaves(RESULTS.interrupted)[0]
        return bool(np.any(np.asarray(jax.tree.leaves(self.result)[0]) == code))

    def completed(self) -> AbstractTrajectory:
        """The saves made before the run stopped, with finite diagnostics (everything when
        the status is ``ok``). Python-side post-processing: not for use under ``jit``."""
        ts = np.asarray(self.ts)
        keep = ts <= float(self.final_t)
        for series in self.diagnostics.values():
            values = np.asarray(series).reshape(ts.shape[0], -1)
            keep &= np.all(np.isfinite(values), axis=1)
        return eqx.tree_at(
            lambda tr: (tr.ts, tr.diagnostics),
            self,
            (self.ts[keep], {name: value[keep] for name, value in self.diagnostics.items()}),
        )

    def failure_report(self) -> str | None:
        """One line: how and when the run stopped, and which entries of the final state
        went non-finite (``None`` if ok)."""
        if self.status == "ok":
            return None
        where = ", ".join(nonfinite_entries(self.final, self.entries))
        when = f"run stopped ({self.status}) in step {int(self.num_steps)}"
        when += f" at t = {float(self.final_t):.6g}"
        return when + (f"; non-finite: {where}" if where else "")


class Trajectory(AbstractTrajectory):
    """The result of a run: the fields of :class:`AbstractTrajectory`, nothing more."""


def nonfinite_entries(state: PyTree, entries: str = "particles", limit: int = 8) -> list[str]:
    """``"NAME ENTRIES [i, …]"`` for each named array field of ``state`` (a bare array has
    no name) holding non-finite rows: particles are rows ``(n, ...)``, cells are index
    tuples into the grid (plain indices in 1-D); the first ``limit`` of each."""
    if dataclasses.is_dataclass(state):
        fields = [(f.name, getattr(state, f.name)) for f in dataclasses.fields(state)]
    else:
        fields = [("", state)]
    out = []
    for name, value in fields:
        if not isinstance(value, jax.Array | np.ndarray) or np.ndim(value) == 0:
            continue  # tracked scalars (first times of events) are not entries
        values = np.asarray(value)
        if entries == "particles":
            rows = ~np.all(np.isfinite(values.reshape(values.shape[0], -1)), axis=1)
            bad = np.flatnonzero(rows)[:limit].tolist()
        else:
            found = np.argwhere(~np.isfinite(values))[:limit]
            bad = [int(i[0]) if len(i) == 1 else tuple(int(k) for k in i) for i in found]
        if bad:
            out.append(f"{entries if name in ('', entries) else f'{name} {entries}'} {bad}")
    return out


TrajectoryT = TypeVar("TrajectoryT", bound=AbstractTrajectory)


def interrupt(trajectory: TrajectoryT) -> TrajectoryT:
    """``trajectory`` with status ``interrupted`` (every run of a batch)."""
    result = jax.tree.map(
        lambda v, c: jnp.broadcast_to(c, jnp.shape(v)), trajectory.result, RESULTS.interrupted
    )
    return eqx.tree_at(lambda t: t.result, trajectory, result)


def checked(trajectory: TrajectoryT, throw: bool) -> TrajectoryT:
    """``trajectory``; with ``throw``, a ``RuntimeError`` carrying the failure report if
    its status is not ``ok`` (``eqx.error_if`` when the result is traced), as diffrax's
    ``throw=``."""
    if not throw:
        return trajectory
    code = jax.tree.leaves(trajectory.result)[0]
    if isinstance(code, Tracer):
        return eqx.error_if(trajectory, code != 0, "the run did not finish ok")
    if np.ndim(code):
        failed = int(np.count_nonzero(np.asarray(code)))
        if failed:
            raise RuntimeError(f"{failed} of {np.size(code)} batched runs did not finish ok")
    elif trajectory.status != "ok":
        raise RuntimeError(trajectory.failure_report())
    return trajectory


# ----------------------------------------------------------------------------- packing


def as_arrays(tree: PyTree) -> dict[str, np.ndarray]:
    """The array leaves of ``tree`` (a trajectory, any eqx module) as NumPy arrays named by
    their path (for stage checkpoints; :func:`from_arrays`)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): np.asarray(jax.device_get(v)) for path, v in leaves}


def from_arrays(like: PyTree, arrays: dict[str, Any]) -> PyTree:
    """The tree :func:`as_arrays` packed, in the structure of ``like`` (e.g. from
    ``eqx.filter_eval_shape``); ``ValueError`` if a leaf is missing or of another
    shape or dtype."""
    paths, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = []
    for path, old in paths:
        name = jax.tree_util.keystr(path)
        if name not in arrays:
            raise ValueError(f"the stage has no array {name}")
        new = np.asarray(arrays[name])
        if new.shape != tuple(old.shape) or new.dtype != np.dtype(old.dtype):
            raise ValueError(
                f"stage array {name} is {new.dtype}{list(new.shape)}, the run's is "
                f"{np.dtype(old.dtype)}{list(old.shape)}"
            )
        leaves.append(jnp.asarray(new))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def staged(
    spec: CheckpointSpec | None, name: str, solve: Callable[[CheckpointSpec | None], PyTree]
) -> PyTree:
    """``solve(spec.within(name))`` as checkpoint stage ``name``
    (:func:`~gandyn.checkpoint.stage`): computed once, or read back on resume into the
    structure ``solve(None)`` would return (traced with ``eqx.filter_eval_shape``, nothing
    run)."""
    computed = []

    def compute():
        computed.append(solve(within(spec, name)))
        if isinstance(computed[0], AbstractTrajectory) and computed[0].interrupted:
            raise KeyboardInterrupt  # not a finished stage: its checkpoints resume it
        return as_arrays(computed[0])

    arrays = stage(spec, name, compute)
    return computed[0] if computed else from_arrays(eqx.filter_eval_shape(solve, None), arrays)


# ----------------------------------------------------------------------------- time grid


def step_count(t0: float, t1: float, dt: float, name: str = "dt") -> int:
    """The number of fixed steps ``dt`` from ``t0`` to ``t1``; ``ValueError`` unless the
    times are finite, ``t0 < t1``, ``dt > 0`` and ``t1 − t0`` a whole number of steps."""
    if not (np.isfinite([t0, t1, dt]).all() and t1 > t0 and dt > 0):
        raise ValueError(f"need finite t0 < t1 and {name} > 0, got t0={t0}, t1={t1}, {name}={dt}")
    n_steps = (t1 - t0) / dt
    if round(n_steps) < 1 or abs(n_steps - round(n_steps)) > 1e-6 * max(1.0, n_steps):
        raise ValueError(f"t1 - t0 = {t1 - t0} is not a positive multiple of {name} = {dt}")
    return round(n_steps)


def step_times(t0: float, t1: float, dt: float) -> np.ndarray:
    """The step grid ``t0 + k dt``, ``k = 0..n`` (:func:`step_count`), ending exactly at
    ``t1``."""
    ts = t0 + dt * np.arange(step_count(t0, t1, dt) + 1)
    ts[-1] = t1
    return ts


MAX_SAVES = 4001
"""Default cap on the number of save times of a run (:func:`save_grid`)."""


def save_grid(t0: float, t1: float, dt: float, max_saves: int = MAX_SAVES) -> np.ndarray:
    """Save times on the step grid ``t0 + k dt`` (every step if there are at most
    ``max_saves``, otherwise every ``stride``-th step so there are at most that many)."""
    n_steps = round((t1 - t0) / dt)
    stride = max(1, -(-n_steps // (max_saves - 1)))
    steps = np.arange(0, n_steps + 1, stride)
    if steps[-1] != n_steps:
        steps = np.append(steps, n_steps)
    times = t0 + steps * dt
    times[-1] = t1
    return times


def run_times(
    t0: float, t1: float, save_ts, snapshot_ts, default_saves
) -> tuple[np.ndarray, np.ndarray]:
    """The save times (``default_saves`` if ``save_ts`` is None) and the snapshot times
    (``snapshot_ts`` plus ``t0`` and ``t1``, sorted, unique) of a run over ``[t0, t1]``;
    ``ValueError`` unless both are non-empty lists of times in that interval."""
    saves = np.asarray(default_saves if save_ts is None else save_ts, dtype=float)
    snaps = np.unique(np.concatenate([[t0, t1], np.asarray(snapshot_ts, dtype=float)]))
    for name, times in (("save_ts", saves), ("snapshot_ts", snaps)):
        if times.ndim != 1 or times.size == 0 or times.min() < t0 or times.max() > t1:
            raise ValueError(f"{name} must be a non-empty list of times in [{t0}, {t1}]")
    return saves, snaps
