"""How the critic's parameters are kept in the box ``Ω = [−c, c]^q`` (DESIGN §1.3).

A constraint acts on the critic's *state* ``u`` (the variable the solver integrates) and
says how it is read as parameters ``ω = observe(u)``, how the unconstrained ω-velocity
``v`` becomes ``du/dt`` and, for exact clipping, how a step is projected. ``c`` and
``beta`` are array fields: they can be swept with ``vmap`` and differentiated.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ._checks import positive
from ._types import Array, Bool, Float, Scalar, ScalarLike

Params = Float[Array, "m q"]


class AbstractConstraint(eqx.Module):
    """Base class. Subclasses override what differs from the unconstrained identity maps."""

    projects: ClassVar[bool] = False
    """True if the solver must project every step (only fixed step sizes then)."""

    def to_state(self, omega: Params) -> Params:
        """Initial state ``u`` for parameters ``ω``."""
        return omega

    def observe(self, u: Params) -> Params:
        """Parameters ``ω`` the critic uses in state ``u``."""
        return u

    @abc.abstractmethod
    def velocity(self, u: Params, v: Params) -> Params:
        """``du/dt`` given the unconstrained ω-velocity ``v`` at ``ω = observe(u)``."""

    def project(self, u: Params) -> Params:
        """Projection applied after every solver step."""
        return u

    def on_wall(self, u: Params) -> Bool[Array, "m q"]:
        """Which coordinates are on (or past) a wall; none without a box."""
        return jnp.zeros(u.shape, dtype=bool)

    def decay_rate(self) -> Scalar | None:
        """Rate (1/time) of the linear decay the field imposes past a wall, the stiffness an
        explicit solver must resolve (``β dt`` within its stability interval); None if the
        field has no such term."""
        return None


class NoConstraint(AbstractConstraint):
    """No clipping: ``du/dt = v``."""

    def velocity(self, u: Params, v: Params) -> Params:
        return v


class _Box(AbstractConstraint):
    c: eqx.AbstractVar[Scalar]

    def on_wall(self, u: Params) -> Bool[Array, "m q"]:
        return jnp.abs(u) >= self.c

    def clip(self, u: Params) -> Params:
        """Euclidean projection onto ``[−c, c]^q`` (``optax.projections.projection_box``)."""
        return optax.projections.projection_box(u, -self.c, self.c)


class HardClip(_Box):
    """Exact clipping: the projected ODE ``ω̇ = Π_{T_Ω(ω)} v``, realised by projecting
    every solver step onto the box (the field itself is left free: zeroing it at
    out-of-box stages of a multi-stage solver would slow particles on their way to the
    wall). Every coordinate is in ``[−c, c]`` exactly after every step; with Euler this
    is the clipped simultaneous gradient step ``ω ← clip(ω + dt v)``.
    """

    c: Scalar
    projects: ClassVar[bool] = True

    def __init__(self, c: ScalarLike):
        self.c = positive("c", c)

    def velocity(self, u: Params, v: Params) -> Params:
        return v

    def project(self, u: Params) -> Params:
        return self.clip(u)


class PenaltyClip(_Box):
    """Moreau–Yosida smoothing ``ω̇ = v − β (ω − Π_Ω ω)``.

    Lipschitz for finite ``beta`` (adaptive solvers work); tends to the projected flow as
    ``beta → ∞``. Near a wall where ``v`` keeps pointing out, a particle settles at
    ``c + v/β``: densities grow like ``e^{βt}`` but stay finite.
    """

    c: Scalar
    beta: Scalar

    def __init__(self, c: ScalarLike, beta: ScalarLike):
        self.c = positive("c", c)
        self.beta = positive("beta", beta)

    def velocity(self, u: Params, v: Params) -> Params:
        return v - self.beta * (u - self.clip(u))

    def decay_rate(self) -> Scalar:
        """``β``: past a wall the field is ``v − β (u ∓ c)``."""
        return self.beta


class SplitPenaltyClip(_Box):
    """``PenaltyClip``'s flow ``ω̇ = v − β (ω − Π_Ω ω)`` integrated by splitting, stable for
    every ``β``: the solver steps the free field ``v`` and after every step of length ``dt``
    the penalty's decay is applied exactly, ``ω ← Π_Ω ω + e^{−β dt} (ω − Π_Ω ω)`` (the flow of
    ``ω̇ = −β (ω − Π_Ω ω)``: coordinatewise, the distance past a wall shrinks by ``e^{−β dt}``
    and ``Π_Ω ω`` does not move). Exact inside the box (so up to first contact it is the
    unconstrained solver's path); past a wall first order in ``dt`` (Lie splitting): where
    ``v`` keeps pointing out, a particle settles at ``c + v dt / (e^{β dt} − 1)`` instead of
    ``c + v/β``, within ``|v| dt / 2`` however large ``β dt`` is; at ``β = ∞`` it is
    ``HardClip``. Needs fixed steps of exactly ``dt`` (``simulate`` checks); the stepped field
    has no ``β`` in it, so no stiffness bound applies.
    """

    c: Scalar
    beta: Scalar
    dt: Scalar
    projects: ClassVar[bool] = True

    def __init__(self, c: ScalarLike, beta: ScalarLike, dt: ScalarLike):
        self.c = positive("c", c)
        self.beta = positive("beta", beta)
        self.dt = positive("dt", dt)

    def velocity(self, u: Params, v: Params) -> Params:
        return v

    def project(self, u: Params) -> Params:
        inside = self.clip(u)
        return inside + jnp.exp(-self.beta * self.dt) * (u - inside)


class SmoothClip(_Box):
    """Reparametrisation ``ω = s_β(u)`` by a smooth clip function, ``u̇ = s_β'(u) ⊙ v``.

    ``s_β(u) = c + [softplus(−β(u + c)) − softplus(β(c − u))]/β`` is increasing, maps R
    onto ``(−c, c)`` and tends to ``clip(u, −c, c)`` as ``β → ∞``. Not the projected flow:
    ``u`` creeps past the wall where ``s_β'`` is small and lags when the field turns back.
    The wall test is on ``u`` (``|u| ≥ c``: past the wall in the reparametrised variable).
    """

    c: Scalar
    beta: Scalar
    newton_steps: ClassVar[int] = 60

    def __init__(self, c: ScalarLike, beta: ScalarLike):
        self.c = positive("c", c)
        self.beta = positive("beta", beta)

    def observe(self, u: Params) -> Params:
        b, c = self.beta, self.c
        return c + (jax.nn.softplus(-b * (u + c)) - jax.nn.softplus(b * (c - u))) / b

    def slope(self, u: Params) -> Params:
        """``s_β'(u) = σ(β(c − |u|)) − σ(−β(|u| + c))`` in ``(0, 1]`` (even in ``u``; this form
        has no cancellation far outside the box)."""
        b, c, a = self.beta, self.c, jnp.abs(u)
        return jax.nn.sigmoid(b * (c - a)) - jax.nn.sigmoid(-b * (a + c))

    def velocity(self, u: Params, v: Params) -> Params:
        return self.slope(u) * v

    def decay_rate(self) -> None:
        """None: ``s_β'(u) v`` has no decay term. Its ``u``-derivative ``s_β''(u) v`` (at
        most ``β |v| / 4``) changes with the velocity, and since ``s_β' > 0`` has no zero
        the field has no equilibrium past the wall to overshoot: the field is bounded by
        ``|v|``, so an explicit step moves ``u`` too far by ``O(|v| dt)`` (a lag when the
        field turns back), never unstably."""
        return None

    def to_state(self, omega: Params) -> Params:
        """``s_β^{-1}(ω)`` by Newton's method from ``u = ω``.

        ``s_β`` is concave on ``u > 0`` and convex on ``u < 0`` with ``s_β(u) ≤ u`` there,
        so the iterates rise monotonically to the root. Parameters on or past a wall
        (no preimage) are first moved inside by a relative ``1e-6`` of ``c``.
        """
        target = jnp.clip(omega, -self.c * (1 - 1e-6), self.c * (1 - 1e-6))

        def newton(_, u):
            return u - (self.observe(u) - target) / self.slope(u)

        return jax.lax.fori_loop(0, self.newton_steps, newton, target)
