"""diffrax solver wrappers: projection of the state after every step (DESIGN §1.3), and
first times of events tracked at every step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree


class ProjectedInterpolation(diffrax.LocalLinearInterpolation):
    """Linear interpolation that returns the step's end points exactly (so a state
    projected onto a wall reads as on the wall at a save time equal to a step time)."""

    def evaluate(self, t0, t1=None, left: bool = True):
        value = super().evaluate(t0, t1, left)
        if t1 is not None:
            return value
        return jax.tree_util.tree_map(
            lambda a, b, v: jnp.where(t0 >= self.t1, b, jnp.where(t0 <= self.t0, a, v)),
            self.y0,
            self.y1,
            value,
        )


class _WrappedSolver(diffrax.AbstractWrappedSolver):
    """What a wrapper forwards to its inner ``solver`` unchanged: term structure,
    orders, the vector field."""

    solver: eqx.AbstractVar[diffrax.AbstractSolver]

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


class ProjectedSolver(_WrappedSolver):
    """Wraps ``solver`` and applies ``projection`` to ``y1`` after each of its steps.

    With :class:`diffrax.Euler` and a box projection this is exactly the clipped explicit
    Euler step. Use it with :class:`diffrax.ConstantStepSize` only (a projected step has no
    error estimate). Dense output is the linear interpolation between projected states,
    which stays in any convex set the projection maps into. First-same-as-last caches of
    the inner solver are discarded after each step (the cached value was at the
    unprojected state), so e.g. ``Tsit5`` keeps its order at one extra evaluation a step.

    **Arguments:**

    - ``solver``: the inner solver.
    - ``projection``: ``y ↦ Π(y)``, a PyTree-callable (an equinox Module or a
      ``jax.tree_util.Partial``) so its parameters can be traced.
    """

    solver: diffrax.AbstractSolver
    projection: Callable[[PyTree], PyTree]

    @property
    def interpolation_cls(self):  # pyright: ignore
        return ProjectedInterpolation

    def error_order(self, terms):
        return None

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state: Any, made_jump):
        del made_jump
        y1, _, _, solver_state, result = self.solver.step(
            terms, t0, t1, y0, args, solver_state, made_jump=True
        )
        y1 = self.projection(y1)
        return y1, None, dict(y0=y0, y1=y1), solver_state, result


def crossing_time(t0, t1, g0, g1) -> Float[Array, ""]:
    """First ``t`` in ``[t0, t1]`` where the linear interpolant of a signal (``g0`` at
    ``t0``, ``g1`` at ``t1``) is ``≥ 0``: ``t0`` if ``g0 ≥ 0``, the interpolated zero if
    only ``g1 ≥ 0``, ``inf`` if neither (NaN counts as neither). Safe under ``grad``."""
    rising = (g0 < 0) & (g1 >= 0)
    frac = jnp.where(rising, -g0, 0.0) / jnp.where(rising, g1 - g0, 1.0)
    return jnp.where(g0 >= 0, t0, jnp.where(rising, t0 + frac * (t1 - t0), jnp.inf))


class FirstTimesSolver(_WrappedSolver):
    """Wraps ``solver`` and tracks, in its solver state, the first time each signal
    ``g(y)`` is ``≥ 0``: after every step from ``y0`` to ``y1`` it takes
    :func:`crossing_time` of ``g(y0)`` and ``g(y1)`` (steps rejected by an adaptive
    controller are discarded with their solver state). Inside a :class:`ProjectedSolver`
    it sees the unprojected ``y1``, so a crossing the projection stops on the boundary is
    still interpolated inside the step. Steps, errors and dense output are the inner
    solver's.

    **Arguments:**

    - ``solver``: the inner solver.
    - ``signals``: name → ``y ↦ g(y)`` (scalar), PyTree-callables (e.g.
      ``jax.tree_util.Partial``) so their parameters can be traced.
    - ``start``: name → first time so far (``inf``: not yet), continued from an earlier
      solve.

    The solver state is ``(inner state, {name: first time})``.
    """

    solver: diffrax.AbstractSolver
    signals: dict[str, Callable[[PyTree], Array]]
    start: dict[str, Float[ArrayLike, ""]]

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args), self.start

    def step(self, terms, t0, t1, y0, args, solver_state: Any, made_jump):
        inner, times = solver_state
        y1, y_error, dense_info, inner, result = self.solver.step(
            terms, t0, t1, y0, args, inner, made_jump
        )
        for name, signal in self.signals.items():
            found = crossing_time(t0, t1, signal(y0), signal(y1))
            earlier = jnp.where(found < times[name], found, times[name])
            times = times | {name: earlier.astype(times[name].dtype)}
        return y1, y_error, dense_info, (inner, times), result
