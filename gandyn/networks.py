"""Networks: the generators ``G_θ: R^L → R^d`` (affine, MLP) and the discriminator
``ℓ_φ: R^d → R`` of study J; one sample per call, batch with ``vmap``."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from ._types import Array, Float, PRNGKeyArray, Scalar, Vector
from .distributions import GaussianLaw, Normal
from .units import Activation, check_activation


class AffineGenerator(eqx.Module):
    """``G(z) = A z + b``: ``A (d, L)``, ``b (d,)``."""

    A: Float[Array, "d L"]
    b: Float[Array, " d"]

    def __init__(self, A, b):
        A, b = jnp.atleast_2d(jnp.asarray(A, float)), jnp.atleast_1d(jnp.asarray(b, float))
        if b.shape != A.shape[:1]:
            raise ValueError(f"need A (d, L) and b (d,), got A {A.shape} and b {b.shape}")
        self.A, self.b = A, b

    @property
    def data_dim(self) -> int:
        return self.A.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.A.shape[1]

    def __call__(self, z: Float[Array, " L"]) -> Float[Array, " d"]:
        return self.A @ z + self.b

    def pushforward(self, latent: Normal) -> GaussianLaw:
        """The generated law ``N(b, A diag(s²) Aᵀ)`` for the latent law ``N(0, diag(s²))``."""
        cov = (self.A * latent.scale[None, :] ** 2) @ self.A.T
        return GaussianLaw(self.b + self.A @ latent.loc, cov)


class MLPGenerator(eqx.Module):
    """Equinox MLP ``R^L → R^d``."""

    mlp: eqx.nn.MLP
    data_dim: int = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)

    def __init__(
        self,
        latent_dim: int,
        data_dim: int,
        width: int,
        depth: int,
        *,
        key: PRNGKeyArray,
        activation: Activation = jnp.tanh,
    ):
        self.data_dim, self.latent_dim = data_dim, latent_dim
        self.mlp = eqx.nn.MLP(
            latent_dim, data_dim, width, depth, check_activation(activation), key=key
        )

    def __call__(self, z: Float[Array, " L"]) -> Float[Array, " d"]:
        return self.mlp(z)


class Discriminator(eqx.Module):
    """Equinox MLP ``R^d → R`` giving the logit ``ℓ_φ(y)`` (so ``D_φ = sigmoid(ℓ_φ)``)."""

    mlp: eqx.nn.MLP
    dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        width: int,
        depth: int,
        *,
        key: PRNGKeyArray,
        activation: Activation = jnp.tanh,
    ):
        self.dim = dim
        self.mlp = eqx.nn.MLP(dim, "scalar", width, depth, check_activation(activation), key=key)

    def __call__(self, y: Vector) -> Scalar:
        if y.shape != (self.dim,):
            raise ValueError(f"discriminator reads points of shape ({self.dim},), got {y.shape}")
        return self.mlp(y)
