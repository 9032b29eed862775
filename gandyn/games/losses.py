"""Losses of study W's game: what each player makes of the critic's values (DESIGN §1.1).

A loss sees the critic's values ``real = D[ν](x_k)`` at the data nodes (weights
``data_weights``, shape ``(m,)``) and ``fake = D[ν](y_b)`` at the generated points
``y_b = G[μ](z_b)`` (weights ``latent_weights``, shape ``(b,)``), and gives the critic's
objective (ascended) and the generator's (descended). Both must be differentiable in
``real`` and ``fake``: the velocities are their gradients (``games/velocity.py``).
"""

import abc

import equinox as eqx
import jax

from .._types import Array, Float, Scalar

Values = Float[Array, " n"]


class AbstractLoss(eqx.Module):
    """The two players' objectives as functions of the critic's values."""

    @abc.abstractmethod
    def critic_objective(
        self, real: Values, fake: Values, data_weights: Values, latent_weights: Values
    ) -> Scalar:
        """What the critic ascends; the game's value ``F(μ, ν)``."""

    @abc.abstractmethod
    def generator_objective(
        self, real: Values, fake: Values, data_weights: Values, latent_weights: Values
    ) -> Scalar:
        """What the generator descends."""


class Wasserstein(AbstractLoss):
    """``F = E_{x~P*} D(x) − E_{z~γ} D(G(z))`` for both players."""

    def critic_objective(self, real, fake, data_weights, latent_weights):
        return data_weights @ real - latent_weights @ fake

    def generator_objective(self, real, fake, data_weights, latent_weights):
        return self.critic_objective(real, fake, data_weights, latent_weights)


class Minimax(AbstractLoss):
    """The original GAN: ``F = E log σ(D(x)) + E log(1 − σ(D(G(z))))`` for both players."""

    def critic_objective(self, real, fake, data_weights, latent_weights):
        return data_weights @ jax.nn.log_sigmoid(real) + latent_weights @ jax.nn.log_sigmoid(-fake)

    def generator_objective(self, real, fake, data_weights, latent_weights):
        return self.critic_objective(real, fake, data_weights, latent_weights)


class NonSaturating(AbstractLoss):
    """The critic ascends the minimax objective; the generator descends
    ``−E log σ(D(G(z)))``."""

    def critic_objective(self, real, fake, data_weights, latent_weights):
        return Minimax().critic_objective(real, fake, data_weights, latent_weights)

    def generator_objective(self, real, fake, data_weights, latent_weights):
        del real, data_weights
        return -latent_weights @ jax.nn.log_sigmoid(fake)
