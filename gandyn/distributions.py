"""Data and latent laws, and the quadrature rules that turn expectations into finite sums.

Every law has ``dim``, ``sample(key, n)``, ``mean()`` and ``quadrature(size, key=None)``,
except :class:`GaussianLaw` (an affine generator's output law: ``dim`` and ``log_prob``).
A fixed quadrature makes the mean-field ODE deterministic (DESIGN §1.1): Gauss–Hermite
(normal laws, per mixture component) or Gauss–Legendre (uniform laws) with ``size`` nodes
per axis in dimension ≤ 2, and a fixed set of ``size`` Monte Carlo samples above that.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy as jsp
import numpy as np
import scipy.special

from ._types import Array, Float, PRNGKeyArray, Vector

MAX_TENSOR_DIM = 2


class Quadrature(eqx.Module):
    """Nodes ``(m, d)`` and weights ``(m,)`` summing to one: ``E f ≈ Σ_k w_k f(x_k)``."""

    nodes: Float[Array, "m d"]
    weights: Float[Array, " m"]

    def __check_init__(self):
        if self.nodes.ndim != 2 or self.weights.shape != self.nodes.shape[:1]:
            raise ValueError(
                f"quadrature needs nodes (m, d) and weights (m,), got {self.nodes.shape} "
                f"and {self.weights.shape}"
            )

    @property
    def size(self) -> int:
        return self.nodes.shape[0]

    @property
    def dim(self) -> int:
        return self.nodes.shape[1]

    def mean(self) -> Vector:
        return self.weights @ self.nodes


def _tensor_rule(nodes_1d: np.ndarray, weights_1d: np.ndarray, dim: int):
    """Tensor product of a 1-D rule in ``dim`` dimensions (numpy, concrete; the last axis
    varies fastest)."""
    axes = np.meshgrid(*[np.asarray(nodes_1d, dtype=np.float64)] * dim, indexing="ij")
    nodes = np.stack(axes, axis=-1).reshape(-1, dim)
    weights = functools.reduce(np.multiply.outer, [np.asarray(weights_1d)] * dim).reshape(-1)
    return nodes, weights / weights.sum()


MAX_NODES = 10_000
"""Most nodes per axis a Gauss rule takes: beyond it every added node's weight underflows
(Gauss–Hermite: below 1e-300), so only the cost grows."""

NUMPY_HERMITE_MAX = 150
"""Up to this many nodes the Gauss–Hermite rule comes from NumPy's ``hermegauss``; above,
from SciPy's ``roots_hermitenorm`` (an O(n) asymptotic method). NumPy's weights overflow
to NaN from 380 nodes on; the two rules agree to 1e-14 where both work."""


def standard_normal_rule(size: int, dim: int):
    """Gauss–Hermite rule for N(0, I_dim): ``size`` nodes per axis (numpy arrays)."""
    if size <= NUMPY_HERMITE_MAX:
        nodes, weights = np.polynomial.hermite_e.hermegauss(size)
    else:
        nodes, weights = scipy.special.roots_hermitenorm(size)
    return _tensor_rule(nodes, weights, dim)


def _check_size(size: int) -> None:
    if not isinstance(size, int | np.integer) or size <= 0:
        raise ValueError(f"quadrature size must be a positive integer, got {size!r}")


def _mc_key(key: PRNGKeyArray | None, dim: int) -> PRNGKeyArray:
    if key is None:
        raise ValueError(
            f"a quadrature in dimension {dim} > {MAX_TENSOR_DIM} is a fixed Monte Carlo sample "
            "set and needs a key"
        )
    return key


class Normal(eqx.Module):
    """Product normal law ``N(loc, diag(scale²))`` on R^d."""

    loc: Vector
    scale: Vector

    def __init__(self, loc, scale):
        loc = jnp.atleast_1d(jnp.asarray(loc, dtype=float))
        self.loc = loc
        self.scale = jnp.broadcast_to(jnp.asarray(scale, dtype=loc.dtype), loc.shape)

    @property
    def dim(self) -> int:
        return self.loc.shape[0]

    def mean(self) -> Vector:
        return self.loc

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        noise = jax.random.normal(key, (n, self.dim), self.loc.dtype)
        return self.loc[None, :] + self.scale[None, :] * noise

    def quantile(self, levels: Float[Array, "n d"]) -> Float[Array, "n d"]:
        return self.loc[None, :] + self.scale[None, :] * jsp.special.ndtri(levels)

    def quadrature(self, size: int, key: PRNGKeyArray | None = None) -> Quadrature:
        _check_size(size)
        if self.dim > MAX_TENSOR_DIM:
            return Quadrature(self.sample(_mc_key(key, self.dim), size), jnp.full(size, 1 / size))
        nodes, weights = standard_normal_rule(size, self.dim)
        nodes = self.loc[None, :] + self.scale[None, :] * jnp.asarray(nodes)
        return Quadrature(nodes, jnp.asarray(weights))


class Uniform(eqx.Module):
    """Product uniform law on the box ``[low, high]`` in R^d."""

    low: Vector
    high: Vector

    def __init__(self, low, high):
        low = jnp.atleast_1d(jnp.asarray(low, dtype=float))
        self.low = low
        self.high = jnp.broadcast_to(jnp.asarray(high, dtype=low.dtype), low.shape)

    @property
    def dim(self) -> int:
        return self.low.shape[0]

    def mean(self) -> Vector:
        return 0.5 * (self.low + self.high)

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        return jax.random.uniform(key, (n, self.dim), self.low.dtype, self.low, self.high)

    def quantile(self, levels: Float[Array, "n d"]) -> Float[Array, "n d"]:
        return self.low[None, :] + (self.high - self.low)[None, :] * levels

    def quadrature(self, size: int, key: PRNGKeyArray | None = None) -> Quadrature:
        _check_size(size)
        if self.dim > MAX_TENSOR_DIM:
            return Quadrature(self.sample(_mc_key(key, self.dim), size), jnp.full(size, 1 / size))
        nodes_1d, weights_1d = np.polynomial.legendre.leggauss(size)
        nodes, weights = _tensor_rule(0.5 * (nodes_1d + 1), weights_1d, self.dim)
        return Quadrature(self.quantile(jnp.asarray(nodes)), jnp.asarray(weights))


class GaussianMixture(eqx.Module):
    """``Σ_c π_c N(m_c, s_c² I)`` on R^d: means ``(C, d)``, weights ``(C,)``, stds ``(C,)``."""

    means: Float[Array, "C d"]
    weights: Float[Array, " C"]
    stds: Float[Array, " C"]

    def __init__(self, means, weights=None, stds=1.0):
        means = jnp.asarray(means, dtype=float)
        if means.ndim == 1:
            means = means[:, None]
        if means.ndim != 2:
            raise ValueError(f"mixture means must have shape (C, d), got {means.shape}")
        n_comp = means.shape[0]
        weights = jnp.full(n_comp, 1 / n_comp) if weights is None else jnp.asarray(weights, float)
        if weights.shape != (n_comp,):
            raise ValueError(f"mixture weights must have shape ({n_comp},), got {weights.shape}")
        self.means = means
        self.weights = weights / jnp.sum(weights)
        self.stds = jnp.broadcast_to(jnp.asarray(stds, dtype=means.dtype), (n_comp,))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def mean(self) -> Vector:
        return self.weights @ self.means

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        key_c, key_z = jax.random.split(key)
        comp = jax.random.choice(key_c, self.weights.shape[0], (n,), p=self.weights)
        noise = jax.random.normal(key_z, (n, self.dim), self.means.dtype)
        return self.means[comp] + self.stds[comp, None] * noise

    def log_prob(self, x: Vector) -> Float[Array, ""]:
        """Log density at one point ``x`` of shape ``(d,)``."""
        sq = jnp.sum((x[None, :] - self.means) ** 2, axis=1)
        log_comp = -0.5 * sq / self.stds**2 - self.dim * jnp.log(self.stds * jnp.sqrt(2 * jnp.pi))
        return jsp.special.logsumexp(log_comp, b=self.weights)

    def quadrature(self, size: int, key: PRNGKeyArray | None = None) -> Quadrature:
        _check_size(size)
        if self.dim > MAX_TENSOR_DIM:
            return Quadrature(self.sample(_mc_key(key, self.dim), size), jnp.full(size, 1 / size))
        base, base_w = standard_normal_rule(size, self.dim)
        nodes = self.means[:, None, :] + self.stds[:, None, None] * jnp.asarray(base)[None]
        weights = self.weights[:, None] * jnp.asarray(base_w)[None]
        return Quadrature(nodes.reshape(-1, self.dim), weights.reshape(-1))


class GaussianLaw(eqx.Module):
    """``N(mean, cov)`` on R^d with a log density (the affine generator's law)."""

    mean: Vector
    cov: Float[Array, "d d"]

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def log_prob(self, x: Vector) -> Float[Array, ""]:
        """Log density at one point ``x`` of shape ``(d,)``."""
        chol = jnp.linalg.cholesky(self.cov)
        r = jsp.linalg.solve_triangular(chol, x - self.mean, lower=True)
        log_det = jnp.sum(jnp.log(jnp.diag(chol)))
        return -0.5 * r @ r - log_det - 0.5 * self.dim * jnp.log(2 * jnp.pi)


class Empirical(eqx.Module):
    """A weighted point set used as a law: Dirac mixtures and user-given samples.

    Its quadrature is itself (exact); ``sample`` draws with replacement.
    """

    points: Float[Array, "n d"]
    weights: Float[Array, " n"]

    def __init__(self, points, weights=None):
        points = jnp.asarray(points, dtype=float)
        if points.ndim == 1:
            points = points[:, None]
        n = points.shape[0]
        weights = jnp.full(n, 1 / n) if weights is None else jnp.asarray(weights, dtype=float)
        if weights.shape != (n,):
            raise ValueError(f"point weights must have shape ({n},), got {weights.shape}")
        self.points = points
        self.weights = weights / jnp.sum(weights)

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    def mean(self) -> Vector:
        return self.weights @ self.points

    def sample(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        return self.points[jax.random.choice(key, self.weights.shape[0], (n,), p=self.weights)]

    def quadrature(self, size: int | None = None, key: PRNGKeyArray | None = None) -> Quadrature:
        del size, key
        return Quadrature(self.points, self.weights)


def ring_mixture(radius: float, components: int, std: float) -> GaussianMixture:
    """``components`` equal Gaussians ``N(m_k, std² I)`` with ``m_k`` evenly on a circle."""
    angles = 2 * np.pi * np.arange(components) / components
    return GaussianMixture(radius * np.stack([np.cos(angles), np.sin(angles)], 1), None, std)
