"""Finite volumes for the continuity equations of the game on boxes in 1-D and 2-D (DESIGN §3).

A density on a grid is the weighted measure ``Σ_i m_i δ_{x_i}`` at the cell centres (cell
masses ``m_i``), so the game's velocity (``games/velocity.py``) is evaluated at the cell
faces by the very probe mechanism the particle solver uses. Each player has its own grid;
the game sees both as measures. Fluxes follow the problem's scheme (``solvers/schemes.py``):
:class:`Upwind` (first order) or :class:`MUSCL`, a reconstruction with the minmod limiter
(second order, stepped with SSP Runge–Kutta 2). The walls of a box
carry zero flux: for the critic on ``[−c, c]^q`` this is the sticky projected dynamics of
``HardClip`` (§1.3), mass piles into the wall cells and the discrete sup-norm grows like
``1/Δx`` after first contact.

Time stepping is explicit, under a CFL limit computed from the face velocities at every
step: the outflow rate of a cell, ``Σ_k (a⁺_{k,right} + a⁻_{k,left}) / Δx_k``, times ``dt``
must stay below 1 (upwind) or 1/2 (MUSCL, at both SSP-RK2 stages: the state of the second
depends on the step, which is cut until it complies); then every step keeps the masses
non-negative.
The loop is ``lax.scan`` over save times with a ``lax.while_loop`` of CFL steps inside:
the step size depends on the state (velocities of a game change with both measures), which
diffrax's step-size controllers (built on error estimates) do not express.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer
from jax.scipy.special import ndtr

from .._checks import strategy
from .._types import Array, Bool, Float
from ..checkpoint import CheckpointSpec, plan_segments, run_segments
from ..constraints import AbstractConstraint, HardClip, NoConstraint, PenaltyClip
from ..distributions import GaussianMixture, Normal
from ..games import MeanFieldGame, critic_velocity, generator_velocity
from ..measure import ParticleMeasure
from .outcome import RESULTS, Trajectory, checked, finite, outcome, run_times, while_finite
from .schemes import AbstractScheme, Upwind


class Grid(eqx.Module):
    """A box ``[low, high]`` in R^d (``d`` = 1 or 2) cut into ``cells`` equal cells per axis.

    Masses on the grid are arrays of shape ``cells``; ``centres()`` lists the cell centres
    ``(n, d)`` in the same (C) order as ``masses.ravel()``.
    """

    low: Float[Array, " d"]
    high: Float[Array, " d"]
    cells: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, low, high, cells: int | Sequence[int]):
        low_np = np.atleast_1d(np.asarray(low, dtype=float))
        high_np = np.broadcast_to(np.asarray(high, dtype=float), low_np.shape)
        if low_np.ndim != 1 or low_np.size not in (1, 2):
            raise ValueError(f"a grid lives in 1-D or 2-D, got low = {low!r}")
        if not (np.all(np.isfinite(low_np)) and np.all(np.isfinite(high_np))):
            raise ValueError(f"domain bounds must be finite, got low={low!r}, high={high!r}")
        if np.any(high_np <= low_np):
            raise ValueError(f"domain needs low < high on every axis, got {low!r} and {high!r}")
        counts = tuple(np.atleast_1d(np.asarray(cells, dtype=object)).tolist())
        if len(counts) == 1:
            counts = counts * low_np.size
        if len(counts) != low_np.size or not all(
            isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0 for n in counts
        ):
            raise ValueError(
                f"cells must be a positive integer (or one per axis, {low_np.size} here), "
                f"got {cells!r}"
            )
        if min(counts) < 2:
            raise ValueError(f"cells must be at least 2 per axis, got {cells!r}")
        self.low, self.high = jnp.asarray(low_np), jnp.asarray(high_np)
        self.cells = tuple(int(n) for n in counts)

    @property
    def dim(self) -> int:
        return len(self.cells)

    @property
    def size(self) -> int:
        """Number of cells."""
        return math.prod(self.cells)

    @property
    def spacing(self) -> Float[Array, " d"]:
        """Cell widths ``Δx_k``."""
        return (self.high - self.low) / jnp.asarray(self.cells, dtype=self.low.dtype)

    @property
    def volume(self) -> Float[Array, ""]:
        """Volume of one cell."""
        return jnp.prod(self.spacing)

    def edges(self, axis: int) -> Float[Array, " n+1"]:
        """Cell boundaries along ``axis``, walls included."""
        n = self.cells[axis]
        return self.low[axis] + jnp.arange(n + 1, dtype=self.low.dtype) * self.spacing[axis]

    def axis_centres(self, axis: int) -> Float[Array, " n"]:
        edges = self.edges(axis)
        return 0.5 * (edges[1:] + edges[:-1])

    def _points(self, coords: list[Array]) -> Float[Array, "P d"]:
        mesh = jnp.meshgrid(*coords, indexing="ij")
        return jnp.stack([m.ravel() for m in mesh], axis=1)

    def centres(self) -> Float[Array, "n d"]:
        """Cell centres in C order."""
        return self._points([self.axis_centres(k) for k in range(self.dim)])

    def face_shape(self, axis: int) -> tuple[int, ...]:
        """Shape of the interior faces normal to ``axis`` (one fewer along ``axis``)."""
        return tuple(n - (k == axis) for k, n in enumerate(self.cells))

    def faces(self, axis: int) -> Float[Array, "F d"]:
        """Centres of the interior faces normal to ``axis``, in C order of ``face_shape``."""
        coords = [self.axis_centres(k) for k in range(self.dim)]
        coords[axis] = self.edges(axis)[1:-1]
        return self._points(coords)

    def wall_cells(self) -> Bool[Array, "..."]:
        """Cells that touch a wall of the box (shape ``cells``)."""
        mask = jnp.zeros(self.cells, dtype=bool)
        for axis, n in enumerate(self.cells):
            index = jnp.arange(n).reshape([-1 if k == axis else 1 for k in range(self.dim)])
            mask = mask | (index == 0) | (index == n - 1)
        return mask

    def measure(self, masses: Float[Array, "..."]) -> ParticleMeasure:
        """The masses as the weighted measure at the cell centres."""
        return ParticleMeasure(self.centres(), masses.ravel())

    def describe(self) -> str:
        box = " × ".join(
            f"[{float(a):g}, {float(b):g}]" for a, b in zip(self.low, self.high, strict=True)
        )
        return f"{box} with {' × '.join(map(str, self.cells))} cells"


def _interval_mass(a: Array, b: Array) -> Array:
    """``Φ(b) − Φ(a)`` for ``a ≤ b``, accurate in both tails."""
    return jnp.where(a > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))


def cell_masses(grid: Grid, law: GaussianMixture | Normal) -> Float[Array, "..."]:
    """Exact cell masses of a Gaussian mixture or product normal law (not normalised)."""
    if isinstance(law, GaussianMixture):
        means, weights = law.means, law.weights
        stds = jnp.broadcast_to(law.stds[:, None], means.shape)
    elif isinstance(law, Normal):
        means, weights, stds = law.loc[None], jnp.ones(1), law.scale[None]
    else:
        raise ValueError(f"cell masses need a GaussianMixture or Normal, got {type(law).__name__}")
    if means.shape[1] != grid.dim:
        raise ValueError(f"the law lives in R^{means.shape[1]}, the grid in R^{grid.dim}")
    masses = weights
    for axis in range(grid.dim):
        z = (grid.edges(axis)[None, :] - means[:, axis, None]) / stds[:, axis, None]
        per_axis = _interval_mass(z[:, :-1], z[:, 1:])
        masses = masses[..., None] * per_axis.reshape(
            (per_axis.shape[0],) + (1,) * axis + (per_axis.shape[1],)
        )
    return jnp.sum(masses, axis=0)


def discretize(
    grid: Grid, law: GaussianMixture | Normal, tolerance: float = 1e-6
) -> Float[Array, "..."]:
    """Exact cell masses of a Gaussian mixture or product normal law, normalised to one.

    Raises ``ValueError`` if the box holds less than ``1 − tolerance`` of the law's mass
    (saying how much is lost).
    """
    masses = _jit_cell_masses(grid, law)
    total = jnp.sum(masses)
    if not isinstance(total, Tracer) and float(total) < 1 - tolerance:
        raise ValueError(
            f"the domain {grid.describe()} holds only {float(total):.8g} of the "
            f"{type(law).__name__}'s mass: {1 - float(total):.3g} is lost (tolerance "
            f"{tolerance:g}); widen the domain"
        )
    return masses / total


_jit_cell_masses = eqx.filter_jit(cell_masses)


# ----------------------------------------------------------------------------- fluxes


def _wall_pad(face_values: Array, axis: int) -> Array:
    """Interior face values with a zero at both walls along ``axis``."""
    pad = [(0, 0)] * face_values.ndim
    pad[axis] = (1, 1)
    return jnp.pad(face_values, pad)


def transport_rate(
    grid: Grid, masses: Float[Array, "..."], velocities: Sequence[Array], scheme: AbstractScheme
) -> Float[Array, "..."]:
    """``dm/dt = −Σ_k (F_{k,i+½} − F_{k,i−½}) |face|`` with zero flux through the walls.

    ``velocities[k]`` is the ``k``-th velocity component at the faces normal to axis ``k``
    (shape ``grid.face_shape(k)``). Sums to zero to round-off: mass is conserved.
    """
    rho = masses / grid.volume
    rate = jnp.zeros_like(masses)
    for axis, a in enumerate(velocities):
        left, right = scheme.face_states(rho, axis)
        flux = jnp.maximum(a, 0) * left + jnp.minimum(a, 0) * right
        area = grid.volume / grid.spacing[axis]
        rate = rate - jnp.diff(_wall_pad(flux, axis), axis=axis) * area
    return rate


def outflow_rate(grid: Grid, velocities: Sequence[Array]) -> Float[Array, ""]:
    """``max_i Σ_k (a⁺ at the right face + a⁻ at the left face) / Δx_k``: ``dt`` times it is
    the Courant number."""
    total = jnp.zeros(grid.cells, dtype=grid.low.dtype)
    for axis, a in enumerate(velocities):
        padded = _wall_pad(a, axis)
        n = grid.cells[axis]
        out_right = jnp.maximum(jax.lax.slice_in_dim(padded, 1, n + 1, axis=axis), 0)
        out_left = jnp.maximum(-jax.lax.slice_in_dim(padded, 0, n, axis=axis), 0)
        total = total + (out_right + out_left) / grid.spacing[axis]
    return jnp.max(total)


# ----------------------------------------------------------------------------- the problem


class GridState(eqx.Module):
    """Cell masses of both players: generator (shape of its grid), critic (of its grid)."""

    generator: Float[Array, "..."]
    critic: Float[Array, "..."]


def _check_box(constraint: AbstractConstraint, grid: Grid) -> None:
    """HardClip: the critic grid is ``[−c, c]^q``; PenaltyClip: it strictly contains it."""
    c = getattr(constraint, "c", None)
    if c is None or isinstance(c, Tracer) or isinstance(grid.low, Tracer):
        return
    c, low, high = float(c), np.asarray(grid.low), np.asarray(grid.high)
    if isinstance(constraint, HardClip) and not (
        np.allclose(low, -c, rtol=0, atol=1e-12 * c)
        and np.allclose(high, c, rtol=0, atol=1e-12 * c)
    ):
        raise ValueError(
            f"with HardClip(c={c:g}) the critic grid must be the clip box [-c, c] on every axis "
            f"(its walls are the clipping walls), got {grid.describe()}"
        )
    if isinstance(constraint, PenaltyClip) and not (np.all(low < -c) and np.all(high > c)):
        raise ValueError(
            f"with PenaltyClip(c={c:g}) mass leaves [-c, c]: the critic grid must extend beyond "
            f"±c on every axis, got {grid.describe()}"
        )


class ContinuityProblem(eqx.Module):
    """The game's two continuity equations, each player on its own grid.

    The generator grid lives in the generator's parameter space ``R^p``; the critic grid in
    the constraint's coordinates ``u`` (``ω = constraint.observe(u)``; ``u = ω`` except for
    ``SmoothClip``). Velocities at the faces are :func:`generator_velocity` and
    :func:`critic_velocity` at the face points, the critic's passed through
    ``constraint.velocity`` (so ``PenaltyClip`` adds ``−β(ω − Π ω)``). ``scheme``: an
    :class:`~gandyn.AbstractScheme` (default :class:`~gandyn.Upwind`).
    """

    game: MeanFieldGame
    constraint: AbstractConstraint
    generator_grid: Grid
    critic_grid: Grid
    scheme: AbstractScheme

    def __init__(
        self,
        game: MeanFieldGame,
        constraint: AbstractConstraint | None,
        generator_grid: Grid,
        critic_grid: Grid,
        scheme: AbstractScheme | None = None,
    ):
        scheme = strategy("scheme", Upwind() if scheme is None else scheme, AbstractScheme)
        if scheme.stages not in (1, 2):
            raise ValueError(
                f"{type(scheme).__name__} has {scheme.stages} stages; the grid solver steps "
                "1 (forward Euler) or 2 (SSP Runge–Kutta 2)"
            )
        for name, grid, unit in (
            ("generator", generator_grid, game.generator),
            ("critic", critic_grid, game.critic),
        ):
            if grid.dim != unit.param_dim:
                raise ValueError(
                    f"the {name} grid is {grid.dim}-D but its unit has {unit.param_dim} "
                    "parameters; grids need one grid axis per parameter"
                )
        constraint = NoConstraint() if constraint is None else constraint
        _check_box(constraint, critic_grid)
        self.game, self.constraint, self.scheme = game, constraint, scheme
        self.generator_grid, self.critic_grid = generator_grid, critic_grid

    def measures(self, state: GridState) -> tuple[ParticleMeasure, ParticleMeasure]:
        """Generator and critic as weighted measures at the cell centres (critic observed)."""
        critic_centres = self.constraint.observe(self.critic_grid.centres())
        return (
            self.generator_grid.measure(state.generator),
            ParticleMeasure(critic_centres, state.critic.ravel()),
        )

    def face_velocities(self, state: GridState) -> tuple[list[Array], list[Array]]:
        """Normal velocity components at the interior faces, per player and axis."""
        gen, critic = self.measures(state)

        def split(grid: Grid, values: Array) -> list[Array]:
            sizes = np.cumsum([math.prod(grid.face_shape(k)) for k in range(grid.dim)])[:-1]
            parts = jnp.split(values, sizes)
            return [p[:, k].reshape(grid.face_shape(k)) for k, p in enumerate(parts)]

        gen_faces = jnp.concatenate([self.generator_grid.faces(k) for k in range(gen.dim)])
        critic_faces = jnp.concatenate([self.critic_grid.faces(k) for k in range(critic.dim)])
        v_gen = generator_velocity(self.game, gen, critic, points=gen_faces)
        v_critic = critic_velocity(
            self.game, gen, critic, points=self.constraint.observe(critic_faces)
        )
        v_critic = self.constraint.velocity(critic_faces, v_critic)
        return split(self.generator_grid, v_gen), split(self.critic_grid, v_critic)

    def rate(self, state: GridState) -> tuple[GridState, Float[Array, ""]]:
        """``d state/dt`` and the largest cell outflow rate (``dt`` × it = Courant number)."""
        v_gen, v_critic = self.face_velocities(state)
        d_gen = transport_rate(self.generator_grid, state.generator, v_gen, self.scheme)
        d_critic = transport_rate(self.critic_grid, state.critic, v_critic, self.scheme)
        outflow = jnp.maximum(
            outflow_rate(self.generator_grid, v_gen), outflow_rate(self.critic_grid, v_critic)
        )
        return GridState(d_gen, d_critic), outflow

    def initial_state(self, generator_law, critic_law, tolerance: float = 1e-6) -> GridState:
        """Cell masses of initial laws (Gaussian mixtures or normals; critic law in ``u``)."""
        return GridState(
            discretize(self.generator_grid, generator_law, tolerance),
            discretize(self.critic_grid, critic_law, tolerance),
        )


def grid_diagnostics(problem: ContinuityProblem, state: GridState) -> dict[str, Array]:
    """Mass, mean, sup of the density and mass in wall cells per player, and ``F(μ, ν)``."""
    out = {"value": problem.game.value(*problem.measures(state))}
    for name, grid, masses in (
        ("generator", problem.generator_grid, state.generator),
        ("critic", problem.critic_grid, state.critic),
    ):
        measure = grid.measure(masses)
        out[f"{name}_mass"] = jnp.sum(masses)
        out[f"{name}_mean"] = measure.mean()
        out[f"{name}_sup"] = jnp.max(masses) / grid.volume
        out[f"{name}_min"] = jnp.min(masses)
        out[f"{name}_wall_mass"] = jnp.sum(jnp.where(grid.wall_cells(), masses, 0.0))
    return out


def solve_continuity(
    problem: ContinuityProblem,
    state: GridState,
    *,
    t1: float,
    save_ts: Sequence[float] | np.ndarray | None = None,
    snapshot_ts: Sequence[float] | np.ndarray = (),
    dt: float | None = None,
    courant: float | None = None,
    max_steps: int = 1_000_000,
    checkpoint: CheckpointSpec | None = None,
    progress: bool = False,
    throw: bool = False,
) -> Trajectory:
    """Integrate both continuity equations from ``state`` at ``t = 0`` to ``t1``.

    ``dt=None`` (default) takes CFL steps: ``dt = courant / outflow rate`` at every step
    (``courant`` defaults to 0.9 × the scheme's limit, 1 for upwind, 1/2 for MUSCL), cut to
    land on the save times; for MUSCL the step is also cut (to ``courant`` / the second
    stage's rate, at least halving) until the second SSP-RK2 stage is within the limit. A
    fixed ``dt`` is checked against the same limit (both stages) at the start and at every
    step; a violation raises ``ValueError``. Diagnostics are recorded at
    ``save_ts`` (default 201 evenly spaced times), masses at ``snapshot_ts`` plus 0 and
    ``t1`` (these join the save times). Returns a :class:`~gandyn.solvers.Trajectory`
    (``entries = "cells"``): diagnostics :func:`grid_diagnostics` plus ``courant``, the
    largest Courant number used since the previous save time (the larger of the two
    stages' for MUSCL), ``steps``, the steps taken so far, and ``t``, the time reached;
    snapshots and ``final`` are :class:`GridState` masses. A non-finite state stops the
    stepping (``status == "nonfinite"``; ``final`` is that state, ``final_t`` and ``t``
    stay at the start of the failed step, the saves after it repeat it); the step budget
    running out before ``t1`` gives ``max_steps``; ``throw=True`` raises
    ``RuntimeError`` with the failure report for either.

    With a ``checkpoint`` (:class:`~gandyn.checkpoint.CheckpointSpec`; not under
    ``jit``/``vmap``) the save times are worked through in segments of about
    ``checkpoint.every`` (:func:`~gandyn.checkpoint.plan_segments`, the save times as its
    steps), each followed by a checkpoint of the state and the diagnostics so far;
    ``checkpoint.resume`` continues from the newest; Ctrl-C returns what was done with
    status ``interrupted``. Steps land on the save times anyway, so the result is the
    one-call result bit for bit. ``progress`` shows a bar over the segments.
    """
    limit = problem.scheme.cfl_limit
    t1 = float(t1)
    if not (math.isfinite(t1) and t1 > 0):
        raise ValueError(f"t1 must be finite and positive, got {t1}")
    courant = 0.9 * limit if courant is None else float(courant)
    if not 0 < courant <= limit:
        raise ValueError(
            f"courant must be in (0, {limit:g}] for {type(problem.scheme).__name__}, got {courant}"
        )
    if dt is not None and not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be finite and positive, got {dt}")
    if max_steps <= 0:
        raise ValueError(f"max_steps must be positive, got {max_steps}")
    save, snaps = run_times(0.0, t1, save_ts, snapshot_ts, np.linspace(0.0, t1, 201))
    ts = np.unique(np.concatenate([[0.0, t1], save, snaps]))
    snap_index = np.full(ts.shape, -1)
    snap_index[np.searchsorted(ts, snaps)] = np.arange(snaps.size)
    if dt is not None:
        outflow = _initial_outflow(problem, state)
        if not isinstance(outflow, Tracer) and dt * float(outflow) > limit:
            raise ValueError(_cfl_message(problem.scheme, dt, dt * float(outflow), 0.0, outflow))
    steps = (None if dt is None else jnp.asarray(dt), courant, max_steps)
    zeros = jax.tree_util.tree_map(lambda a: jnp.zeros((snaps.size, *a.shape), a.dtype), state)
    carry = (jnp.asarray(ts[0]), state, jnp.zeros((), jnp.int32), zeros)
    interrupted = False
    if checkpoint is None:
        carry, diag = _advance(problem, carry, jnp.asarray(ts), jnp.asarray(snap_index), *steps)
    else:
        # every save time is landed on: the save times are the steps of the segment policy
        windows = plan_segments(ts, ts, snaps, checkpoint.interval(t1, t1 / (ts.size - 1)))
        size = max(w.saves.size for w in windows)

        def segment(k: int, carry):
            index = windows[k].saves
            pad = size - index.size  # repeats of the segment's last time: no steps, dropped
            times = np.concatenate([ts[index], np.full(pad, ts[index[-1]])])
            slots = np.concatenate([snap_index[index], np.full(pad, -1)])
            carry, diag = _advance(problem, carry, jnp.asarray(times), jnp.asarray(slots), *steps)
            records = {name: v[: index.size] for name, v in diag.items()}
            return records, carry, True  # a failed state stands still: finish like one call

        run = run_segments(checkpoint, carry, len(windows), segment, progress=progress)
        carry, interrupted = run.carry, run.interrupted
        diag = {name: jnp.asarray(v) for name, v in run.records.items()}
    t, final, n, snapshots = carry
    result = RESULTS.interrupted if interrupted else outcome(final, t, ts[-1])
    done = jnp.asarray(ts[: diag["t"].shape[0]])  # all of them unless interrupted
    traj = Trajectory(done, diag, jnp.asarray(snaps), snapshots, final, t, result, n, "cells")
    used = traj.diagnostics["courant"]
    if dt is not None and not isinstance(used, Tracer) and bool(jnp.any(used > limit)):
        k = int(jnp.argmax(used > limit))
        raise ValueError(
            _cfl_message(problem.scheme, dt, float(used[k]), float(ts[max(k - 1, 0)]), None)
        )
    return checked(traj, throw)


@eqx.filter_jit
def _initial_outflow(problem: ContinuityProblem, state: GridState) -> Float[Array, ""]:
    return problem.rate(state)[1]


def _cfl_message(scheme: AbstractScheme, dt: float, number: float, t: float, outflow) -> str:
    limit = scheme.cfl_limit
    largest = f" (largest stable dt there: {limit / float(outflow):.4g})" if outflow else ""
    return (
        f"dt = {dt:g} violates the CFL limit of {type(scheme).__name__}: Courant number "
        f"{number:.4g} > {limit:g} after t = {t:.6g}{largest}; pass a smaller dt, or dt=None "
        "for CFL steps"
    )


MAX_SHRINKS = 40
"""Step reductions tried at most per MUSCL step before its second stage meets the limit."""


def _shrunk(problem, euler, y, dy, courant, step, y1, dy1, outflow1, k):
    """A MUSCL first stage whose step is cut to ``courant`` / (second stage's outflow rate),
    at least halved."""
    del y1, dy1
    step = jnp.minimum(0.5 * step, courant / outflow1)
    y1 = euler(y, dy, step)
    return (step, y1, *problem.rate(y1), k + 1)


@eqx.filter_jit
def _advance(problem, carry, ts, snap_index, dt, courant, max_steps: int):
    """From ``carry = (t, state, steps so far, snapshot buffers)`` through the save times
    ``ts`` (snapshot slot per save in ``snap_index``, −1 for none): the new carry and the
    diagnostics at each save."""
    two_stage = problem.scheme.stages == 2
    limit = problem.scheme.cfl_limit
    zero = jnp.zeros((), dtype=ts.dtype)

    def euler(y, dy, step):
        return jax.tree_util.tree_map(lambda a, b: a + step * b, y, dy)

    def body(carry):
        t, y, t_next, used, n = carry
        dy, outflow = problem.rate(y)
        if dt is None:
            step = jnp.where(outflow > 0, courant / jnp.where(outflow > 0, outflow, 1.0), jnp.inf)
        else:
            step = dt
        step = jnp.minimum(step, t_next - t)
        y1 = euler(y, dy, step)
        number = step * outflow
        if two_stage:
            dy1, outflow1 = problem.rate(y1)
            if dt is None:
                # SSP-RK2 keeps masses non-negative iff both Euler stages are within the
                # limit: shrink the step until the second stage's Courant number is too
                step, y1, dy1, outflow1, _ = jax.lax.while_loop(
                    lambda c: (c[0] * c[3] > limit) & (c[4] < MAX_SHRINKS),
                    lambda c: _shrunk(problem, euler, y, dy, courant, *c),
                    (step, y1, dy1, outflow1, 0),
                )
                number = step * outflow
            y1 = jax.tree_util.tree_map(lambda a, b, c: 0.5 * (a + b + step * c), y, y1, dy1)
            number = jnp.maximum(number, step * outflow1)
        t_new = jnp.where(step == t_next - t, t_next, t + step)
        t = jnp.where(finite(y1), t_new, t)  # a failed step does not advance
        return t, y1, t_next, jnp.maximum(used, number), n + 1

    def advance(carry, inputs):
        t, y, n, snaps = carry
        t_next, index = inputs
        t, y, _, used, n = while_finite(
            lambda c: (c[0] < c[2]) & (c[4] < max_steps),
            body,
            (t, y, t_next, zero, n),
            state=lambda c: c[1],
        )
        slot = jnp.maximum(index, 0)
        snaps = jax.tree_util.tree_map(
            lambda buf, a: buf.at[slot].set(jnp.where(index >= 0, a, buf[slot])), snaps, y
        )
        diag = grid_diagnostics(problem, y) | {"courant": used, "steps": n, "t": t}
        return (t, y, n, snaps), diag

    return jax.lax.scan(advance, carry, (ts, snap_index))
