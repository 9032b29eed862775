"""The adversarial game of study W: a generator measure μ against a critic measure ν."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import strategy
from .._types import Array, Float, Scalar, ScalarLike
from ..distributions import Quadrature
from ..measure import ParticleMeasure
from ..units import AbstractCriticUnit, AbstractGeneratorUnit
from ._chunks import auto_chunk, particle_sum, weighted_sum
from .losses import AbstractLoss, Wasserstein


class MeanFieldGame(eqx.Module):
    """Objectives of the two players, as functions of their particle measures.

    ``loss`` (an :class:`~gandyn.AbstractLoss`; default :class:`~gandyn.Wasserstein`,
    ``F(μ, ν) = E_{x~P*} D[ν](x) − E_{z~γ} D[ν](G[μ](z))``) makes the critic's values at the
    data and at the generated points into each player's objective. Expectations are the
    quadrature rules ``data`` and ``latent``;
    ``lam`` is the critic/generator time-scale ratio λ (DESIGN §1.2). Sums and velocities
    run over blocks of ``chunk_size`` particles (default: from the number of nodes, so that a
    block's ``chunk × nodes`` table fits in cache; multiples of 128 are fastest); results do
    not depend on it beyond round-off.
    """

    generator: AbstractGeneratorUnit
    critic: AbstractCriticUnit
    data: Quadrature
    latent: Quadrature
    lam: Scalar
    loss: AbstractLoss
    chunk_size: int | None = eqx.field(static=True)

    def __init__(
        self,
        generator: AbstractGeneratorUnit,
        critic: AbstractCriticUnit,
        data: Quadrature,
        latent: Quadrature,
        lam: ScalarLike = 1.0,
        loss: AbstractLoss | None = None,
        chunk_size: int | None = None,
    ):
        loss = strategy("loss", Wasserstein() if loss is None else loss, AbstractLoss)
        if data.dim != generator.data_dim or critic.data_dim != generator.data_dim:
            raise ValueError(
                f"dimension mismatch: data lives in R^{data.dim}, the generator outputs "
                f"R^{generator.data_dim}, the critic reads R^{critic.data_dim}"
            )
        if latent.dim != generator.latent_dim:
            raise ValueError(
                f"dimension mismatch: latent rule in R^{latent.dim}, generator expects "
                f"R^{generator.latent_dim}"
            )
        self.generator, self.critic, self.data, self.latent = generator, critic, data, latent
        self.lam = jnp.asarray(lam, dtype=data.nodes.dtype)
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
        self.loss = loss
        self.chunk_size = chunk_size

    def chunk(self, n_nodes: int) -> int:
        """Particles per block when each particle meets ``n_nodes`` inputs."""
        return auto_chunk(n_nodes, self.chunk_size)

    def generate(self, gen: ParticleMeasure, z: Float[Array, "b L"]) -> Float[Array, "b K"]:
        """Generator outputs ``G[μ](z_b)``."""

        def outputs(theta):
            return jax.vmap(lambda u: self.generator(theta, u))(z)

        return particle_sum(
            weighted_sum(outputs), gen.positions, gen.weights, self.chunk(z.shape[0])
        )

    def critique(self, critic: ParticleMeasure, x: Float[Array, "b K"]) -> Float[Array, " b"]:
        """Critic values ``D[ν](x_b)``."""

        def values(omega):
            return jax.vmap(lambda u: self.critic(omega, u))(x)

        return particle_sum(
            weighted_sum(values), critic.positions, critic.weights, self.chunk(x.shape[0])
        )

    def critique_with_gradient(
        self, critic: ParticleMeasure, x: Float[Array, "b K"]
    ) -> tuple[Float[Array, " b"], Float[Array, "b K"]]:
        """``D[ν](x_b)`` and ``∇_x D[ν](x_b)`` in one pass over the critic's particles."""

        def values(omega, y):
            return jax.vmap(lambda u: self.critic(omega, u))(y)

        def block(omega, v):
            # D(x_b) depends on x_b alone: the pullback of ones gives every ∇D(x_b)
            d, pullback = jax.vjp(lambda y: v @ jax.vmap(values, (0, None))(omega, y), x)
            return d, pullback(jnp.ones_like(d))[0]

        return particle_sum(block, critic.positions, critic.weights, self.chunk(x.shape[0]))

    def _critic_values(self, gen: ParticleMeasure, critic: ParticleMeasure):
        """The loss's arguments: ``D`` at the data nodes and at the generated points, and
        the two rules' weights."""
        real = self.critique(critic, self.data.nodes)
        fake = self.critique(critic, self.generate(gen, self.latent.nodes))
        return real, fake, self.data.weights, self.latent.weights

    def critic_objective(self, gen: ParticleMeasure, critic: ParticleMeasure) -> Scalar:
        """What the critic ascends (``F``)."""
        return self.loss.critic_objective(*self._critic_values(gen, critic))

    def generator_objective(self, gen: ParticleMeasure, critic: ParticleMeasure) -> Scalar:
        """What the generator descends (``F`` itself except for :class:`NonSaturating`)."""
        return self.loss.generator_objective(*self._critic_values(gen, critic))

    def value(self, gen: ParticleMeasure, critic: ParticleMeasure) -> Scalar:
        """The game's value ``F(μ, ν)`` (the critic's objective)."""
        return self.critic_objective(gen, critic)
