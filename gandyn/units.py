"""Neuron units: generator units ``Φ(θ, z) ∈ R^K`` and critic units ``Ψ(ω, x) ∈ R``.

Each unit maps *one* particle and *one* input; ``vmap`` lifts it to measures and batches.
A network is ``G[μ](z) = ∫ Φ(θ, z) dμ(θ)``, ``D[ν](x) = ∫ Ψ(ω, x) dν(ω)`` (DESIGN §1.1).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ._types import Array, Float, Scalar, Vector

Activation = Callable[[Array], Array]
"""An elementwise function such as ``jnp.tanh`` or ``jax.nn.relu``."""


def check_activation(activation: Activation) -> Activation:
    """``activation`` if it is a function, else ``TypeError`` (names such as ``"tanh"``
    are for the configuration only)."""
    if not callable(activation):
        raise TypeError(f"activation must be a function such as jnp.tanh, got {activation!r}")
    return activation


def _check_dims(**dims: int) -> None:
    for key, value in dims.items():
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")


class AbstractGeneratorUnit(eqx.Module):
    """``Φ(θ, z)``: parameters ``θ`` of shape ``(param_dim,)``, latent ``z`` of shape ``(L,)``,
    output of shape ``(K,)``."""

    data_dim: eqx.AbstractVar[int]
    latent_dim: eqx.AbstractVar[int]

    @property
    @abc.abstractmethod
    def param_dim(self) -> int: ...

    @abc.abstractmethod
    def __call__(self, theta: Float[Array, " p"], z: Float[Array, " L"]) -> Float[Array, " K"]: ...


class ShiftUnit(AbstractGeneratorUnit):
    """``Φ(θ, z) = θ + z`` (``K = L``): the generator pushes the latent law by the mean shift."""

    data_dim: int = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)

    def __init__(self, dim: int):
        _check_dims(dim=dim)
        self.data_dim = self.latent_dim = dim

    @property
    def param_dim(self) -> int:
        return self.data_dim

    def __call__(self, theta: Float[Array, " p"], z: Float[Array, " L"]) -> Float[Array, " K"]:
        return theta + z


class AffineUnit(AbstractGeneratorUnit):
    """``Φ(θ, z) = A z + b`` with ``θ = (vec(A), b)``, ``A`` of shape ``(K, L)`` (row-major)."""

    data_dim: int = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)

    def __init__(self, data_dim: int, latent_dim: int):
        _check_dims(data_dim=data_dim, latent_dim=latent_dim)
        self.data_dim, self.latent_dim = data_dim, latent_dim

    @property
    def param_dim(self) -> int:
        return self.data_dim * (self.latent_dim + 1)

    def __call__(self, theta: Float[Array, " p"], z: Float[Array, " L"]) -> Float[Array, " K"]:
        k, latent = self.data_dim, self.latent_dim
        return theta[: k * latent].reshape(k, latent) @ z + theta[k * latent :]


class NeuronUnit(AbstractGeneratorUnit):
    """``Φ(θ, z) = a σ(w·z + b)`` with ``θ = (a, w, b) ∈ R^K × R^L × R``."""

    data_dim: int = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)

    def __init__(self, data_dim: int, latent_dim: int, activation: Activation = jnp.tanh):
        _check_dims(data_dim=data_dim, latent_dim=latent_dim)
        self.data_dim, self.latent_dim = data_dim, latent_dim
        self.activation = check_activation(activation)

    @property
    def param_dim(self) -> int:
        return self.data_dim + self.latent_dim + 1

    def __call__(self, theta: Float[Array, " p"], z: Float[Array, " L"]) -> Float[Array, " K"]:
        k, latent = self.data_dim, self.latent_dim
        a, w, b = theta[:k], theta[k : k + latent], theta[k + latent]
        return a * self.activation(w @ z + b)


class AbstractCriticUnit(eqx.Module):
    """``Ψ(ω, x)``: parameters ``ω`` of shape ``(param_dim,)``, point ``x`` of shape ``(K,)``,
    scalar output."""

    data_dim: eqx.AbstractVar[int]

    @property
    @abc.abstractmethod
    def param_dim(self) -> int: ...

    @abc.abstractmethod
    def __call__(self, omega: Float[Array, " q"], x: Float[Array, " K"]) -> Scalar: ...


class LinearCritic(AbstractCriticUnit):
    """``Ψ(ω, x) = ω·x``: the network is the linear function ``x ↦ ω̄·x``."""

    data_dim: int = eqx.field(static=True)

    def __init__(self, data_dim: int):
        _check_dims(data_dim=data_dim)
        self.data_dim = data_dim

    @property
    def param_dim(self) -> int:
        return self.data_dim

    def __call__(self, omega: Float[Array, " q"], x: Float[Array, " K"]) -> Scalar:
        return omega @ x


class NeuronCritic(AbstractCriticUnit):
    """``Ψ(ω, x) = α σ(β·x + b)`` with ``ω = (α, β, b) ∈ R × R^K × R``."""

    data_dim: int = eqx.field(static=True)
    activation: Activation = eqx.field(static=True)

    def __init__(self, data_dim: int, activation: Activation = jnp.tanh):
        _check_dims(data_dim=data_dim)
        self.data_dim, self.activation = data_dim, check_activation(activation)

    @property
    def param_dim(self) -> int:
        return self.data_dim + 2

    def __call__(self, omega: Float[Array, " q"], x: Float[Array, " K"]) -> Scalar:
        alpha, beta, b = omega[0], omega[1 : 1 + self.data_dim], omega[-1]
        return alpha * self.activation(beta @ x + b)


def network(unit, measure_positions: Float[Array, "n p"], measure_weights: Float[Array, " n"]):
    """The mean-field network ``u ↦ Σ_i w_i unit(θ_i, u)`` for one input ``u``."""

    def apply(u: Vector):
        values = jax.vmap(unit, in_axes=(0, None))(measure_positions, u)
        return jnp.tensordot(measure_weights, values, axes=1)

    return apply


class TanhShiftUnit(AbstractGeneratorUnit):
    """``Φ(θ, z) = tanh(θ) + z`` in 1-D: the one-parameter neuron generator of T2 on a grid.

    ``G[μ](z) = z + ∫ tanh θ dμ``: a saturating shift.
    """

    data_dim: int = eqx.field(static=True, default=1)
    latent_dim: int = eqx.field(static=True, default=1)

    @property
    def param_dim(self) -> int:
        return 1

    def __call__(self, theta: Float[Array, " p"], z: Float[Array, " L"]) -> Float[Array, " K"]:
        return jnp.tanh(theta) + z


class TanhProductCritic(AbstractCriticUnit):
    """``Ψ(ω, x) = tanh(ω x)`` in 1-D: the one-parameter neuron critic of T2 on a grid."""

    data_dim: int = eqx.field(static=True, default=1)

    @property
    def param_dim(self) -> int:
        return 1

    def __call__(self, omega: Float[Array, " q"], x: Float[Array, " K"]) -> Scalar:
        return jnp.tanh(omega @ x)
