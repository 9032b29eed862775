"""Drift estimators of the Jensen–Shannon flow (DESIGN §2).

Every estimator gives the logit ``ℓ(y) ≈ log ρ_d(y) − log ρ_t(y)`` of the optimal
discriminator ``D* = sigmoid(ℓ)`` and, from it, the drift ``v(y) = sigmoid(ℓ) ∇ℓ``
(parametrised by the logit: no log of 0 anywhere). Three estimators share the interface
:class:`AbstractDriftEstimator` (``logit(y, measure, t)`` for one point, ``drift`` for many):

* :class:`ExactDrift`: analytic ``log ρ_d`` and an analytic ``log ρ_t`` (any law with
  ``log_prob``) or one interpolated from grid densities (:class:`GridDensity`);
* :class:`KDEDrift`: ``ρ_t`` is a Gaussian kernel density estimate of the particles;
* :class:`NeuralDrift`: ``ℓ`` is a :class:`~gandyn.Discriminator` (equinox MLP giving the
  logit), trained by binary cross-entropy with :func:`fit_discriminator` (optax,
  warm-started).

The velocity of the JS flow is ``c v`` (:meth:`AbstractDriftEstimator.velocity`): the
normalisation ``"v"`` (``c = 1``) is the gradient flow of ``2 JS − log 4``; ``"js"`` (the
exact JS gradient flow) halves it. An estimator's ``parameters`` (a neural drift's ``φ``)
move with the particles in the flow at :meth:`~AbstractDriftEstimator.parameter_velocity`.

A drift model (:class:`AbstractDriftModel`) is how an iterative algorithm (GAN-as-ODE)
obtains the estimator each iteration: exact, kernel, or a warm-started trained
discriminator.
"""

from __future__ import annotations

import abc
from typing import Protocol, cast, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._checks import positive, strategy
from .._optax import ADAM, descent
from .._types import Array, Float, PyTree, Scalar, ScalarLike, Vector
from ..distributions import Normal
from ..measure import ParticleMeasure
from ..networks import Discriminator

NORMALISATIONS: dict[str, float] = {"v": 1.0, "js": 0.5}
BANDWIDTH_RULES = ("fixed", "scott", "silverman")


def normalisation_factor(normalisation: str) -> float:
    """Factor multiplying ``sigmoid(ℓ)∇ℓ``: 1 for ``"v"``, ½ for ``"js"``."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(
            f"unknown normalisation {normalisation!r}; allowed: {', '.join(NORMALISATIONS)}"
        )
    return NORMALISATIONS[normalisation]


@runtime_checkable
class LogDensity(Protocol):
    """A law with a log density at one point (e.g. ``GaussianMixture``)."""

    @property
    def dim(self) -> int: ...

    def log_prob(self, x: Vector) -> Scalar: ...


class AbstractDriftEstimator(eqx.Module):
    """Estimates ``ℓ = log ρ_d − log ρ_t`` given the current particles ``measure``."""

    @abc.abstractmethod
    def logit(self, y: Vector, measure: ParticleMeasure, t: ScalarLike = 0.0) -> Scalar:
        """``ℓ(y)`` at one point ``y`` of shape ``(d,)``."""

    def drift(
        self, points: Float[Array, "P d"], measure: ParticleMeasure, t: ScalarLike = 0.0
    ) -> Float[Array, "P d"]:
        """``v = sigmoid(ℓ) ∇ℓ`` at ``points`` (normalisation ``"v"``)."""
        if points.ndim != 2 or points.shape[1] != measure.dim:
            raise ValueError(
                f"dimension mismatch: points have shape {points.shape}, the particles live in "
                f"R^{measure.dim}"
            )

        def one(y):
            ell, grad = jax.value_and_grad(self.logit)(y, measure, t)
            return jax.nn.sigmoid(ell) * grad

        return jax.vmap(one)(points)

    def velocity(
        self,
        points: Float[Array, "P d"],
        measure: ParticleMeasure,
        t: ScalarLike = 0.0,
        normalisation: str = "v",
    ) -> Float[Array, "P d"]:
        """The JS flow's velocity ``c v`` at ``points``, ``c`` the
        :func:`normalisation_factor` of ``normalisation``."""
        return normalisation_factor(normalisation) * self.drift(points, measure, t)

    def parameters(self) -> PyTree:
        """What of the estimator moves with the particles in the flow (``None``: nothing)."""
        return None

    def with_parameters(self, parameters: PyTree) -> AbstractDriftEstimator:
        """The estimator with ``parameters`` (as :meth:`parameters` gives them)."""
        del parameters
        return self

    def parameter_velocity(self, data: ParticleMeasure, measure: ParticleMeasure) -> PyTree:
        """``d parameters / dt`` at unit rate, for data points ``data`` and particles
        ``measure`` (``None`` when there are no parameters)."""
        del data, measure
        return None


def _check_dim(name: str, law: LogDensity, dim: int) -> None:
    if law.dim != dim:
        raise ValueError(f"dimension mismatch: {name} lives in R^{law.dim}, expected R^{dim}")


class GridDensity(eqx.Module):
    """A density known on a uniform grid of cells in R^1 or R^2 at evenly spaced times
    (e.g. a Fokker–Planck solution).

    ``low``/``high`` ``(d,)`` bound the box, ``densities (T, *cells)`` are cell values at
    ``times (T,)`` (one time if omitted). The log density is interpolated linearly between
    cell centres and between times (clamped outside both ranges); densities are floored at
    the smallest positive float before the log.
    """

    low: Float[Array, " d"]
    spacing: Float[Array, " d"]
    t_first: Scalar
    t_step: Scalar
    log_densities: Array

    def __init__(self, low, high, densities, times=None):
        low = jnp.atleast_1d(jnp.asarray(low, dtype=float))
        high = jnp.broadcast_to(jnp.asarray(high, dtype=low.dtype), low.shape)
        densities = jnp.asarray(densities, dtype=low.dtype)
        if times is None:
            densities, times = densities[None], np.zeros(1)
        times = np.asarray(times, dtype=float)
        dim = low.shape[0]
        if dim not in (1, 2) or densities.ndim != dim + 1 or times.shape != densities.shape[:1]:
            raise ValueError(
                f"need a box in R^1 or R^2, times (T,) and densities (T, *cells); got low "
                f"{low.shape}, times {times.shape}, densities {densities.shape}"
            )
        steps = np.diff(times)
        if steps.size and not (np.all(steps > 0) and np.allclose(steps, steps[0], rtol=1e-9)):
            raise ValueError("times must be increasing and evenly spaced")
        self.low = low
        self.spacing = (high - low) / jnp.asarray(densities.shape[1:], dtype=low.dtype)
        self.t_first = jnp.asarray(times[0], dtype=low.dtype)
        self.t_step = jnp.asarray(steps[0] if steps.size else 1.0, dtype=low.dtype)
        self.log_densities = jnp.log(jnp.maximum(densities, jnp.finfo(low.dtype).tiny))

    @property
    def dim(self) -> int:
        return self.low.shape[0]

    def log_prob(self, x: Vector, t: ScalarLike = 0.0) -> Scalar:
        """Interpolated ``log ρ_t(x)`` at one point ``x`` of shape ``(d,)``."""
        index_t = (jnp.asarray(t, self.low.dtype) - self.t_first) / self.t_step
        index_x = (x - self.low) / self.spacing - 0.5
        coords = jnp.concatenate([index_t[None], index_x])
        return jax.scipy.ndimage.map_coordinates(
            self.log_densities, list(coords), order=1, mode="nearest"
        )


class ExactDrift(AbstractDriftEstimator):
    """``ℓ = log ρ_d − log ρ_t`` from known densities; the particles are not used.

    ``current`` is any law with ``log_prob`` (frozen in time) or a :class:`GridDensity`
    (read at time ``t``).
    """

    data: LogDensity
    current: LogDensity | GridDensity

    def __init__(self, data: LogDensity, current: LogDensity | GridDensity):
        _check_dim("the current density", current, data.dim)
        self.data, self.current = data, current

    def logit(self, y: Vector, measure: ParticleMeasure, t: ScalarLike = 0.0) -> Scalar:
        if isinstance(self.current, GridDensity):
            return self.data.log_prob(y) - self.current.log_prob(y, t)
        return self.data.log_prob(y) - self.current.log_prob(y)


class KDEDrift(AbstractDriftEstimator):
    """``ρ_t`` = weighted Gaussian kernel density estimate of the particles.

    Bandwidth ``h = bandwidth × rule(measure)``: ``"fixed"`` (rule = 1), ``"scott"``
    (``σ̂ n^{-1/(d+4)}``) or ``"silverman"`` (``σ̂ (4/(d+2))^{1/(d+4)} n^{-1/(d+4)}``), with
    ``σ̂²`` the mean per-coordinate variance and ``n`` the effective sample size ``1/Σw²``.
    """

    data: LogDensity
    bandwidth: Scalar
    rule: str = eqx.field(static=True)

    def __init__(self, data: LogDensity, bandwidth: ScalarLike = 1.0, rule: str = "silverman"):
        if rule not in BANDWIDTH_RULES:
            raise ValueError(
                f"unknown bandwidth rule {rule!r}; allowed: {', '.join(BANDWIDTH_RULES)}"
            )
        self.data, self.rule = data, rule
        self.bandwidth = positive("bandwidth", bandwidth)

    def width(self, measure: ParticleMeasure) -> Scalar:
        """The kernel width ``h`` for these particles."""
        if self.rule == "fixed":
            return self.bandwidth
        x, w = measure.positions, measure.weights / jnp.sum(measure.weights)
        d = measure.dim
        sigma = jnp.sqrt(jnp.mean(w @ (x - (w @ x)[None, :]) ** 2))
        n_eff = 1.0 / jnp.sum(w**2)
        factor = 1.0 if self.rule == "scott" else (4.0 / (d + 2)) ** (1.0 / (d + 4))
        return self.bandwidth * factor * sigma * n_eff ** (-1.0 / (d + 4))

    def log_density(self, y: Vector, measure: ParticleMeasure) -> Scalar:
        """``log ρ̂(y)`` of the kernel estimate."""
        h = self.width(measure)
        sq = jnp.sum((y[None, :] - measure.positions) ** 2, axis=1)
        w = measure.weights / jnp.sum(measure.weights)
        norm = measure.dim * jnp.log(h * jnp.sqrt(2 * jnp.pi))
        return jax.scipy.special.logsumexp(-0.5 * sq / h**2, b=w) - norm

    def logit(self, y: Vector, measure: ParticleMeasure, t: ScalarLike = 0.0) -> Scalar:
        _check_dim("the data law", self.data, measure.dim)
        return self.data.log_prob(y) - self.log_density(y, measure)


class NeuralDrift(AbstractDriftEstimator):
    """``ℓ = ℓ_φ``: a (trained) :class:`~gandyn.Discriminator`; the particles are not used.
    Its ``parameters`` are ``φ`` (the discriminator's inexact arrays); in the flow they
    ascend :func:`discriminator_objective`, the two-time-scale limit of training the
    discriminator between generator steps."""

    discriminator: Discriminator

    def logit(self, y: Vector, measure: ParticleMeasure, t: ScalarLike = 0.0) -> Scalar:
        return self.discriminator(y)

    def parameters(self) -> PyTree:
        return eqx.filter(self.discriminator, eqx.is_inexact_array)

    def with_parameters(self, parameters: PyTree) -> NeuralDrift:
        _, static = eqx.partition(self.discriminator, eqx.is_inexact_array)
        return NeuralDrift(eqx.combine(parameters, static))

    def parameter_velocity(self, data: ParticleMeasure, measure: ParticleMeasure) -> PyTree:
        """``∇_φ [E_ρd log D_φ + E_ρt log(1 − D_φ)]`` (:func:`discriminator_objective`)."""
        params, static = eqx.partition(self.discriminator, eqx.is_inexact_array)

        def objective(p):
            return discriminator_objective(eqx.combine(p, static), data, measure)

        return jax.grad(objective)(params)


def discriminator_objective(
    discriminator: Discriminator, real: ParticleMeasure, fake: ParticleMeasure
) -> Scalar:
    """``Σ w log D_φ(x) + Σ w log(1 − D_φ(y))`` (weighted means; ascended by the
    discriminator, maximised by ``ℓ_φ = ℓ``)."""
    real_logits = jax.vmap(discriminator)(real.positions)
    fake_logits = jax.vmap(discriminator)(fake.positions)
    wr = real.weights / jnp.sum(real.weights)
    wf = fake.weights / jnp.sum(fake.weights)
    return wr @ jax.nn.log_sigmoid(real_logits) + wf @ jax.nn.log_sigmoid(-fake_logits)


def fit_discriminator(
    discriminator: Discriminator,
    opt_state: optax.OptState,
    optimizer: optax.GradientTransformation,
    real: ParticleMeasure,
    fake: ParticleMeasure,
    n_steps: int,
) -> tuple[Discriminator, optax.OptState, Float[Array, " n_steps"]]:
    """``n_steps`` full-batch ascent steps on :func:`discriminator_objective`, continuing
    from ``discriminator`` and ``opt_state`` (warm start). Returns the objective before
    each step."""
    if real.dim != fake.dim or real.dim != discriminator.dim:
        raise ValueError(
            f"dimension mismatch: real points in R^{real.dim}, fake points in R^{fake.dim}, "
            f"discriminator reads R^{discriminator.dim}"
        )
    params, static = eqx.partition(discriminator, eqx.is_inexact_array)

    def loss(p):
        return -discriminator_objective(eqx.combine(p, static), real, fake)

    def step(carry, _):
        p, state = carry
        value, grads = jax.value_and_grad(loss)(p)
        updates, state = optimizer.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), -value

    (params, opt_state), history = jax.lax.scan(step, (params, opt_state), None, n_steps)
    return cast(Discriminator, eqx.combine(params, static)), opt_state, history


def js_estimate(
    estimator: AbstractDriftEstimator,
    measure: ParticleMeasure,
    data: ParticleMeasure,
    t: ScalarLike = 0.0,
) -> Scalar:
    """``JS(ρ_t, ρ_d) = log 2 + ½ E_ρ log sigmoid(−ℓ) + ½ E_ρd log sigmoid(ℓ)``, the
    expectations over the weighted points ``measure`` and ``data`` (exact for the exact
    logit and exact quadratures; the plug-in estimate otherwise)."""

    def logits(points):
        return jax.vmap(lambda y: estimator.logit(y, measure, t))(points)

    wm = measure.weights / jnp.sum(measure.weights)
    wd = data.weights / jnp.sum(data.weights)
    return (
        jnp.log(2.0)
        + 0.5 * wm @ jax.nn.log_sigmoid(-logits(measure.positions))
        + 0.5 * wd @ jax.nn.log_sigmoid(logits(data.positions))
    )


# ----------------------------------------------------------------------------- drift models


class AbstractDriftModel(eqx.Module):
    """How an iterative algorithm obtains ``ℓ̂`` each iteration: a state (e.g. a
    warm-started discriminator) updated from the data points and the generated points."""

    @abc.abstractmethod
    def init(self, generator, data: ParticleMeasure, fake: ParticleMeasure) -> PyTree:
        """The state before the first iteration."""

    @abc.abstractmethod
    def update(
        self, state: PyTree, generator, data: ParticleMeasure, fake: ParticleMeasure
    ) -> tuple[PyTree, AbstractDriftEstimator]:
        """New state and the estimator for the generated points ``fake``."""


class TrainedDiscriminator(AbstractDriftModel):
    """A :class:`~gandyn.Discriminator` trained by BCE: ``n_init_steps`` before the first
    iteration, then ``n_steps`` per iteration, warm-started (parameters and optimizer
    state carried over). ``optimizer``: an optax transformation without its step (default
    ``optax.scale_by_adam()``), the step ``lr`` is appended (a traced array)."""

    discriminator: Discriminator
    lr: Scalar
    optimizer: optax.GradientTransformation
    n_steps: int = eqx.field(static=True)
    n_init_steps: int = eqx.field(static=True)

    def __init__(
        self,
        discriminator: Discriminator,
        lr: ScalarLike = 1e-2,
        n_steps: int = 5,
        n_init_steps: int = 200,
        optimizer: optax.GradientTransformation = ADAM,
    ):
        if n_steps < 1 or n_init_steps < 0:
            raise ValueError(
                f"n_steps must be >= 1 and n_init_steps >= 0, got {n_steps} and {n_init_steps}"
            )
        self.discriminator = discriminator
        self.optimizer = strategy("optimizer", optimizer, optax.GradientTransformation)
        self.lr = positive("lr", lr)
        self.n_steps, self.n_init_steps = n_steps, n_init_steps

    def init(self, generator, data, fake):
        opt = descent(self.optimizer, self.lr)
        opt_state = opt.init(eqx.filter(self.discriminator, eqx.is_inexact_array))
        disc, opt_state, _ = fit_discriminator(
            self.discriminator, opt_state, opt, data, fake, self.n_init_steps
        )
        return disc, opt_state

    def update(self, state, generator, data, fake):
        opt = descent(self.optimizer, self.lr)
        disc, opt_state = state
        disc, opt_state, _ = fit_discriminator(disc, opt_state, opt, data, fake, self.n_steps)
        return (disc, opt_state), NeuralDrift(disc)


class KernelDiscriminator(AbstractDriftModel):
    """``ℓ̂ = log ρ_d − log KDE(generated points)`` (see :class:`KDEDrift`); no state."""

    estimator: KDEDrift

    def __init__(self, data: LogDensity, bandwidth: ScalarLike = 1.0, rule: str = "silverman"):
        self.estimator = KDEDrift(data, bandwidth, rule)

    def init(self, generator, data, fake):
        return None

    def update(self, state, generator, data, fake):
        return None, self.estimator


class ExactDiscriminator(AbstractDriftModel):
    """The optimal discriminator ``D* = ρ_d/(ρ_d + ρ_t)`` of an
    :class:`~gandyn.AffineGenerator`, ``ρ_t`` its exact Gaussian law for the latent law
    ``latent``; no state."""

    data: LogDensity
    latent: Normal

    def init(self, generator, data, fake):
        return None

    def update(self, state, generator, data, fake):
        return None, ExactDrift(self.data, generator.pushforward(self.latent))
