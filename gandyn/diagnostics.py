"""Pure diagnostics.

State diagnostics are functions ``(problem, state) -> array`` recorded on the fly by
``simulate`` (``SaveAt(fn=…)``); time-series functions post-process recorded series. All
are jnp-only, so they work under ``jit``, ``vmap`` and ``grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._types import Array, Float, Scalar
from .games import MeanFieldProblem, MeanFieldState

# ----------------------------------------------------------------------------- distances


def wasserstein1_1d(
    x: Float[Array, " a"], wx: Float[Array, " a"], y: Float[Array, " b"], wy: Float[Array, " b"]
) -> Scalar:
    """Exact W1 between two weighted point sets on the line: ``∫ |F_x − F_y| dt``."""
    points = jnp.concatenate([x, y])
    signed = jnp.concatenate([wx / jnp.sum(wx), -wy / jnp.sum(wy)])
    order = jnp.argsort(points)
    points, signed = points[order], signed[order]
    return jnp.sum(jnp.abs(jnp.cumsum(signed)[:-1]) * jnp.diff(points))


def sliced_wasserstein1(
    x: Float[Array, "a d"],
    wx: Float[Array, " a"],
    y: Float[Array, "b d"],
    wy: Float[Array, " b"],
    n_directions: int = 64,
) -> Scalar:
    """Sliced W1: the mean of exact 1-D W1 over ``n_directions`` fixed directions.

    Directions are evenly spaced angles in 2-D and fixed pseudo-random unit vectors above,
    so the value is deterministic. In 1-D it is the exact W1.
    """
    dim = x.shape[1]
    if dim == 1:
        return wasserstein1_1d(x[:, 0], wx, y[:, 0], wy)
    if dim == 2:
        angles = jnp.pi * jnp.arange(n_directions) / n_directions
        directions = jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)
    else:
        raw = jax.random.normal(jax.random.key(0), (n_directions, dim), x.dtype)
        directions = raw / jnp.linalg.norm(raw, axis=1, keepdims=True)
    per_direction = jax.vmap(lambda u: wasserstein1_1d(x @ u, wx, y @ u, wy))(directions)
    return jnp.mean(per_direction)


# ----------------------------------------------------------------------------- state diagnostics


def _generated(problem: MeanFieldProblem, state: MeanFieldState):
    gen, _ = problem.measures(state)
    latent = problem.game.latent
    return problem.game.generate(gen, latent.nodes), latent.weights


def game_value(problem: MeanFieldProblem, state: MeanFieldState) -> Scalar:
    """``F(μ, ν)``."""
    return problem.game.value(*problem.measures(state))


def generated_mean(problem: MeanFieldProblem, state: MeanFieldState) -> Float[Array, " K"]:
    """Mean of the generated law ``G[μ]#γ``."""
    samples, weights = _generated(problem, state)
    return weights @ samples


def generated_variance(problem: MeanFieldProblem, state: MeanFieldState) -> Float[Array, " K"]:
    """Per-coordinate variance of the generated law."""
    samples, weights = _generated(problem, state)
    mean = weights @ samples
    return weights @ (samples - mean[None, :]) ** 2


def data_distance(problem: MeanFieldProblem, state: MeanFieldState) -> Scalar:
    """W1 (exact in 1-D, sliced above) between the generated law and the data, both as
    their quadrature rules."""
    samples, weights = _generated(problem, state)
    data = problem.game.data
    return sliced_wasserstein1(samples, weights, data.nodes, data.weights)


def critic_mean(problem: MeanFieldProblem, state: MeanFieldState) -> Float[Array, " q"]:
    """Mean ``ω̄`` of the critic parameters."""
    return problem.measures(state)[1].mean()


def critic_max_abs(problem: MeanFieldProblem, state: MeanFieldState) -> Scalar:
    """Largest ``|ω_k|`` over critic particles and coordinates."""
    return jnp.max(jnp.abs(problem.measures(state)[1].positions))


def critic_support_width(problem: MeanFieldProblem, state: MeanFieldState) -> Scalar:
    """Largest per-coordinate spread ``max ω_k − min ω_k`` of the critic particles."""
    omega = problem.measures(state)[1].positions
    return jnp.max(jnp.max(omega, axis=0) - jnp.min(omega, axis=0))


def critic_state_max_abs(problem: MeanFieldProblem, state: MeanFieldState) -> Scalar:
    """Largest ``|u_k|`` of the critic's *state* (for ``SmoothClip`` the reparametrised
    variable, which passes the wall while ``ω`` cannot)."""
    return jnp.max(jnp.abs(state.critic))


def wall_fraction(problem: MeanFieldProblem, state: MeanFieldState) -> Scalar:
    """Critic mass with at least one coordinate on (or past) a wall of the box."""
    touching = jnp.any(problem.constraint.on_wall(state.critic), axis=1)
    weights = problem.critic_weights
    return weights @ touching.astype(weights.dtype) / jnp.sum(weights)


def toy_invariant(problem: MeanFieldProblem, state: MeanFieldState) -> Scalar:
    """``H = λ |y|² + |ω̄|²`` with ``y = E G − E x``: conserved by toy T1 off the walls."""
    y = generated_mean(problem, state) - problem.game.data.mean()
    return problem.game.lam * jnp.sum(y**2) + jnp.sum(critic_mean(problem, state) ** 2)


def default_diagnostics() -> dict:
    """The diagnostics ``simulate`` records unless told otherwise."""
    return {
        "value": game_value,
        "generated_mean": generated_mean,
        "generated_variance": generated_variance,
        "data_distance": data_distance,
        "critic_mean": critic_mean,
        "critic_max_abs": critic_max_abs,
        "critic_support_width": critic_support_width,
        "wall_fraction": wall_fraction,
        "critic_state_max_abs": critic_state_max_abs,
    }


# ----------------------------------------------------------------------------- time series


def first_time(ts: Float[Array, " T"], event: Array) -> Scalar:
    """First ``t`` where ``event`` (boolean ``(T,)``) holds; NaN if it never does. Only
    as fine as the series' times: ``simulate`` tracks events at every step instead
    (``Trajectory.final.first_times``)."""
    return jnp.where(jnp.any(event), ts[jnp.argmax(event)], jnp.nan)


def upward_crossings(ts: Float[Array, " T"], signal: Float[Array, " T"], level) -> Array:
    """Linearly interpolated times where ``signal`` crosses ``level`` upward; NaN elsewhere.

    Shape ``(T − 1,)``: entry ``k`` is the crossing inside ``[t_k, t_{k+1})`` if any.
    """
    a, b = signal[:-1] - level, signal[1:] - level
    crossing = (a < 0) & (b >= 0)
    frac = a / jnp.where(crossing, a - b, 1.0)
    return jnp.where(crossing, ts[:-1] + frac * jnp.diff(ts), jnp.nan)


def first_crossing(ts: Float[Array, " T"], signal: Float[Array, " T"], level) -> Scalar:
    """First upward crossing time of ``level``, linearly interpolated between saves; NaN if
    none. Unlike :func:`first_time` it moves continuously with the signal, so it has a
    useful derivative wherever the crossing is transversal."""
    crossings = upward_crossings(ts, signal, level)
    found = jnp.isfinite(crossings)
    return jnp.where(jnp.any(found), crossings[jnp.argmax(found)], jnp.nan)


def period(ts: Float[Array, " T"], signal: Float[Array, " T"], start: Scalar | float) -> Scalar:
    """Period of ``signal`` over ``t ≥ start``: mean spacing of its upward crossings of its
    mid-range level. NaN with fewer than two crossings."""
    late = ts >= start
    high = jnp.max(jnp.where(late, signal, -jnp.inf))
    low = jnp.min(jnp.where(late, signal, jnp.inf))
    crossings = upward_crossings(ts, signal, 0.5 * (high + low))
    crossings = jnp.where(late[:-1], crossings, jnp.nan)
    count = jnp.sum(jnp.isfinite(crossings))
    span = jnp.nanmax(crossings) - jnp.nanmin(crossings)
    return jnp.where(count >= 2, span / jnp.maximum(count - 1, 1), jnp.nan)


def orbit_closure_error(
    ts: Float[Array, " T"], signals: Float[Array, "T d"], period_: Scalar
) -> Scalar:
    """``|x(t_end) − x(t_end − period)|`` for the curve ``signals``: 0 on a periodic orbit."""
    t_back = ts[-1] - period_
    past = jax.vmap(lambda s: jnp.interp(t_back, ts, s), in_axes=1)(signals)
    return jnp.linalg.norm(signals[-1] - past)
