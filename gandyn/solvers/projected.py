"""A diffrax solver wrapper that projects the state after every step (DESIGN §1.3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import PyTree


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


class ProjectedSolver(diffrax.AbstractWrappedSolver):
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
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return ProjectedInterpolation

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def strong_order(self, terms):
        return self.solver.strong_order(terms)

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

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)
