"""The GAN-as-ODE algorithm (DESIGN §2.3): simulating the JS flow *is* training a GAN.

One iteration, with latent nodes ``z_i`` and weights ``w_i`` (a fixed quadrature):

1. discriminator: the drift model updates (``n_D`` warm-started BCE steps for a trained
   discriminator; nothing to train for the exact or kernel estimates) and gives ``ℓ̂``;
2. Euler targets ``ζ_i = y_i + ε c v̂(y_i)``, ``y_i = G_θ(z_i)``, ``v̂ = sigmoid(ℓ̂)∇ℓ̂``
   (``c`` the normalisation factor), constants of the fit (stop-gradient: the fit
   differentiates the MSE in ``θ`` only; the whole iteration stays differentiable);
3. generator: ``K`` optax steps with learning rate ``λ`` on ``½ Σ w_i |G_θ(z_i) − ζ_i|²``
   (same ``z_i``, optimizer state persistent across iterations), or the exact weighted
   least-squares fit (affine generator only).

``∇_θ MSE = ε c ∇_θ Σ w_i log(1 − D(G_θ(z_i)))`` at the start of step 3, so ``K = 1`` with
SGD is the original GAN generator step with rate ``η = λε``. Iterations run in
``lax.scan``; ``ε`` and ``λ`` are traced (sweep them with ``vmap``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import positive
from .._types import Array, Float, Int, PRNGKeyArray, PyTree, Scalar, ScalarLike, Vector
from ..diagnostics import sliced_wasserstein1
from ..distributions import Normal, Quadrature
from ..games.js import (
    AbstractDriftEstimator,
    Discriminator,
    ExactDrift,
    KDEDrift,
    LogDensity,
    NeuralDrift,
    fit_discriminator,
    js_estimate,
    normalisation_factor,
    optimizer_by_name,
)
from ..measure import ParticleMeasure
from ..units import ACTIVATIONS

FITS = ("gradient", "lstsq")

# ----------------------------------------------------------------------------- generators


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

    def __call__(self, z: Vector) -> Vector:
        return self.A @ z + self.b

    def pushforward(self, latent: Normal) -> GaussianLaw:
        """The generated law ``N(b, A diag(s²) Aᵀ)`` for the latent law ``N(0, diag(s²))``."""
        cov = (self.A * latent.scale**2) @ self.A.T
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
        activation: str = "tanh",
    ):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}"
            )
        self.data_dim, self.latent_dim = data_dim, latent_dim
        self.mlp = eqx.nn.MLP(latent_dim, data_dim, width, depth, ACTIVATIONS[activation], key=key)

    def __call__(self, z: Vector) -> Vector:
        return self.mlp(z)


class GaussianLaw(eqx.Module):
    """``N(mean, cov)`` on R^d with a log density (the affine generator's law)."""

    mean: Vector
    cov: Float[Array, "d d"]

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def log_prob(self, x: Vector) -> Scalar:
        chol = jnp.linalg.cholesky(self.cov)
        r = jax.scipy.linalg.solve_triangular(chol, x - self.mean, lower=True)
        log_det = jnp.sum(jnp.log(jnp.diag(chol)))
        return -0.5 * r @ r - log_det - 0.5 * self.dim * jnp.log(2 * jnp.pi)


# ----------------------------------------------------------------------------- drift models


class AbstractDriftModel(eqx.Module):
    """How the algorithm obtains ``ℓ̂`` each iteration: a state (e.g. a warm-started
    discriminator) updated from the data points and the generated points."""

    @abc.abstractmethod
    def init(self, generator, data: ParticleMeasure, fake: ParticleMeasure) -> PyTree:
        """The state before the first iteration."""

    @abc.abstractmethod
    def update(
        self, state: PyTree, generator, data: ParticleMeasure, fake: ParticleMeasure
    ) -> tuple[PyTree, AbstractDriftEstimator]:
        """New state and the estimator for the generated points ``fake``."""


class TrainedDiscriminator(AbstractDriftModel):
    """A :class:`Discriminator` trained by BCE: ``n_init_steps`` before the first
    iteration, then ``n_steps`` per iteration, warm-started (parameters and optimizer
    state carried over)."""

    discriminator: Discriminator
    lr: Scalar
    n_steps: int = eqx.field(static=True)
    n_init_steps: int = eqx.field(static=True)
    optimizer: str = eqx.field(static=True)

    def __init__(
        self,
        discriminator: Discriminator,
        lr: ScalarLike = 1e-2,
        n_steps: int = 5,
        n_init_steps: int = 200,
        optimizer: str = "adam",
    ):
        optimizer_by_name(optimizer, 1.0)
        if n_steps < 1 or n_init_steps < 0:
            raise ValueError(
                f"n_steps must be >= 1 and n_init_steps >= 0, got {n_steps} and {n_init_steps}"
            )
        self.discriminator, self.optimizer = discriminator, optimizer
        self.lr = positive("lr", lr)
        self.n_steps, self.n_init_steps = n_steps, n_init_steps

    def init(self, generator, data, fake):
        opt = optimizer_by_name(self.optimizer, self.lr)
        opt_state = opt.init(eqx.filter(self.discriminator, eqx.is_inexact_array))
        disc, opt_state, _ = fit_discriminator(
            self.discriminator, opt_state, opt, data, fake, self.n_init_steps
        )
        return disc, opt_state

    def update(self, state, generator, data, fake):
        opt = optimizer_by_name(self.optimizer, self.lr)
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
    """The optimal discriminator ``D* = ρ_d/(ρ_d + ρ_t)`` of an :class:`AffineGenerator`,
    ``ρ_t`` its exact Gaussian law for the latent law ``latent``; no state."""

    data: LogDensity
    latent: Normal

    def init(self, generator, data, fake):
        return None

    def update(self, state, generator, data, fake):
        return None, ExactDrift(self.data, generator.pushforward(self.latent))


# ----------------------------------------------------------------------------- algorithm


class GANState(eqx.Module):
    """The generator, its optimizer state and the drift model's state."""

    generator: PyTree
    opt_state: PyTree
    drift_state: PyTree


class GANAsODE(eqx.Module):
    """One configuration of the algorithm. ``eps`` (Euler step ``ε``) and ``lr`` (``λ``)
    are traced; ``K``, ``fit`` (``"gradient"`` or ``"lstsq"``), ``optimizer`` (``"sgd"``,
    ``"adam"``) and ``normalisation`` (``"v"``, ``"js"``) are static."""

    drift_model: AbstractDriftModel
    latent: Quadrature
    data: Quadrature
    eps: Scalar
    lr: Scalar
    K: int = eqx.field(static=True)
    fit: str = eqx.field(static=True)
    optimizer: str = eqx.field(static=True)
    normalisation: str = eqx.field(static=True)

    def __init__(
        self,
        drift_model: AbstractDriftModel,
        latent: Quadrature,
        data: Quadrature,
        *,
        eps: ScalarLike,
        lr: ScalarLike,
        K: int = 1,
        fit: str = "gradient",
        optimizer: str = "sgd",
        normalisation: str = "v",
    ):
        normalisation_factor(normalisation)
        optimizer_by_name(optimizer, 1.0)
        if fit not in FITS:
            raise ValueError(f"unknown fit {fit!r}; allowed: {', '.join(FITS)}")
        if not isinstance(K, int | np.integer) or K < 1:
            raise ValueError(
                f"K (generator steps per iteration) must be an integer >= 1, got {K!r}"
            )
        self.drift_model, self.latent, self.data = drift_model, latent, data
        self.eps = positive("eps", eps).astype(latent.nodes.dtype)
        self.lr = positive("lr", lr).astype(latent.nodes.dtype)
        self.K, self.fit, self.optimizer, self.normalisation = int(K), fit, optimizer, normalisation

    def _check(self, generator) -> None:
        out = jax.eval_shape(jax.vmap(generator), self.latent.nodes)
        if out.shape != (self.latent.size, self.data.dim):
            raise ValueError(
                f"dimension mismatch: the generator maps the latent nodes "
                f"{self.latent.nodes.shape} to {out.shape}, the data live in R^{self.data.dim}"
            )
        needs_affine = self.fit == "lstsq" or isinstance(self.drift_model, ExactDiscriminator)
        if needs_affine and not isinstance(generator, AffineGenerator):
            raise ValueError(
                "fit='lstsq' and the exact discriminator need an AffineGenerator, got "
                f"{type(generator).__name__}"
            )

    def _measures(self, generator):
        fake = jax.vmap(generator)(self.latent.nodes)
        return (
            fake,
            ParticleMeasure(fake, self.latent.weights),
            ParticleMeasure(self.data.nodes, self.data.weights),
        )

    def init(self, generator) -> GANState:
        """The state before the first iteration (pre-trains a trained discriminator)."""
        self._check(generator)
        _, fake, data = self._measures(generator)
        opt = optimizer_by_name(self.optimizer, self.lr)
        return GANState(
            generator,
            opt.init(eqx.filter(generator, eqx.is_inexact_array)),
            self.drift_model.init(generator, data, fake),
        )

    def mse(self, generator, targets: Float[Array, "m d"]) -> Scalar:
        """``½ Σ w_i |G(z_i) − ζ_i|²`` (weights normalised)."""
        w = self.latent.weights / jnp.sum(self.latent.weights)
        return 0.5 * w @ jnp.sum((jax.vmap(generator)(self.latent.nodes) - targets) ** 2, axis=1)

    def targets(self, state: GANState) -> tuple[PyTree, AbstractDriftEstimator, Array, Array]:
        """Steps 1–2: new drift state, the estimator, generated points and Euler targets."""
        y, fake, data = self._measures(state.generator)
        drift_state, estimator = self.drift_model.update(
            state.drift_state, state.generator, data, fake
        )
        v = normalisation_factor(self.normalisation) * estimator.drift(y, fake)
        return drift_state, estimator, y, y + self.eps * v

    def _lstsq(self, targets: Float[Array, "m d"]) -> AffineGenerator:
        z, w = self.latent.nodes, self.latent.weights / jnp.sum(self.latent.weights)
        design = jnp.concatenate([z, jnp.ones_like(z[:, :1])], axis=1) * jnp.sqrt(w)[:, None]
        beta = jnp.linalg.lstsq(design, targets * jnp.sqrt(w)[:, None])[0]
        return AffineGenerator(beta[:-1].T, beta[-1])

    def fit_generator(self, state: GANState, targets: Float[Array, "m d"]):
        """Step 3: the fitted generator and optimizer state."""
        if self.fit == "lstsq":
            return self._lstsq(targets), state.opt_state
        opt = optimizer_by_name(self.optimizer, self.lr)
        params, static = eqx.partition(state.generator, eqx.is_inexact_array)

        def step(carry, _):
            p, opt_state = carry
            grads = jax.grad(lambda q: self.mse(eqx.combine(q, static), targets))(p)
            updates, opt_state = opt.update(grads, opt_state, p)
            return (eqx.apply_updates(p, updates), opt_state), None

        (params, opt_state), _ = jax.lax.scan(step, (params, state.opt_state), None, self.K)
        return eqx.combine(params, static), opt_state

    def step(self, state: GANState) -> tuple[GANState, dict[str, Array]]:
        """One iteration and its diagnostics: the estimator's ``js`` and the sliced W1
        ``data_distance`` before the step, ``mse_before``/``mse_after`` fitting,
        ``displacement_ratio = Σw ⟨realised, intended⟩ / Σw |intended|²`` and the relative
        ``displacement_error = |realised − intended| / |intended|`` (weighted rms)."""
        drift_state, estimator, y, targets = self.targets(state)
        generator, opt_state = self.fit_generator(state, targets)
        new_y = jax.vmap(generator)(self.latent.nodes)
        w = self.latent.weights / jnp.sum(self.latent.weights)
        intended, realised = targets - y, new_y - y
        norm2 = w @ jnp.sum(intended**2, axis=1)
        safe = jnp.where(norm2 > 0, norm2, 1.0)
        _, fake, data = self._measures(state.generator)
        diagnostics = {
            "js": js_estimate(estimator, fake, data),
            "data_distance": sliced_wasserstein1(y, w, data.positions, data.weights),
            "mse_before": self.mse(state.generator, targets),
            "mse_after": self.mse(generator, targets),
            "displacement_ratio": jnp.where(
                norm2 > 0, w @ jnp.sum(realised * intended, axis=1) / safe, 1.0
            ),
            "displacement_error": jnp.sqrt(
                jnp.where(norm2 > 0, w @ jnp.sum((realised - intended) ** 2, axis=1) / safe, 0.0)
            ),
        }
        return GANState(generator, opt_state, drift_state), diagnostics


class GANTrajectory(eqx.Module):
    """``diagnostics``: name → ``(n_iter, ...)`` (plus ``record`` under ``"record"``);
    generated points ``snapshots (S, m, d)`` after iterations ``snapshot_iters (S,)``
    (0 = initial); the ``final`` state."""

    diagnostics: dict[str, Array]
    snapshot_iters: Int[Array, " S"]
    snapshots: Float[Array, "S m d"]
    final: GANState


def run_gan_as_ode(
    algorithm: GANAsODE,
    generator,
    n_iter: int,
    *,
    snapshot_every: int | None = None,
    record: Callable[[PyTree], PyTree] | None = None,
) -> GANTrajectory:
    """Run ``n_iter`` iterations from ``generator``; snapshots of the generated points every
    ``snapshot_every`` iterations (default: first and last only; must divide ``n_iter``);
    ``record(generator)`` is stored every iteration (e.g. the affine parameters)."""
    every = n_iter if snapshot_every is None else snapshot_every
    if n_iter < 1 or every < 1 or n_iter % every:
        raise ValueError(
            f"need n_iter >= 1 and snapshot_every dividing it, got n_iter={n_iter}, "
            f"snapshot_every={snapshot_every}"
        )
    return _run(algorithm, generator, n_iter // every, every, record)


@eqx.filter_jit
def _run(algorithm: GANAsODE, generator, n_outer: int, every: int, record):
    state = algorithm.init(generator)
    dynamic, static = eqx.partition(state, eqx.is_array)

    def inner(dyn, _):
        state = eqx.combine(dyn, static)
        new_state, diag = algorithm.step(state)
        if record is not None:
            diag = diag | {"record": record(state.generator)}
        return eqx.filter(new_state, eqx.is_array), diag

    def outer(dyn, _):
        dyn, diag = jax.lax.scan(inner, dyn, None, every)
        generator = eqx.combine(dyn, static).generator
        return dyn, (diag, jax.vmap(generator)(algorithm.latent.nodes))

    first = jax.vmap(generator)(algorithm.latent.nodes)
    dynamic, (diag, snaps) = jax.lax.scan(outer, dynamic, None, n_outer)
    diag = jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), diag)
    return GANTrajectory(
        diagnostics=diag,
        snapshot_iters=jnp.arange(n_outer + 1) * every,
        snapshots=jnp.concatenate([first[None], snaps]),
        final=eqx.combine(dynamic, static),
    )
