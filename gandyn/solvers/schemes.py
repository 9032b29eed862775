"""Finite-volume schemes of the grid solver (DESIGN §3): how densities are reconstructed at
the cell faces, how many forward-Euler stages a step takes, and the Courant number under
which each stage keeps masses non-negative."""

import abc
from typing import TYPE_CHECKING, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from .._types import Array, Float

if TYPE_CHECKING:
    from typing import ClassVar as AbstractClassVar
else:
    from equinox import AbstractClassVar

Densities = Float[Array, "..."]


class AbstractScheme(eqx.Module):
    """A reconstruction of the densities at the faces and a number of stages.

    ``stages`` is 1 (forward Euler) or 2 (SSP Runge–Kutta 2: the average of the state and
    two Euler stages); ``cfl_limit`` is the largest Courant number (``dt`` × a cell's
    outflow rate) at which every stage keeps masses non-negative.
    """

    cfl_limit: AbstractClassVar[float]
    stages: AbstractClassVar[int]

    @abc.abstractmethod
    def face_states(self, rho: Densities, axis: int) -> tuple[Densities, Densities]:
        """Densities on the left and on the right of each interior face along ``axis``
        (``rho`` of shape ``cells``; both results one shorter along ``axis``)."""


def _neighbours(rho: Densities, axis: int) -> tuple[Densities, Densities]:
    """The cells left and right of each interior face along ``axis``."""
    n = rho.shape[axis]
    return (
        jax.lax.slice_in_dim(rho, 0, n - 1, axis=axis),
        jax.lax.slice_in_dim(rho, 1, n, axis=axis),
    )


def _minmod(a: Array, b: Array) -> Array:
    return jnp.where(a * b > 0, jnp.sign(a) * jnp.minimum(jnp.abs(a), jnp.abs(b)), 0.0)


class Upwind(AbstractScheme):
    """First order: each cell's own density on its side of a face; forward Euler."""

    cfl_limit: ClassVar[float] = 1.0
    stages: ClassVar[int] = 1

    def face_states(self, rho: Densities, axis: int) -> tuple[Densities, Densities]:
        return _neighbours(rho, axis)


class MUSCL(AbstractScheme):
    """Second order: linear reconstruction in each cell with the minmod limiter (zero slope
    in the wall cells), stepped with SSP Runge–Kutta 2."""

    cfl_limit: ClassVar[float] = 0.5
    stages: ClassVar[int] = 2

    def face_states(self, rho: Densities, axis: int) -> tuple[Densities, Densities]:
        n = rho.shape[axis]
        pad = [(0, 0)] * rho.ndim
        pad[axis] = (1, 1)
        jumps = jnp.pad(jnp.diff(rho, axis=axis), pad)  # zero slope in the wall cells
        slope = _minmod(
            jax.lax.slice_in_dim(jumps, 0, n, axis=axis),
            jax.lax.slice_in_dim(jumps, 1, n + 1, axis=axis),
        )
        left, right = _neighbours(rho, axis)
        half_left, half_right = _neighbours(0.5 * slope, axis)
        return left + half_left, right - half_right
