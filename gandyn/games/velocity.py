"""Wasserstein velocities as gradients of first variations, by autodiff (DESIGN §1.2).

``V_G(θ) = −∇_θ δF_G/δμ(θ)`` and ``V_D(ω) = λ ∇_ω δF_D/δν(ω)``.

:func:`first_variation_gradient` does it for any functional of a measure:

* at the particles of the measure, ``∇(δF/δμ)(θ_i) = (∂F/∂θ_i) / w_i`` (one reverse pass);
* at arbitrary points (probes): append the ``P`` probes with a common weight ``s`` and take
  ``∂_s ∇_probes F(μ + s Σ_p δ_{θ_p})`` at ``s = 0`` — one ``jvp`` of one ``grad``.

The game's velocities take the same derivative in stages (DESIGN §5). ``F`` sees ``μ`` only
through the generated points ``y_b = G[μ](z_b)`` and ``ν`` only through the critic's values
at the data nodes and at ``y``, so with ``ḡ_b = ∂F/∂y_b`` and ``c̄ = ∂F/∂(logits)``:
``δF/δμ(θ) = Σ_b ḡ_b·Φ(θ, z_b)`` and ``δF/δν(ω) = Σ_k c̄_k Ψ(ω, x_k)``. The averages
(``y``, the logits, ``∇D(y)``) are computed once, then ``∇_θ`` of those sums per point, by
autodiff of the units, in particle blocks with the quadrature axis last.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .._types import Array, Float, Particles, Scalar
from ..measure import ParticleMeasure
from ._chunks import particle_map
from .wgan import MeanFieldGame


def _points(measure: ParticleMeasure, points: Particles | None) -> Particles:
    """``points`` checked against the measure (its own positions if None)."""
    if points is None:
        return measure.positions
    points = jnp.asarray(points, dtype=measure.positions.dtype)
    if points.ndim != 2 or points.shape[1] != measure.dim:
        raise ValueError(f"probe points must have shape (P, {measure.dim}), got {points.shape}")
    return points


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
    points = _points(measure, points)
    ones = jnp.ones(points.shape[0], dtype=points.dtype)

    def probe_gradient(s):
        return jax.grad(lambda x: functional(measure.append(x, s * ones)))(points)

    zero = jnp.zeros((), dtype=points.dtype)
    return jax.jvp(probe_gradient, (zero,), (jnp.ones_like(zero),))[1]


def _gradient_of_weighted_sum(
    unit: Callable, points: Particles, inputs: Float[Array, "B d"], cotangent: Array, chunk: int
) -> Particles:
    """``∇_θ Σ_b ⟨cotangent_b, unit(θ, x_b)⟩`` at every point, in blocks of ``chunk``."""

    def weighted_sum(theta):
        return jnp.sum(jax.vmap(lambda x: unit(theta, x))(inputs) * cotangent)

    return particle_map(jax.grad(weighted_sum), points, chunk)


def generator_velocity(
    game: MeanFieldGame,
    gen: ParticleMeasure,
    critic: ParticleMeasure,
    points: Particles | None = None,
) -> Particles:
    """``V_G[μ, ν]`` at ``points`` (default: the generator's particles)."""
    points = _points(gen, points)
    z, x = game.latent.nodes, game.data.nodes
    y = game.generate(gen, z)
    fake, grad_critic = game.critique_with_gradient(critic, y)
    fake_bar = jax.grad(game.loss.generator_objective, 1)(
        game.critique(critic, x), fake, game.data.weights, game.latent.weights
    )
    y_bar = fake_bar[:, None] * grad_critic
    return -_gradient_of_weighted_sum(game.generator, points, z, y_bar, game.chunk(z.shape[0]))


def critic_velocity(
    game: MeanFieldGame,
    gen: ParticleMeasure,
    critic: ParticleMeasure,
    points: Particles | None = None,
) -> Particles:
    """``V_D[μ, ν]`` at ``points`` (default: the critic's particles), including ``λ``."""
    points = _points(critic, points)
    x = game.data.nodes
    y = game.generate(gen, game.latent.nodes)
    real_bar, fake_bar = jax.grad(game.loss.critic_objective, (0, 1))(
        game.critique(critic, x), game.critique(critic, y), game.data.weights, game.latent.weights
    )
    nodes = jnp.concatenate([x, y])
    logits_bar = jnp.concatenate([real_bar, fake_bar])
    grad = _gradient_of_weighted_sum(
        game.critic, points, nodes, logits_bar, game.chunk(nodes.shape[0])
    )
    return game.lam * grad
