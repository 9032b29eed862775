"""Wasserstein velocities as gradients of first variations, by autodiff (DESIGN §1.2).

``V_G(θ) = −∇_θ δF_G/δμ(θ)`` and ``V_D(ω) = λ ∇_ω δF_D/δν(ω)``. Two evaluation strategies
of the same definition:

* at the particles of the measure, ``∇(δF/δμ)(θ_i) = (∂F/∂θ_i) / w_i`` (one reverse pass);
* at arbitrary points (probes): append the ``P`` probes with a common weight ``s`` and take
  ``∂_s ∇_probes F(μ + s Σ_p δ_{θ_p})`` at ``s = 0`` — one ``jvp`` of one ``grad``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._types import Array, Float, Particles, Scalar
from ..measure import ParticleMeasure
from .wgan import MeanFieldGame


def first_variation_gradient(
    functional: Callable[[ParticleMeasure], Scalar],
    measure: ParticleMeasure,
    points: Float[Array, "P p"] | None = None,
) -> Float[Array, "P p"]:
    """``∇_x (δ functional/δμ)(x)`` at ``points``, or at the measure's own particles if None.

    At the particles all weights must be positive.
    """
    if points is None:
        grad = jax.grad(lambda x: functional(measure.with_positions(x)))(measure.positions)
        return grad / measure.weights[:, None]
    points = jnp.asarray(points, dtype=measure.positions.dtype)
    if points.ndim != 2 or points.shape[1] != measure.dim:
        raise ValueError(
            f"probe points must have shape (P, {measure.dim}), got {points.shape}"
        )
    ones = jnp.ones(points.shape[0], dtype=points.dtype)

    def probe_gradient(s):
        return jax.grad(lambda x: functional(measure.append(x, s * ones)))(points)

    zero = jnp.zeros((), dtype=points.dtype)
    return jax.jvp(probe_gradient, (zero,), (jnp.ones_like(zero),))[1]


def generator_velocity(
    game: MeanFieldGame,
    gen: ParticleMeasure,
    critic: ParticleMeasure,
    points: Particles | None = None,
) -> Particles:
    """``V_G[μ, ν]`` at ``points`` (default: the generator's particles)."""
    return -first_variation_gradient(lambda m: game.generator_objective(m, critic), gen, points)


def critic_velocity(
    game: MeanFieldGame,
    gen: ParticleMeasure,
    critic: ParticleMeasure,
    points: Particles | None = None,
) -> Particles:
    """``V_D[μ, ν]`` at ``points`` (default: the critic's particles), including ``λ``."""
    grad = first_variation_gradient(lambda m: game.critic_objective(gen, m), critic, points)
    return game.lam * grad
