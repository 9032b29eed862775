"""Particle ODE of the Jensen–Shannon flow on diffrax (DESIGN §2.1).

``dY_i/dt = c v̂_t(Y_i)``, the velocity of any drift estimator
(:meth:`~gandyn.AbstractDriftEstimator.velocity`). The estimator's ``parameters`` (a
:class:`~gandyn.NeuralDrift`'s ``φ``) are part of the state and move at ``rate`` times
their :meth:`~gandyn.AbstractDriftEstimator.parameter_velocity`.
"""

from __future__ import annotations

from collections.abc import Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._types import Array, Float, Int, PyTree, Scalar, ScalarLike
from ..diagnostics import sliced_wasserstein1
from ..games.js import AbstractDriftEstimator, js_estimate, normalisation_factor
from ..measure import ParticleMeasure
from .particles import nonfinite_state, save_grid, solver_by_name


class JSFlowState(eqx.Module):
    """Particle positions ``(n, d)`` and the estimator's ``parameters`` (a neural drift's
    ``φ``; ``None`` for an estimator without any)."""

    particles: Float[Array, "n d"]
    parameters: PyTree


class JSFlowProblem(eqx.Module):
    """The particle ODE: estimator, data points (for the discriminator and diagnostics),
    particle weights, normalisation and the discriminator's rate."""

    estimator: AbstractDriftEstimator
    data: ParticleMeasure
    weights: Float[Array, " n"]
    rate: Scalar
    normalisation: str = eqx.field(static=True)

    def __init__(
        self,
        estimator: AbstractDriftEstimator,
        data: ParticleMeasure,
        weights: Float[Array, " n"],
        normalisation: str = "v",
        rate: ScalarLike = 1.0,
    ):
        normalisation_factor(normalisation)
        self.estimator, self.data, self.normalisation = estimator, data, normalisation
        self.weights = jnp.asarray(weights)
        self.rate = jnp.asarray(rate, dtype=data.positions.dtype)

    def measure(self, state: JSFlowState) -> ParticleMeasure:
        return ParticleMeasure(state.particles, self.weights)

    def current_estimator(self, state: JSFlowState) -> AbstractDriftEstimator:
        """The estimator with the parameters read from the state."""
        return self.estimator.with_parameters(state.parameters)

    def velocity(self, t, state: JSFlowState) -> Float[Array, "n d"]:
        """``c v̂`` at the particles."""
        estimator = self.current_estimator(state)
        return estimator.velocity(state.particles, self.measure(state), t, self.normalisation)

    def vector_field(self, t, state: JSFlowState, args=None) -> JSFlowState:
        del args
        ascent = self.current_estimator(state).parameter_velocity(self.data, self.measure(state))
        d_params = jax.tree_util.tree_map(lambda g: self.rate * g, ascent)
        return JSFlowState(self.velocity(t, state), d_params)

    def initial_state(self, particles: Float[Array, "n d"]) -> JSFlowState:
        """The state at ``t = 0``: ``particles`` and the estimator's ``parameters``."""
        particles = jnp.asarray(particles)
        if particles.ndim != 2 or particles.shape != (self.weights.shape[0], self.data.dim):
            raise ValueError(
                f"particles must have shape ({self.weights.shape[0]}, {self.data.dim}) to match "
                f"the weights and the data, got {particles.shape}"
            )
        return JSFlowState(particles, self.estimator.parameters())


def flow_diagnostics(problem: JSFlowProblem, t, state: JSFlowState) -> dict[str, Array]:
    """Mean ``(d,)``, per-coordinate variance ``(d,)``, the estimator's JS, the
    dissipation ``(c/2) E|v̂|²`` (``= −dJS/dt`` for the exact drift) and the sliced W1 to the
    data points."""
    measure = problem.measure(state)
    x, w = measure.positions, problem.weights / jnp.sum(problem.weights)
    mean = w @ x
    estimator = problem.current_estimator(state)
    velocity = problem.velocity(t, state)
    c = normalisation_factor(problem.normalisation)
    data = problem.data
    return {
        "mean": mean,
        "variance": w @ (x - mean) ** 2,
        "js": js_estimate(estimator, measure, data, t),
        "dissipation": w @ jnp.sum(velocity**2, axis=1) / (2 * c),
        "data_distance": sliced_wasserstein1(x, w, data.positions, data.weights),
    }


class JSFlowTrajectory(eqx.Module):
    """``ts (T,)`` with ``diagnostics`` name → ``(T, ...)``; particle ``snapshots (S, n, d)``
    at ``snapshot_ts (S,)``; the ``final`` state at ``final_t``; diffrax ``result`` and
    ``num_steps``. A run stopped by a non-finite state keeps the saves before it (later
    ones are ``inf``)."""

    ts: Float[Array, " T"]
    diagnostics: dict[str, Array]
    snapshot_ts: Float[Array, " S"]
    snapshots: Float[Array, "S n d"]
    final: JSFlowState
    final_t: Float[Array, ""]
    result: diffrax.RESULTS
    num_steps: Int[Array, ""]

    @property
    def status(self) -> str:
        """``ok``, ``nonfinite`` (stopped on a non-finite state) or the diffrax result."""
        if self.result == diffrax.RESULTS.successful:
            return "ok"
        return "nonfinite" if self.result == diffrax.RESULTS.event_occurred else str(self.result)

    def failure_report(self) -> str | None:
        """When the flow stopped and which particles went non-finite (``None`` if ok)."""
        if self.status == "ok":
            return None
        bad = ~np.all(np.isfinite(np.asarray(self.final.particles)), axis=1)
        where = f"; non-finite particles {np.flatnonzero(bad)[:8].tolist()}" if bad.any() else ""
        return f"particle flow stopped ({self.status}) at t = {float(self.final_t):.6g}{where}"


def simulate_js_flow(
    problem: JSFlowProblem,
    particles: Float[Array, "n d"],
    *,
    t1: float,
    dt: float,
    solver: diffrax.AbstractSolver | str = "heun",
    save_ts: Sequence[float] | np.ndarray | None = None,
    snapshot_ts: Sequence[float] = (),
    progress_meter: diffrax.AbstractProgressMeter | None = None,
) -> JSFlowTrajectory:
    """Integrate the particle ODE of ``problem`` from ``particles`` over ``[0, t1]`` with
    fixed steps ``dt``; :func:`flow_diagnostics` at ``save_ts`` (default every step, at
    most 4001 times), particles at ``snapshot_ts`` plus 0 and ``t1``."""
    t1, dt = float(t1), float(dt)
    if not (np.isfinite([t1, dt]).all() and t1 > 0 and dt > 0):
        raise ValueError(f"need finite t1 > 0 and dt > 0, got t1={t1}, dt={dt}")
    n_steps = t1 / dt
    if abs(n_steps - round(n_steps)) > 1e-6 * max(1.0, n_steps):
        raise ValueError(f"t1 = {t1} is not a multiple of dt = {dt}")
    if isinstance(solver, str):
        solver = solver_by_name(solver)
    save = save_grid(0.0, t1, dt) if save_ts is None else np.asarray(save_ts, dtype=float)
    snaps = np.unique(np.concatenate([[0.0, t1], np.asarray(snapshot_ts, dtype=float)]))
    for name, times in (("save_ts", save), ("snapshot_ts", snaps)):
        if times.ndim != 1 or times.size == 0 or times.min() < 0 or times.max() > t1:
            raise ValueError(f"{name} must be a non-empty list of times in [0, {t1}]")
    return _solve(
        problem,
        problem.initial_state(particles),
        solver,
        jnp.asarray(save),
        jnp.asarray(snaps),
        t1,
        dt,
        round(n_steps) + 1,
        diffrax.NoProgressMeter() if progress_meter is None else progress_meter,
    )


@eqx.filter_jit
def _solve(problem, state, solver, save_ts, snapshot_ts, t1, dt, max_steps, meter):
    saveat = diffrax.SaveAt(
        subs=[
            diffrax.SubSaveAt(ts=save_ts, fn=lambda t, y, args: flow_diagnostics(problem, t, y)),
            diffrax.SubSaveAt(ts=snapshot_ts, fn=lambda t, y, args: y.particles),
            diffrax.SubSaveAt(t1=True),
        ]
    )
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(problem.vector_field),
        solver,
        0.0,
        t1,
        dt,
        state,
        saveat=saveat,
        stepsize_controller=diffrax.ConstantStepSize(),
        max_steps=max_steps,
        progress_meter=meter,
        event=diffrax.Event(nonfinite_state),
        throw=False,
    )
    assert sol.ys is not None and sol.ts is not None
    diag, snaps, final = sol.ys
    return JSFlowTrajectory(
        ts=save_ts,
        diagnostics=diag,
        snapshot_ts=snapshot_ts,
        snapshots=snaps,
        final=jax.tree_util.tree_map(lambda x: x[-1], final),
        final_t=sol.ts[2][-1],
        result=sol.result,
        num_steps=sol.stats["num_accepted_steps"],
    )
