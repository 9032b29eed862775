"""The nonlinear Fokker–Planck equation of study J on a grid, in 1-D and 2-D (DESIGN §2.2, §3).

    ∂_t ρ = κ ∇·( ρ_d ∇ log(1 + u) ),   u = ρ/ρ_d,

``κ = 1`` for the ``v`` normalisation (gradient flow of ``V = 2 JS − log 4``) and ``κ = ½`` for
``js`` (the gradient flow of JS itself). Finite volumes on cell masses: ``u_i = m_i / d_i``
with ``d_i`` the exact cell mass of the data law, and the conservative flux
``κ ρ_d(face) (log1p(u_j) − log1p(u_i)) / Δx`` through interior faces, zero through the walls.

Explicit Euler is stable under the diffusive limit
``dt ≤ 1 / max_i Σ_faces κ ρ_d(face) |face| / (d_i Δx)``: each step is then a convex
combination of the ``u_j`` whose weights, multiplied by ``d_i``, are symmetric, so the step
conserves mass, keeps ``min u ≤ u ≤ max u`` and lowers every convex functional of ``u``
(JS, χ²) — the discrete counterparts of the facts of §2.2. The implicit option is backward
Euler by Newton on the potential ``w = log1p(u)`` (a convex problem whose Jacobian is
symmetric positive definite, solved by conjugate gradients); the update is written in flux
form, so mass is conserved to round-off whatever the solver tolerance. Where ``ρ_d`` is
tiny, ``w`` is known only to round-off in absolute terms, so the min/max principle holds
there up to that absolute error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.sparse.linalg import cg
from jax.scipy.special import xlogy

from .._types import Array, Float, Int
from ..checkpoint import CheckpointSpec, plan_segments, run_segments
from ..distributions import GaussianMixture
from ..games.js import NORMALISATIONS
from .grid import Grid, discretize
from .outcome import RESULTS, AbstractTrajectory, checked, outcome, while_finite

METHODS = ("explicit", "implicit")


class FokkerPlanckOperator(eqx.Module):
    """The discrete operator ``m ↦ dm/dt`` on a grid for one data law.

    ``data_masses``: exact cell masses ``d_i`` of the data (normalised on the box);
    ``conductance[k]``: ``κ ρ_d(face) |face| / Δx_k`` at the interior faces normal to axis ``k``.
    """

    grid: Grid
    data_masses: Float[Array, "..."]
    conductance: list[Array]

    def __init__(self, grid: Grid, data: GaussianMixture, kappa: float, tolerance: float):
        self.grid = grid
        self.data_masses = discretize(grid, data, tolerance)
        self.conductance = _conductance(grid, data, kappa)

    def ratio(self, masses: Array) -> Array:
        """``u = ρ/ρ_d`` per cell."""
        return masses / self.data_masses

    def apply(self, potential: Array) -> Array:
        """``(A w)_i = Σ_faces conductance (w_j − w_i)``: symmetric, negative semi-definite."""
        out = jnp.zeros_like(potential)
        for axis, g in enumerate(self.conductance):
            flux = g * jnp.diff(potential, axis=axis)
            pad = [(0, 0)] * potential.ndim
            pad[axis] = (1, 1)
            out = out + jnp.diff(jnp.pad(flux, pad), axis=axis)
        return out

    def degree(self) -> Array:
        """``Σ_faces conductance`` per cell: minus the diagonal of ``A``."""
        out = jnp.zeros(self.grid.cells, dtype=self.data_masses.dtype)
        for axis, g in enumerate(self.conductance):
            pad = [(0, 0)] * g.ndim
            pad[axis] = (1, 1)
            padded = jnp.pad(g, pad)
            n = self.grid.cells[axis]
            out = out + jax.lax.slice_in_dim(padded, 0, n, axis=axis)
            out = out + jax.lax.slice_in_dim(padded, 1, n + 1, axis=axis)
        return out

    def __call__(self, masses: Array) -> Array:
        """``dm/dt = A log1p(u)``."""
        return self.apply(jnp.log1p(self.ratio(masses)))

    def explicit_limit(self) -> Float[Array, ""]:
        """Largest explicit Euler step keeping the min/max principle: ``min_i d_i / Σ g``."""
        return jnp.min(self.data_masses / self.degree())


@eqx.filter_jit
def _conductance(grid: Grid, data: GaussianMixture, kappa: float) -> list[Array]:
    log_density = jax.vmap(data.log_prob)
    return [
        kappa
        * jnp.exp(log_density(grid.faces(k))).reshape(grid.face_shape(k))
        * grid.volume
        / grid.spacing[k] ** 2
        for k in range(grid.dim)
    ]


def js_divergence(masses: Array, data_masses: Array) -> Float[Array, ""]:
    """Discrete ``JS(ρ, ρ_d) = Σ_i d_i j(u_i)``, ``j(u) = ½[u log(2u/(1+u)) + log(2/(1+u))]``
    (nats)."""
    u = masses / data_masses
    per_cell = 0.5 * (xlogy(u, 2 * u / (1 + u)) + jnp.log(2 / (1 + u)))
    return jnp.sum(data_masses * per_cell)


def chi_squared(masses: Array, data_masses: Array) -> Float[Array, ""]:
    """Discrete ``χ²(ρ, ρ_d) = Σ_i (m_i − d_i)² / d_i``."""
    return jnp.sum((masses - data_masses) ** 2 / data_masses)


def _diagnostics(op: FokkerPlanckOperator, masses: Array) -> dict[str, Array]:
    centres = op.grid.centres()
    flat = masses.ravel()
    mass = jnp.sum(flat)
    mean = flat @ centres / mass
    u = op.ratio(masses)
    return {
        "mass": mass,
        "mean": mean,
        "variance": flat @ (centres - mean[None, :]) ** 2 / mass,
        "mean_velocity": op(masses).ravel() @ centres / mass,
        "js": js_divergence(masses, op.data_masses),
        "chi2": chi_squared(masses, op.data_masses),
        "u_min": jnp.min(u),
        "u_max": jnp.max(u),
        "density_min": jnp.min(masses) / op.grid.volume,
    }


class FokkerPlanckTrajectory(AbstractTrajectory):
    """What :func:`solve_fokker_planck` returns: a trajectory (``entries = "cells"``) whose
    state is the cell masses ``(*cells)``, snapshotted at every save time, plus

    - ``grid``, ``data_density (*cells)`` (the data's cell averages ``ρ_d``) and the step
      ``dt``; ``densities (T, *cells)``: the snapshots as mass per volume;
    - ``diagnostics``: ``mass``, ``mean (T, d)``, ``variance (T, d)``, ``mean_velocity
      (T, d)`` (``d mean/dt``, exact for the grid system), ``js``, ``chi2``, ``u_min``,
      ``u_max``, ``density_min`` and, implicit only, ``newton_residual`` (largest over the
      steps since the previous save).

    Stepping stops at the first non-finite density (``status == "nonfinite"``, ``final_t``
    the end of that step): the saves before it keep their values, those after it (the
    last one included) hold that density.
    """

    grid: Grid
    data_density: Float[Array, "..."]
    dt: Float[Array, ""]

    @property
    def densities(self) -> Float[Array, "T ..."]:
        return self.snapshots / self.grid.volume


def _box(domain, dim: int) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(domain, dtype=float)
    if arr.shape == (2,):
        arr = np.broadcast_to(arr, (dim, 2))
    if arr.shape != (dim, 2):
        raise ValueError(
            f"domain must be (low, high) or one (low, high) per axis for a {dim}-D law, "
            f"got {domain!r}"
        )
    return arr[:, 0], arr[:, 1]


def solve_fokker_planck(
    data: GaussianMixture,
    initial: GaussianMixture,
    domain: Sequence[float] | Sequence[Sequence[float]],
    cells: int | Sequence[int],
    t1: float,
    *,
    normalisation: str = "v",
    method: str = "explicit",
    dt: float | None = None,
    n_saves: int = 101,
    newton_steps: int = 6,
    tolerance: float = 1e-6,
    checkpoint: CheckpointSpec | None = None,
    progress: bool = False,
    throw: bool = False,
) -> FokkerPlanckTrajectory:
    """Solve ``∂_t ρ = κ ∇·(ρ_d ∇ log(1 + ρ/ρ_d))`` on a box from ``ρ(0) = initial``.

    ``data`` and ``initial`` are Gaussian mixtures in R^1 or R^2; ``domain`` is
    ``(low, high)`` (every axis) or ``((low, high), …)`` per axis; ``cells`` per axis.
    ``normalisation``: ``"v"`` (``κ = 1``) or ``"js"`` (``κ = ½``). ``method``:
    ``"explicit"`` (default ``dt``: 0.9 × the diffusive limit) or ``"implicit"`` (backward
    Euler, default ``dt``: 10 × that limit). ``dt`` is shortened so that ``t1`` is a whole
    number of steps and of save intervals; an explicit ``dt`` above the limit raises
    ``ValueError``. Diagnostics and densities are saved at ``n_saves`` evenly spaced times.
    The box must hold all but ``tolerance`` of both laws' mass. A non-finite density stops
    the stepping (``status == "nonfinite"``; ``throw=True`` raises ``RuntimeError`` with
    the failure report). With a ``checkpoint`` (:class:`~gandyn.checkpoint.CheckpointSpec`)
    the save intervals are worked through in segments of about ``checkpoint.every``
    (:func:`~gandyn.checkpoint.plan_segments`, the save intervals as its steps), each
    followed by a checkpoint; ``checkpoint.resume`` continues from the newest; Ctrl-C
    returns what was done with status ``interrupted``; the result is the one-call result
    bit for bit. ``progress`` shows a bar over the segments.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(
            f"unknown normalisation {normalisation!r}; allowed: {', '.join(NORMALISATIONS)}"
        )
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")
    if data.dim != initial.dim:
        raise ValueError(f"data lives in R^{data.dim}, the initial law in R^{initial.dim}")
    t1 = float(t1)
    if not (math.isfinite(t1) and t1 > 0):
        raise ValueError(f"t1 must be finite and positive, got {t1}")
    if not isinstance(n_saves, int) or n_saves < 2:
        raise ValueError(f"n_saves must be an integer >= 2, got {n_saves!r}")
    low, high = _box(domain, data.dim)
    with jax.ensure_compile_time_eval():  # host-side set-up, also under eval_shape
        grid = Grid(low, high, cells)
        op = FokkerPlanckOperator(grid, data, NORMALISATIONS[normalisation], tolerance)
        masses = discretize(grid, initial, tolerance)
        limit = float(eqx.filter_jit(FokkerPlanckOperator.explicit_limit)(op))
    if dt is None:
        dt = 0.9 * limit if method == "explicit" else 10 * limit
    elif not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be finite and positive, got {dt}")
    elif method == "explicit" and dt > limit * (1 + 1e-12):
        raise ValueError(
            f"dt = {dt:g} exceeds the explicit diffusive limit {limit:.4g} on "
            f"{grid.describe()}; pass a smaller dt or method='implicit'"
        )
    intervals = n_saves - 1
    substeps = max(1, math.ceil(t1 / (intervals * dt) - 1e-9))
    step = t1 / (intervals * substeps)
    ts = np.linspace(0.0, step * intervals * substeps, intervals + 1)
    scheme = (step, method, newton_steps)
    first = _diagnostics(op, masses)
    if method == "implicit":
        first["newton_residual"] = jnp.zeros((), masses.dtype)
    start = (masses, jnp.zeros((), jnp.int32))
    interrupted = False
    if checkpoint is None:
        counts = jnp.full(intervals, substeps)
        (_, n), (history, diag) = _intervals(op, start, counts, *scheme)
    else:
        # the save intervals are the steps of the segment policy
        windows = plan_segments(ts, ts, ts, checkpoint.interval(t1, t1 / intervals))
        size = max(w.k_b - w.k_a for w in windows)

        def segment(k: int, carry):
            count = windows[k].k_b - windows[k].k_a  # padded with empty intervals, dropped
            counts = jnp.asarray(np.where(np.arange(size) < count, substeps, 0))
            carry, (history, diag) = _intervals(op, carry, counts, *scheme)
            records = {"history": history[:count]} | {
                f"diag_{n}": v[:count] for n, v in diag.items()
            }
            return records, carry, True  # a failed state stands still: finish like one call

        run = run_segments(checkpoint, start, len(windows), segment, progress=progress)
        (_, n), interrupted = run.carry, run.interrupted
        records = {name: jnp.asarray(v) for name, v in run.records.items()}
        history = records["history"]
        diag = {name[5:]: v for name, v in records.items() if name.startswith("diag_")}
    diag = {k: jnp.concatenate([first[k][None], v]) for k, v in diag.items()}
    snapshots = jnp.concatenate([masses[None], history])
    total = intervals * substeps
    result = RESULTS.interrupted if interrupted else outcome(snapshots[-1], n, total)
    ts = jnp.asarray(ts[: snapshots.shape[0]])  # all of them unless interrupted
    trajectory = FokkerPlanckTrajectory(
        ts=ts,
        diagnostics=diag,
        snapshot_ts=ts,
        snapshots=snapshots,
        final=snapshots[-1],
        final_t=jnp.where(n == total, ts[-1], step * n),
        result=result,
        num_steps=n,
        entries="cells",
        grid=grid,
        data_density=op.data_masses / grid.volume,
        dt=jnp.asarray(step),
    )
    return checked(trajectory, throw)


def _implicit_step(op: FokkerPlanckOperator, m_old: Array, dt, newton_steps: int):
    """Backward Euler ``m − dt A log1p(m/d) = m_old``; returns ``(m, relative residual)``.

    Newton on the potential ``w = log1p(u)``: ``G(w) = d (eʷ − 1) − m_old − dt A w`` is
    convex and its Jacobian ``diag(d eʷ) − dt A`` is symmetric positive definite (conjugate
    gradients, Jacobi preconditioner). The new masses are written in flux form,
    ``m = m_old + dt A w``, so they sum to the old ones to round-off.
    """
    degree = dt * op.degree()

    def newton(w, _):
        scale = op.data_masses * jnp.exp(w)
        residual = scale - op.data_masses - m_old - dt * op.apply(w)

        def matvec(x):
            return scale * x - dt * op.apply(x)

        delta, _ = cg(matvec, residual, tol=1e-13, maxiter=4000, M=lambda x: x / (scale + degree))
        return w - delta, None

    w, _ = jax.lax.scan(newton, jnp.log1p(op.ratio(m_old)), None, length=newton_steps)
    m = m_old + dt * op.apply(w)
    mismatch = op.data_masses * jnp.expm1(w) - m
    # far in the tails w ≈ 0 is known to round-off only: clip the ≈ 1e-17 d_i undershoots
    return jnp.maximum(m, 0.0), jnp.max(jnp.abs(mismatch)) / jnp.max(m_old)


@eqx.filter_jit
def _intervals(op, carry, substeps: Int[Array, " k"], dt, method: str, newton_steps: int):
    """Save intervals of ``substeps[i]`` steps from ``carry = (masses, steps so far)``, each
    stopping at the first non-finite state. Returns the carry and, per interval, the masses
    and the diagnostics at its end."""

    def step(carry):
        m, worst, k, count = carry
        if method == "explicit":
            return m + dt * op(m), worst, k + 1, count
        m, res = _implicit_step(op, m, dt, newton_steps)
        return m, jnp.maximum(worst, res), k + 1, count

    def interval(carry, count):
        m, n = carry
        zero = jnp.zeros((), jnp.int32)
        m, worst, k, _ = while_finite(
            lambda c: c[2] < c[3], step, (m, jnp.zeros((), m.dtype), zero, count), lambda c: c[0]
        )
        diag = _diagnostics(op, m)
        if method == "implicit":
            diag["newton_residual"] = worst
        return (m, n + k), (m, diag)

    return jax.lax.scan(interval, carry, substeps)
