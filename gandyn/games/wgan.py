"""The adversarial game of study W: a generator measure μ against a critic measure ν."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Float, Scalar, ScalarLike
from ..distributions import Quadrature
from ..measure import ParticleMeasure
from ..units import AbstractCriticUnit, AbstractGeneratorUnit, network

LOSSES = ("wgan", "minimax", "nonsaturating")


class MeanFieldGame(eqx.Module):
    """Objectives of the two players, as functions of their particle measures.

    ``loss="wgan"``:  ``F(μ, ν) = E_{x~P*} D[ν](x) − E_{z~γ} D[ν](G[μ](z))``;
    ``"minimax"``: ``E log σ(D(x)) + E log(1 − σ(D(G(z))))``;
    ``"nonsaturating"``: the critic ascends the minimax objective, the generator descends
    ``−E log σ(D(G(z)))``. Expectations are the quadrature rules ``data`` and ``latent``;
    ``lam`` is the critic/generator time-scale ratio λ (DESIGN §1.2).
    """

    generator: AbstractGeneratorUnit
    critic: AbstractCriticUnit
    data: Quadrature
    latent: Quadrature
    lam: Scalar
    loss: str = eqx.field(static=True)

    def __init__(
        self,
        generator: AbstractGeneratorUnit,
        critic: AbstractCriticUnit,
        data: Quadrature,
        latent: Quadrature,
        lam: ScalarLike = 1.0,
        loss: str = "wgan",
    ):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; allowed: {', '.join(LOSSES)}")
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
        self.loss = loss

    def generate(self, gen: ParticleMeasure, z: Float[Array, "b L"]) -> Float[Array, "b K"]:
        """Generator outputs ``G[μ](z_b)``."""
        return jax.vmap(network(self.generator, gen.positions, gen.weights))(z)

    def critique(self, critic: ParticleMeasure, x: Float[Array, "b K"]) -> Float[Array, " b"]:
        """Critic values ``D[ν](x_b)``."""
        return jax.vmap(network(self.critic, critic.positions, critic.weights))(x)

    def _critic_logits(self, gen: ParticleMeasure, critic: ParticleMeasure):
        real = self.critique(critic, self.data.nodes)
        fake = self.critique(critic, self.generate(gen, self.latent.nodes))
        return real, fake

    def critic_objective(self, gen: ParticleMeasure, critic: ParticleMeasure) -> Scalar:
        """What the critic ascends (``F`` for ``wgan`` and ``minimax``)."""
        real, fake = self._critic_logits(gen, critic)
        if self.loss == "wgan":
            return self.data.weights @ real - self.latent.weights @ fake
        return self.data.weights @ jax.nn.log_sigmoid(real) + self.latent.weights @ (
            jax.nn.log_sigmoid(-fake)
        )

    def generator_objective(self, gen: ParticleMeasure, critic: ParticleMeasure) -> Scalar:
        """What the generator descends (``F`` itself except for ``nonsaturating``)."""
        if self.loss == "nonsaturating":
            fake = self.critique(critic, self.generate(gen, self.latent.nodes))
            return -self.latent.weights @ jax.nn.log_sigmoid(fake)
        return self.critic_objective(gen, critic)

    def value(self, gen: ParticleMeasure, critic: ParticleMeasure) -> Scalar:
        """The game's value ``F(μ, ν)`` (the critic's objective)."""
        return self.critic_objective(gen, critic)
