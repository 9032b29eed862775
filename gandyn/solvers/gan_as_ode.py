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
``lax.scan``; ``ε`` and ``λ`` are traced (sweep them with ``vmap``). The generators are in
:mod:`gandyn.networks`, the drift models beside their estimators in :mod:`gandyn.games.js`.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._checks import positive, strategy
from .._optax import GRADIENT, descent
from .._types import Array, Float, Int, PyTree, Scalar, ScalarLike
from ..diagnostics import sliced_wasserstein1
from ..distributions import Quadrature
from ..games.js import (
    AbstractDriftEstimator,
    AbstractDriftModel,
    ExactDiscriminator,
    js_estimate,
    normalisation_factor,
)
from ..measure import ParticleMeasure
from ..networks import AffineGenerator

FITS = ("gradient", "lstsq")


class GANState(eqx.Module):
    """The generator, its optimizer state and the drift model's state."""

    generator: PyTree
    opt_state: PyTree
    drift_state: PyTree


class GANAsODE(eqx.Module):
    """One configuration of the algorithm. ``eps`` (Euler step ``ε``) and ``lr`` (``λ``)
    are traced; ``K``, ``fit`` (``"gradient"`` or ``"lstsq"``) and ``normalisation``
    (``"v"``, ``"js"``) are static. ``optimizer`` fits the generator: an optax transformation
    without its step (default: the gradient itself, i.e. sgd), the step ``lr`` appended."""

    drift_model: AbstractDriftModel
    latent: Quadrature
    data: Quadrature
    eps: Scalar
    lr: Scalar
    optimizer: optax.GradientTransformation
    K: int = eqx.field(static=True)
    fit: str = eqx.field(static=True)
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
        optimizer: optax.GradientTransformation = GRADIENT,
        normalisation: str = "v",
    ):
        normalisation_factor(normalisation)
        if fit not in FITS:
            raise ValueError(f"unknown fit {fit!r}; allowed: {', '.join(FITS)}")
        if not isinstance(K, int | np.integer) or K < 1:
            raise ValueError(
                f"K (generator steps per iteration) must be an integer >= 1, got {K!r}"
            )
        self.drift_model, self.latent, self.data = drift_model, latent, data
        self.eps = positive("eps", eps).astype(latent.nodes.dtype)
        self.lr = positive("lr", lr).astype(latent.nodes.dtype)
        self.optimizer = strategy("optimizer", optimizer, optax.GradientTransformation)
        self.K, self.fit, self.normalisation = int(K), fit, normalisation

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
        opt = descent(self.optimizer, self.lr)
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
        v = estimator.velocity(y, fake, normalisation=self.normalisation)
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
        opt = descent(self.optimizer, self.lr)
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
