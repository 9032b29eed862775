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

from .._types import Array, Float, PyTree, Scalar, ScalarLike
from ..diagnostics import sliced_wasserstein1
from ..games.js import AbstractDriftEstimator, js_estimate, normalisation_factor
from ..measure import ParticleMeasure
from .outcome import Trajectory, checked, nonfinite_event, outcome, run_times, save_grid, step_count
from .particles import solver_by_name


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
        "variance": w @ (x - mean[None, :]) ** 2,
        "js": js_estimate(estimator, measure, data, t),
        "dissipation": w @ jnp.sum(velocity**2, axis=1) / (2 * c),
        "data_distance": sliced_wasserstein1(x, w, data.positions, data.weights),
    }


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
    throw: bool = False,
) -> Trajectory:
    """Integrate the particle ODE of ``problem`` from ``particles`` over ``[0, t1]`` with
    fixed steps ``dt`` (``t1`` a whole number of them); :func:`flow_diagnostics` at
    ``save_ts`` (default every step, at most 4001 times), particles at ``snapshot_ts`` plus
    0 and ``t1``. A non-finite state stops the flow; ``throw=True`` then raises
    ``RuntimeError`` with the failure report."""
    t1, dt = float(t1), float(dt)
    n_steps = step_count(0.0, t1, dt)
    if isinstance(solver, str):
        solver = solver_by_name(solver)
    save, snaps = run_times(0.0, t1, save_ts, snapshot_ts, save_grid(0.0, t1, dt))
    trajectory = _solve(
        problem,
        problem.initial_state(particles),
        solver,
        jnp.asarray(save),
        jnp.asarray(snaps),
        t1,
        dt,
        n_steps + 1,
        diffrax.NoProgressMeter() if progress_meter is None else progress_meter,
    )
    return checked(trajectory, throw)


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
        event=diffrax.Event(nonfinite_event),
        throw=False,
    )
    assert sol.ys is not None and sol.ts is not None
    diag, snaps, final = sol.ys
    final = jax.tree_util.tree_map(lambda x: x[-1], final)
    return Trajectory(
        ts=save_ts,
        diagnostics=diag,
        snapshot_ts=snapshot_ts,
        snapshots=snaps,
        final=final,
        final_t=sol.ts[2][-1],
        result=outcome(final, sol.ts[2][-1], t1),
        num_steps=sol.stats["num_accepted_steps"],
        entries="particles",
    )
