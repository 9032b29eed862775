"""Weighted particle measures ``Σ_i w_i δ_{x_i}`` and how to draw initial particles."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ._types import Array, ArrayLike, Float, Particles, PRNGKeyArray, Weights


class ParticleMeasure(eqx.Module):
    """A discrete measure: positions ``(n, p)`` and weights ``(n,)`` (default ``1/n`` each).

    A network of width ``n`` is the measure of its ``n`` neurons' parameters.
    """

    positions: Particles
    weights: Weights

    def __init__(self, positions: ArrayLike, weights: ArrayLike | None = None):
        positions = jnp.asarray(positions)
        if positions.ndim != 2:
            raise ValueError(f"positions must have shape (n, p), got shape {positions.shape}")
        n = positions.shape[0]
        if weights is None:
            weights = jnp.full((n,), 1.0 / n, dtype=positions.dtype)
        weights = jnp.asarray(weights, dtype=positions.dtype)
        if weights.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got shape {weights.shape}")
        self.positions = positions
        self.weights = weights

    @property
    def size(self) -> int:
        """Number of particles ``n``."""
        return self.positions.shape[0]

    @property
    def dim(self) -> int:
        """Dimension ``p`` of one particle."""
        return self.positions.shape[1]

    def mean(self) -> Float[Array, " p"]:
        """Weighted mean of the positions, ``Σ w_i x_i / Σ w_i``."""
        return self.weights @ self.positions / jnp.sum(self.weights)

    def with_positions(self, positions: Particles) -> ParticleMeasure:
        """Same weights, new positions."""
        return ParticleMeasure(positions, self.weights)

    def append(self, positions: Particles, weights: Weights) -> ParticleMeasure:
        """This measure plus ``Σ_k weights_k δ_{positions_k}`` (used for probes, §1.2)."""
        return ParticleMeasure(
            jnp.concatenate([self.positions, positions]), jnp.concatenate([self.weights, weights])
        )


def quantile_levels(n: int, dim: int, key: PRNGKeyArray | None = None) -> Float[Array, "n dim"]:
    """Levels ``(k + ½)/n`` per coordinate, as a Latin hypercube.

    Coordinate 0 is sorted; the others are permuted by ``key`` (so ``dim = 1`` is
    fully deterministic and ``dim > 1`` does not put every particle on the diagonal).
    """
    levels = (jnp.arange(n) + 0.5) / n
    columns = [levels]
    for k in range(1, dim):
        if key is None:
            raise ValueError("quantile sampling in more than one dimension needs a key")
        columns.append(jax.random.permutation(jax.random.fold_in(key, k), levels))
    return jnp.stack(columns, axis=1)


def sample_measure(key: PRNGKeyArray, law, n: int, method: str = "random") -> ParticleMeasure:
    """``n`` uniformly weighted particles from a product law (see ``gandyn.distributions``).

    ``method="random"`` draws i.i.d.; ``method="quantile"`` places the particles at the
    quantiles ``(k + ½)/n`` of each coordinate's 1-D law (deterministic in 1-D).
    """
    if n <= 0:
        raise ValueError(f"number of particles must be positive, got {n}")
    if method == "random":
        return ParticleMeasure(law.sample(key, n))
    if method == "quantile":
        return ParticleMeasure(law.quantile(quantile_levels(n, law.dim, key)))
    raise ValueError(f"unknown sampling method {method!r}; allowed: 'random', 'quantile'")
