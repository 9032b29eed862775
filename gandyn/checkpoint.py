"""Checkpointed particle runs: integrate in segments, save the state after each one.

A checkpointed run integrates ``[t0, t1]`` in segments of ``every`` time units and, after
each, writes ``checkpoints/ckpt-KKKKKK.npz``: the solver state, the diagnostics and
snapshots so far and a SHA-256 of all of it. Files are written to a temporary name,
fsynced and renamed (a checkpoint is either whole or absent); no pickles. An
uninterrupted checkpointed run and one killed at any moment and resumed do the same
computations segment by segment, so they agree bit for bit (same machine, same solver).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .solvers.particles import (
    Diagnostic,
    MeanFieldProblem,
    MeanFieldState,
    Trajectory,
    save_grid,
    simulate,
)

FAULT_ENV = "GANDYN_FAULT_INJECT"
"""Testing aid: ``kill-before-rename:K`` or ``kill-after-checkpoint:K`` makes the process
SIGKILL itself while writing, or right after writing, checkpoint ``K``."""

KEEP = 3


@dataclass(frozen=True)
class CheckpointSpec:
    """Where and how often: ``directory`` for the ``ckpt-*.npz`` files, ``every`` in time
    units (a multiple of the step). ``resume`` continues from the newest good file."""

    directory: Path
    every: float
    resume: bool = False
    """Continue from the newest good checkpoint (from the start if there is none)."""


def segment_bounds(t0: float, t1: float, dt: float, every: float) -> list[tuple[int, int]]:
    """Step-index bounds ``(k_a, k_b)`` of the segments covering ``[t0, t1]``."""
    n_steps = round((t1 - t0) / dt)
    per = round(every / dt)
    if per < 1 or abs(per * dt - every) > 1e-9 * max(every, 1.0):
        raise ValueError(f"checkpoint interval {every} must be a positive multiple of dt = {dt}")
    starts = list(range(0, n_steps, per))
    return [(k, min(k + per, n_steps)) for k in starts]


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    sha = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        sha.update(name.encode())
        sha.update(str(value.dtype).encode() + str(value.shape).encode())
        sha.update(value.tobytes())
    return sha.hexdigest()


def _fault(point: str, index: int) -> None:
    if os.environ.get(FAULT_ENV) == f"{point}:{index}":
        os.kill(os.getpid(), signal.SIGKILL)


def write_checkpoint(directory: Path, index: int, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write checkpoint ``index`` atomically; keep the newest ``KEEP`` files."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"ckpt-{index:06d}.npz"
    partial = directory / f".ckpt-{index:06d}.npz.partial"
    payload = dict(arrays) | {"sha256": np.array(_digest(arrays))}
    with partial.open("wb") as stream:
        np.savez(stream, allow_pickle=False, **payload)
        stream.flush()
        os.fsync(stream.fileno())
    _fault("kill-before-rename", index)
    os.replace(partial, final)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    _fault("kill-after-checkpoint", index)
    for old in sorted(directory.glob("ckpt-*.npz"))[:-KEEP]:
        old.unlink()
    return final


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """The arrays of one checkpoint; ``ValueError`` if it is truncated or corrupted."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as err:  # zipfile, CRC and format errors all mean: unusable
        raise ValueError(f"checkpoint {path.name} is unreadable ({err})") from None
    digest = str(arrays.pop("sha256", ""))
    if digest != _digest(arrays):
        raise ValueError(f"checkpoint {path.name} fails its SHA-256 check")
    return arrays


def latest_checkpoint(directory: Path) -> dict[str, np.ndarray] | None:
    """The newest good checkpoint in ``directory`` (warning about each bad one skipped)."""
    for path in sorted(directory.glob("ckpt-*.npz"), reverse=True):
        try:
            return read_checkpoint(path)
        except ValueError as err:
            warnings.warn(f"{err}; falling back to the previous checkpoint", stacklevel=2)
    return None


def _segment_saves(global_steps: np.ndarray, k_a: int, k_b: int) -> np.ndarray:
    local = global_steps[(global_steps > k_a) & (global_steps <= k_b)] - k_a
    return np.concatenate([[0], local]) if k_a == 0 else local


class _Accumulator:
    """Diagnostics and snapshots gathered segment by segment (NumPy, host memory)."""

    def __init__(self, arrays: Mapping[str, np.ndarray] | None = None):
        self.arrays: dict[str, list[np.ndarray]] = {}
        for name, value in (arrays or {}).items():
            if name.startswith(("diag_", "snap_")) or name == "ts":
                self.arrays[name] = [value]

    def add(self, name: str, value) -> None:
        self.arrays.setdefault(name, []).append(np.asarray(jax.device_get(value)))

    def joined(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.arrays.items()}


def simulate_checkpointed(
    problem: MeanFieldProblem,
    state: MeanFieldState,
    spec: CheckpointSpec,
    *,
    t1: float,
    dt: float,
    solver: str,
    snapshot_ts,
    diagnostics: Mapping[str, Diagnostic],
    progress: bool = False,
) -> Trajectory:
    """:func:`simulate` in checkpointed segments (fixed steps from ``t0 = 0``).

    Returns the same :class:`Trajectory` as one call would, assembled from the segments;
    stops at the first segment that does not finish ``ok``. Ctrl-C between or during
    segments returns what was computed with status ``interrupted``.
    """
    t0 = 0.0
    bounds = segment_bounds(t0, t1, dt, spec.every)
    global_steps = np.round((save_grid(t0, t1, dt) - t0) / dt).astype(int)
    snapshot_ts = np.unique(np.concatenate([[t0, t1], np.asarray(snapshot_ts, float)]))
    first = 0
    store = _Accumulator()
    saved = None
    if spec.resume:
        saved = latest_checkpoint(spec.directory)
    if spec.resume and saved is not None:
        first = int(saved["segment"]) + 1
        state = MeanFieldState(
            jnp.asarray(saved["state_generator"]), jnp.asarray(saved["state_critic"])
        )
        store = _Accumulator(saved)
    trajectory: Trajectory | None = None
    interrupted = False
    steps_done = bounds[first - 1][1] if first > 0 else 0
    for index in range(first, len(bounds)):
        k_a, k_b = bounds[index]
        a = t0 + k_a * dt
        b = t1 if k_b == bounds[-1][1] else t0 + k_b * dt
        local = _segment_saves(global_steps, k_a, k_b)
        save_ts = a + dt * local
        save_ts[local == k_b - k_a] = b
        wanted = snapshot_ts[(snapshot_ts >= a) & (snapshot_ts <= b)]
        if index > 0:
            wanted = wanted[wanted > a]
        try:
            trajectory = simulate(
                problem,
                state,
                t0=a,
                t1=b,
                dt=dt,
                solver=solver,
                save_ts=save_ts,
                snapshot_ts=wanted,
                diagnostics=diagnostics,
                progress_meter=diffrax.TqdmProgressMeter() if progress else None,
            )
            jax.block_until_ready(trajectory)
        except KeyboardInterrupt:
            interrupted = True
            break
        store.add("ts", trajectory.ts)
        for name, value in trajectory.diagnostics.items():
            store.add(f"diag_{name}", value)
        keep = np.isin(np.asarray(trajectory.snapshot_ts), wanted)
        store.add("snap_ts", np.asarray(trajectory.snapshot_ts)[keep])
        store.add("snap_generator", np.asarray(trajectory.snapshots.generator)[keep])
        store.add("snap_critic", np.asarray(trajectory.snapshots.critic)[keep])
        state = trajectory.final
        steps_done += int(trajectory.num_steps)
        if trajectory.status != "ok":
            break
        write_checkpoint(
            spec.directory,
            index,
            store.joined()
            | {
                "segment": np.array(index),
                "t": np.array(b),
                "state_generator": np.asarray(state.generator),
                "state_critic": np.asarray(state.critic),
            },
        )
    return _assemble(store.joined(), trajectory, state, interrupted, t0, steps_done)


def _assemble(
    arrays: dict[str, np.ndarray],
    last: Trajectory | None,
    state: MeanFieldState,
    interrupted: bool,
    t0: float,
    steps_done: int,
) -> Trajectory:
    diagnostics = {k[5:]: jnp.asarray(v) for k, v in arrays.items() if k.startswith("diag_")}
    ts = jnp.asarray(arrays.get("ts", np.array([t0])))
    final_t = ts[-1] if last is None or last.status == "ok" else last.final_t
    result = diffrax.RESULTS.successful if last is None else last.result
    snapshots = MeanFieldState(
        jnp.asarray(arrays["snap_generator"]), jnp.asarray(arrays["snap_critic"])
    )
    return Trajectory(
        ts=ts,
        diagnostics=diagnostics,
        snapshot_ts=jnp.asarray(arrays["snap_ts"]),
        snapshots=snapshots,
        final=state,
        final_t=jnp.asarray(final_t),
        result=result,
        num_steps=jnp.asarray(steps_done),
        interrupted=interrupted,
    )


def run_metadata(directory: Path) -> dict[str, Any]:
    """``run.json`` of a run folder (what ``gandyn resume`` needs to continue it)."""
    path = directory / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{directory} has no run.json: not a gandyn run folder")
    return json.loads(path.read_text())
