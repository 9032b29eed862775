"""Runs that survive: checkpoints written as the work goes, and resume from them.

Two kinds of checkpoint, both ``.npz`` files written to a temporary name, fsynced and
renamed (a file is whole or absent), with a SHA-256 of their arrays and the ``origin`` of
the run, never pickled:

- :func:`run_segments`: a time integration in segments (the particle ODE's
  :func:`~gandyn.simulate_checkpointed`, the WGAN algorithm's
  :func:`~gandyn.solvers.train_wgan`, the grid and Fokker–Planck solvers); after each
  segment ``ckpt-KKKKKK.npz`` holds the carry (state, optimizer states, key, …) and the
  records so far. Segments of one length share one compilation. :func:`plan_segments` is
  the one segment policy of every solver (the grid solvers' steps for it are their save
  times, which they land on): every save and snapshot lies in exactly one segment, so the
  interval changes no number.
- :func:`stage`: one finished piece of work of a run (a grid solve, a sweep chunk) as
  ``stages/NAME.npz``.

A run killed at any moment and resumed does the same computations as one left alone, so
the two agree bit for bit (same machine, same solver). A damaged newest file is skipped
with a warning; a file of another run raises :class:`StaleCheckpoint`.
"""

from __future__ import annotations

import hashlib
import os
import signal
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

FAULT_ENV = "GANDYN_FAULT_INJECT"
"""Testing aid: ``kill-before-rename:K`` or ``kill-after-checkpoint:K`` makes the process
SIGKILL itself while writing, or right after writing, the ``K``-th checkpoint file it
writes (counting from 0, stages and segments alike)."""

KEEP = 3


@dataclass(frozen=True)
class CheckpointSpec:
    """Where and how often: ``directory`` for the ``ckpt-*.npz`` files, ``every`` in time
    units (a multiple of the step; ``None``: :func:`default_interval`). ``resume``
    continues from the newest good file."""

    directory: Path
    every: float | None = None
    resume: bool = False
    """Continue from the newest good checkpoint (from the start if there is none)."""
    origin: str = ""
    """What run the files belong to (e.g. JSON of the experiment, resolved config and
    gandyn version): written into every file; resuming from a file of another origin
    raises :class:`StaleCheckpoint`."""

    def within(self, name: str) -> CheckpointSpec:
        """The same spec for a part of the run, in the sub-folder ``name``."""
        return replace(self, directory=self.directory / name)

    def interval(self, t1: float, step: float) -> float:
        """The checkpoint interval for a run of ``t1`` in steps of ``step``."""
        return default_interval(t1, step) if self.every is None else self.every


SEGMENTS = 10
"""Checkpoints per run at the default interval."""


def default_interval(t1: float, step: float) -> float:
    """About ``t1 / SEGMENTS``, a whole number of steps, preferring a divisor of the
    number of steps (equal segments share one compiled solve)."""
    n_steps = max(1, round(t1 / step))
    target = max(1, round(n_steps / SEGMENTS))
    near = [per for per in range(max(1, target // 2), 2 * target + 1) if n_steps % per == 0]
    per = min(near, key=lambda p: abs(p - target)) if near else target
    return per * step


@dataclass(frozen=True)
class Window:
    """One segment of a fixed-step run: steps ``k_a + 1 .. k_b`` (from the state at step
    ``k_a``), the save times and snapshot times it records (indices into the lists given
    to :func:`plan_segments`)."""

    k_a: int
    k_b: int
    saves: np.ndarray
    snapshots: np.ndarray


def step_of(step_ts: np.ndarray, times: np.ndarray) -> np.ndarray:
    """For each time, the step that records it: the first ``k`` with ``step_ts[k] >= t``
    (a save between two steps is interpolated in the step that passes it, as diffrax does;
    ``t0`` is step 0)."""
    return np.searchsorted(step_ts, np.asarray(times, dtype=float), side="left")


def plan_segments(step_ts, save_ts, snapshot_ts, every: float) -> list[Window]:
    """The checkpoint segments of a run over the steps ``step_ts (K+1,)`` (sorted times),
    saving at ``save_ts`` and snapshotting at ``snapshot_ts`` (sorted, within the steps).

    ``every`` (time units) is rounded to a whole number of steps, at least one, at most
    the run. Window ``i`` covers steps ``(k_a, k_b]`` and holds exactly the saves and
    snapshots recorded by those steps (the first window also those at ``k_a``): every
    time is in one window, none twice, whatever the interval. The one segment policy of
    every solver (:func:`~gandyn.simulate_checkpointed`, :func:`~gandyn.solvers.train_wgan`,
    and over their save times :func:`~gandyn.solve_continuity` and
    :func:`~gandyn.solve_fokker_planck`).
    """
    step_ts = np.asarray(step_ts, dtype=float)
    n_steps = step_ts.size - 1
    span = float(step_ts[-1] - step_ts[0])
    every = float(every)
    if not every > 0:
        raise ValueError(f"the checkpoint interval must be positive, got {every}")
    per = n_steps if every >= span else max(1, round(every * n_steps / span))
    save_steps, snap_steps = step_of(step_ts, save_ts), step_of(step_ts, snapshot_ts)
    windows = []
    for k_a in range(0, n_steps, per):
        k_b = min(k_a + per, n_steps)
        low = -1 if k_a == 0 else k_a
        windows.append(
            Window(
                k_a,
                k_b,
                np.flatnonzero((save_steps > low) & (save_steps <= k_b)),
                np.flatnonzero((snap_steps > low) & (snap_steps <= k_b)),
            )
        )
    return windows


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    sha = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        sha.update(name.encode())
        sha.update(str(value.dtype).encode() + str(value.shape).encode())
        sha.update(value.tobytes())
    return sha.hexdigest()


class StaleCheckpoint(RuntimeError):
    """A checkpoint written by another run (another config or gandyn version)."""


def _check_origin(spec: CheckpointSpec, arrays: dict[str, np.ndarray], path: Path) -> dict:
    """``arrays`` without their ``origin``, which must be ``spec.origin``."""
    origin = str(arrays.pop("origin", ""))
    if origin != spec.origin:
        raise StaleCheckpoint(
            f"{path} was written by another run ({origin or 'unrecorded'}), not this one "
            f"({spec.origin or 'unrecorded'}); remove the checkpoints to start afresh"
        )
    return arrays


_written = [0]
"""Checkpoint files this process has written (what ``FAULT_ENV`` counts)."""


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == f"{point}:{_written[0]}":
        os.kill(os.getpid(), signal.SIGKILL)


def _write_atomic(path: Path, arrays: Mapping[str, np.ndarray], origin: str = "") -> None:
    """``arrays``, ``origin`` and their SHA-256 to ``path``: temporary file, fsync, rename,
    fsync the folder. A reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    payload = dict(arrays) | ({"origin": np.array(origin)} if origin else {})
    payload |= {"sha256": np.array(_digest(payload))}
    with partial.open("wb") as stream:
        np.savez(stream, allow_pickle=False, **payload)
        stream.flush()
        os.fsync(stream.fileno())
    _fault("kill-before-rename")
    os.replace(partial, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    _fault("kill-after-checkpoint")
    _written[0] += 1


def write_checkpoint(
    directory: Path, index: int, arrays: Mapping[str, np.ndarray], origin: str = ""
) -> Path:
    """Write checkpoint ``index`` atomically; keep the newest ``KEEP`` files."""
    final = directory / f"ckpt-{index:06d}.npz"
    _write_atomic(final, arrays, origin)
    for old in sorted(directory.glob("ckpt-*.npz"))[:-KEEP]:
        old.unlink()
    return final


def within(spec: CheckpointSpec | None, name: str) -> CheckpointSpec | None:
    """``spec.within(name)``, or ``None`` without a spec."""
    return None if spec is None else spec.within(name)


def stage(
    spec: CheckpointSpec | None, name: str, compute: Callable[[], Mapping[str, Any]]
) -> dict[str, np.ndarray]:
    """The arrays of one stage of a run, computed once: ``compute()`` is called and its
    result saved as ``stages/NAME.npz`` (atomically), unless ``spec.resume`` finds that
    file whole, in which case it is read instead (a damaged one is recomputed, with a
    warning). Without a ``spec``, just ``compute()``."""
    if spec is None:
        return {key: np.asarray(jax.device_get(v)) for key, v in compute().items()}
    path = spec.directory / "stages" / f"{name}.npz"
    if spec.resume and path.exists():
        try:
            saved = read_checkpoint(path)
        except ValueError as err:
            warnings.warn(f"{err}; computing stage {name!r} again", stacklevel=2)
        else:
            return _check_origin(spec, saved, path)
    arrays = {key: np.asarray(jax.device_get(v)) for key, v in compute().items()}
    _write_atomic(path, arrays, spec.origin)
    return arrays


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


def latest_checkpoint(spec: CheckpointSpec) -> dict[str, np.ndarray] | None:
    """The newest good checkpoint in ``spec.directory`` (warning about each bad one
    skipped; :class:`StaleCheckpoint` if it belongs to another run)."""
    for path in sorted(spec.directory.glob("ckpt-*.npz"), reverse=True):
        try:
            arrays = read_checkpoint(path)
        except ValueError as err:
            warnings.warn(f"{err}; falling back to the previous checkpoint", stacklevel=2)
            continue
        return _check_origin(spec, arrays, path)
    return None


@dataclass
class Segments:
    """What :func:`run_segments` returns: the ``records`` of every finished segment joined
    along their first axis, the ``carry`` after the last one, how many segments ran
    (``done``, counting those restored from a checkpoint), whether the last one reported
    a failure (``failed``) and whether Ctrl-C stopped the run (``interrupted``)."""

    records: dict[str, np.ndarray]
    carry: Any
    done: int
    failed: bool = False
    interrupted: bool = False


def _restore(saved: dict[str, np.ndarray], like, count: int, where: Path) -> tuple[int, Any]:
    """The segment to continue from and the carry of a checkpoint, refused like a stale one
    (:class:`StaleCheckpoint`) when its contents do not fit the run: a segment beyond the
    run's ``count``, arrays of other shapes or dtypes."""
    try:
        segment = int(saved["segment"])
        if not 0 <= segment < count:
            raise ValueError(f"it ends segment {segment}, the run has segments 0 to {count - 1}")
        n_carry = sum(1 for name in saved if name.startswith("carry_"))
        carry = _from_host(like, [saved[f"carry_{i}"] for i in range(n_carry)])
    except (KeyError, ValueError, TypeError) as err:
        raise StaleCheckpoint(
            f"the checkpoint in {where} does not fit this run ({err}); remove it or start again"
        ) from None
    return segment + 1, carry


def _to_host(tree) -> list[np.ndarray]:
    """The leaves of ``tree`` as NumPy arrays (PRNG keys as their raw key data)."""
    leaves = []
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        leaves.append(np.asarray(jax.device_get(leaf)))
    return leaves


def _from_host(like, leaves: list[np.ndarray]):
    """``leaves`` (from :func:`_to_host`) put back into the structure of ``like``."""
    template, treedef = jax.tree.flatten(like)
    if len(template) != len(leaves):
        raise ValueError(f"checkpoint holds {len(leaves)} arrays, the run needs {len(template)}")
    restored = []
    for old, new in zip(template, leaves, strict=True):
        if isinstance(old, jax.Array) and jnp.issubdtype(old.dtype, jax.dtypes.prng_key):
            restored.append(
                jax.random.wrap_key_data(jnp.asarray(new), impl=jax.random.key_impl(old))
            )
            continue
        dtype = np.dtype(old.dtype if hasattr(old, "dtype") else np.asarray(old).dtype)
        if np.shape(old) != new.shape or dtype != new.dtype:
            raise ValueError(
                f"checkpoint array {new.dtype}{list(new.shape)} does not match the run's "
                f"{dtype}{list(np.shape(old))}: was the config changed?"
            )
        # back where the run keeps it (e.g. sharded over devices)
        restored.append(jax.device_put(new, old.sharding) if isinstance(old, jax.Array) else new)
    return jax.tree.unflatten(treedef, restored)


Segment = Callable[[int, Any], tuple[Mapping[str, Any], Any, bool]]


def run_segments(
    spec: CheckpointSpec | None,
    carry,
    count: int,
    segment: Segment,
    *,
    progress: bool = False,
) -> Segments:
    """Run ``segment(index, carry) -> (records, carry, ok)`` for ``index = 0..count−1``.

    With a ``spec``, after each segment that is ``ok`` the records so far and the new
    carry (any pytree of arrays, PRNG keys included) are written as checkpoint ``index``;
    with ``spec.resume`` the run restarts after the newest good checkpoint. The loop stops
    after a segment that is not ``ok`` (its records are kept, nothing is written) and on
    Ctrl-C (the segment in flight is lost, everything before it is kept). Without a
    ``spec`` nothing is written. ``progress`` shows a bar over the segments.
    """
    store = _Accumulator()
    first = 0
    if spec is not None and spec.resume:
        saved = latest_checkpoint(spec)
        if saved is not None:
            first, carry = _restore(saved, carry, count, spec.directory)
            store = _Accumulator({k[4:]: v for k, v in saved.items() if k.startswith("rec_")})
    done, failed, interrupted = first, False, False
    bar = tqdm(total=count, initial=first, unit="segment", disable=not progress)
    try:
        for index in range(first, count):
            try:
                records, new_carry, ok = segment(index, carry)
                jax.block_until_ready(new_carry)
            except KeyboardInterrupt:
                interrupted = True
                break
            for name, value in records.items():
                store.add(name, value)
            carry, done = new_carry, index + 1
            bar.update()
            if not ok:
                failed = True
                break
            if spec is not None:
                arrays = {f"rec_{k}": v for k, v in store.joined().items()}
                arrays |= {f"carry_{i}": v for i, v in enumerate(_to_host(carry))}
                arrays |= {"segment": np.array(index)}
                write_checkpoint(spec.directory, index, arrays, spec.origin)
    finally:
        bar.close()
    return Segments(store.joined(), carry, done, failed, interrupted)


class _Accumulator:
    """Records gathered segment by segment (NumPy, host memory)."""

    def __init__(self, arrays: Mapping[str, np.ndarray] | None = None):
        self.arrays: dict[str, list[np.ndarray]] = {k: [v] for k, v in (arrays or {}).items()}

    def add(self, name: str, value) -> None:
        self.arrays.setdefault(name, []).append(np.asarray(jax.device_get(value)))

    def joined(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.arrays.items()}
