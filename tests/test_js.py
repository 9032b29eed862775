"""Study J drift estimators: sanity values of DESIGN §2.2, the kernel estimate as a Gaussian
convolution, the trained discriminator, the MSE/GAN-loss identity of §2.3, bad input."""

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gandyn as gd
from gandyn.experiments import ConfigError, run_experiment

DATA = gd.GaussianMixture([0.0])  # ρ_d = N(0, 1)
RHO0 = gd.GaussianMixture([1.0])  # ρ_0 = N(1, 1)


def points(law, size=60):
    rule = law.quadrature(size)
    return gd.ParticleMeasure(rule.nodes, rule.weights)


def test_exact_drift_reproduces_the_sanity_values():
    est = gd.ExactDrift(DATA, RHO0)
    rho0 = points(RHO0)
    ys = jnp.linspace(-3, 4, 9)
    logits = jax.vmap(lambda y: est.logit(y[None], rho0))(ys)
    np.testing.assert_allclose(logits, (1 - 2 * ys) / 2, atol=1e-13)
    v0 = est.drift(jnp.zeros((1, 1)), rho0)[0, 0]
    np.testing.assert_allclose(v0, -1 / (1 + math.exp(-0.5)), rtol=1e-13)
    assert abs(v0 - -0.622459) < 5e-7
    js = gd.js_estimate(est, rho0, points(DATA))
    assert abs(js - 0.111421) < 5e-7
    mean_velocity = rho0.weights @ est.drift(rho0.positions, rho0)[:, 0]
    assert abs(mean_velocity - -0.397973) < 5e-7
    # χ² = E_ρ0[ρ0/ρ_d] − 1 = E_ρ0[exp(−ℓ)] − 1 = e − 1.
    chi2 = rho0.weights @ jnp.exp(-jax.vmap(lambda y: est.logit(y, rho0))(rho0.positions)) - 1
    np.testing.assert_allclose(chi2, math.e - 1, rtol=1e-10)


def test_js_estimate_vanishes_at_the_data_and_is_symmetric():
    same = gd.ExactDrift(DATA, DATA)
    assert abs(gd.js_estimate(same, points(DATA), points(DATA))) < 1e-15
    forward = gd.js_estimate(gd.ExactDrift(DATA, RHO0), points(RHO0), points(DATA))
    backward = gd.js_estimate(gd.ExactDrift(RHO0, DATA), points(DATA), points(RHO0))
    np.testing.assert_allclose(forward, backward, rtol=1e-12)


@pytest.mark.parametrize("h", [0.5, 0.9])
def test_kde_of_a_gaussian_quadrature_is_the_gaussian_convolution(h):
    """Σ w_k K_h(y − x_k) over Gauss–Hermite nodes of N(1,1) is ∫ρ K_h = N(1, 1 + h²)."""
    rho0 = points(RHO0, 80)
    kde = gd.KDEDrift(DATA, h, "fixed")
    smoothed = gd.GaussianMixture([1.0], stds=math.sqrt(1 + h**2))
    ys = jnp.linspace(-2, 4, 7)[:, None]
    log_kde = jax.vmap(lambda y: kde.log_density(y, rho0))(ys)
    np.testing.assert_allclose(log_kde, jax.vmap(smoothed.log_prob)(ys), atol=1e-12)
    np.testing.assert_allclose(
        kde.drift(ys, rho0), gd.ExactDrift(DATA, smoothed).drift(ys, rho0), atol=1e-12
    )


def test_kde_bandwidth_rules_scale_with_spread_and_sample_size():
    x = jax.random.normal(jax.random.key(0), (50, 2))
    for rule in ("scott", "silverman"):
        kde = gd.KDEDrift(gd.GaussianMixture(np.zeros((1, 2))), 1.0, rule)
        h = kde.width(gd.ParticleMeasure(x))
        np.testing.assert_allclose(kde.width(gd.ParticleMeasure(3 * x + 1)), 3 * h, rtol=1e-12)
        doubled = gd.ParticleMeasure(jnp.concatenate([x, x]))  # same law, n → 2n
        np.testing.assert_allclose(kde.width(doubled), h * 2 ** (-1 / 6), rtol=1e-12)
    fixed = gd.KDEDrift(gd.GaussianMixture(np.zeros((1, 2))), 0.4, "fixed")
    assert fixed.width(gd.ParticleMeasure(x)) == 0.4


def test_trained_discriminator_recovers_the_logit_of_two_gaussians():
    """BCE between N(0,1) and N(1,1) (Gauss–Hermite populations) is maximised by
    ℓ(y) = (1 − 2y)/2; at the optimum the objective is 2 JS − log 4."""
    disc = gd.Discriminator(1, 16, 1, key=jax.random.key(0))
    opt = optax.adam(1e-2)
    real, fake = points(DATA, 40), points(RHO0, 40)
    state = opt.init(eqx.filter(disc, eqx.is_inexact_array))
    disc, state, history = gd.fit_discriminator(disc, state, opt, real, fake, 3000)
    ys = jnp.linspace(-1.5, 2.5, 41)
    error = jax.vmap(disc)(ys[:, None]) - (1 - 2 * ys) / 2
    assert np.abs(error).max() < 0.03  # on the bulk of both laws (|y − ½| ≤ 2)
    js = 0.1114214821847363
    assert abs(history[-1] - (2 * js - math.log(4))) < 1e-4
    assert abs(gd.js_estimate(gd.NeuralDrift(disc), fake, real) - js) < 1e-4
    # Warm start: a continuation starts exactly at the returned discriminator.
    _, _, more = gd.fit_discriminator(disc, state, opt, real, fake, 2)
    np.testing.assert_allclose(more[0], gd.discriminator_objective(disc, real, fake), rtol=1e-14)


@pytest.mark.parametrize(("seed", "normalisation"), [(0, "v"), (1, "v"), (2, "js")])
def test_mse_gradient_equals_eps_times_gan_generator_gradient(seed, normalisation):
    """∇_θ ½Σw|G_θ(z) − ζ|² = cε ∇_θ Σw log(1 − D(G_θ(z))) with stop-gradient targets
    ζ = y + cε v̂(y); K = 1 SGD with rate λ is the GAN step with η = λε."""
    k_gen, k_disc, k_z = jax.random.split(jax.random.key(seed), 3)
    generator = gd.MLPGenerator(3, 2, 12, 2, key=k_gen)
    disc = gd.Discriminator(2, 10, 2, key=k_disc)
    latent = gd.Quadrature(jax.random.normal(k_z, (17, 3)), jnp.linspace(1.0, 2.0, 17) / 25.5)
    data = gd.GaussianMixture(np.array([[1.0, 0.0], [-1.0, 0.5]]), None, 0.4).quadrature(3)
    model = gd.TrainedDiscriminator(disc, 1e-2, n_steps=3, n_init_steps=0)
    eps, lr = 0.37, 0.21
    algorithm = gd.GANAsODE(model, latent, data, eps=eps, lr=lr, K=1, normalisation=normalisation)
    state = algorithm.init(generator)
    _, estimator, _, targets = algorithm.targets(state)
    c = {"v": 1.0, "js": 0.5}[normalisation]
    params, static = eqx.partition(generator, eqx.is_inexact_array)

    def gan_loss(p):
        y = jax.vmap(eqx.combine(p, static))(latent.nodes)
        logits = jax.vmap(lambda x: estimator.logit(x, gd.ParticleMeasure(y)))(y)
        return latent.weights @ jax.nn.log_sigmoid(-logits)

    mse_grad = jax.grad(lambda p: algorithm.mse(eqx.combine(p, static), targets))(params)
    gan_grad = jax.grad(gan_loss)(params)
    for a, b in zip(
        jax.tree_util.tree_leaves(mse_grad), jax.tree_util.tree_leaves(gan_grad), strict=True
    ):
        np.testing.assert_allclose(a, c * eps * b, rtol=1e-11, atol=1e-15)
    fitted, _ = algorithm.fit_generator(state, targets)
    stepped = jax.tree_util.tree_map(lambda p, g: p - lr * eps * c * g, params, gan_grad)
    for a, b in zip(
        jax.tree_util.tree_leaves(eqx.filter(fitted, eqx.is_inexact_array)),
        jax.tree_util.tree_leaves(stepped),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_grid_density_interpolates_log_density_in_space_and_time():
    low, high, cells = -6.0, 7.0, 520
    centres = low + (np.arange(cells) + 0.5) * (high - low) / cells
    x = jnp.asarray(centres)[:, None]
    dens = np.stack([np.exp(jax.vmap(law.log_prob)(x)) for law in (DATA, RHO0)])
    grid = gd.GridDensity(low, high, dens, [0.0, 2.0])
    # At cell centres and t = 0 it is exact; between centres the error is O(Δx²).
    np.testing.assert_allclose(
        grid.log_prob(jnp.array([centres[200]]), 0.0),
        DATA.log_prob(jnp.array([centres[200]])),
        rtol=1e-13,
    )
    y = jnp.array([0.3137])
    assert abs(grid.log_prob(y, 0.0) - DATA.log_prob(y)) < ((high - low) / cells) ** 2
    # Linear in time between saves: at t = 1 the average of the two logs.
    mid = 0.5 * (
        DATA.log_prob(jnp.array([centres[300]])) + RHO0.log_prob(jnp.array([centres[300]]))
    )
    np.testing.assert_allclose(grid.log_prob(jnp.array([centres[300]]), 1.0), mid, rtol=1e-13)


def test_bad_input_raises_clear_errors():
    rho1 = points(RHO0, 5)
    with pytest.raises(ValueError, match="bandwidth must be finite and > 0"):
        gd.KDEDrift(DATA, 0.0)
    with pytest.raises(ValueError, match="bandwidth must be finite and > 0"):
        gd.KDEDrift(DATA, -1.0, "fixed")
    with pytest.raises(ValueError, match="unknown bandwidth rule"):
        gd.KDEDrift(DATA, 1.0, "normal")
    with pytest.raises(ValueError, match="dimension mismatch"):
        gd.ExactDrift(DATA, gd.GaussianMixture(np.zeros((1, 2))))
    with pytest.raises(ValueError, match="dimension mismatch"):
        gd.ExactDrift(DATA, RHO0).drift(jnp.zeros((3, 2)), rho1)
    with pytest.raises(ValueError, match="dimension mismatch"):
        gd.KDEDrift(gd.GaussianMixture(np.zeros((1, 2)))).drift(jnp.zeros((3, 1)), rho1)
    disc = gd.Discriminator(2, 4, 1, key=jax.random.key(0))
    opt = optax.sgd(0.1)
    with pytest.raises(ValueError, match="dimension mismatch"):
        gd.fit_discriminator(
            disc, opt.init(eqx.filter(disc, eqx.is_inexact_array)), opt, rho1, rho1, 2
        )
    latent, data = gd.Normal(0.0, 1.0).quadrature(4), DATA.quadrature(4)
    model = gd.ExactDiscriminator(DATA, gd.Normal(0.0, 1.0))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"eps": 0.0, "lr": 1.0}, "eps must be finite and > 0"),
        ({"eps": -0.1, "lr": 1.0}, "eps must be finite and > 0"),
        ({"eps": 0.1, "lr": 0.0}, "lr must be finite and > 0"),
        ({"eps": 0.1, "lr": 1.0, "K": 0}, "K .* must be an integer >= 1"),
        ({"eps": 0.1, "lr": 1.0, "fit": "newton"}, "unknown fit"),
        ({"eps": 0.1, "lr": 1.0, "normalisation": "w"}, "unknown normalisation"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            gd.GANAsODE(model, latent, data, **kwargs)
    with pytest.raises(TypeError, match="optimizer must be an instance of GradientTransformation"):
        gd.GANAsODE(model, latent, data, eps=0.1, lr=1.0, optimizer="lbfgs")
    disc = gd.Discriminator(1, 4, 1, key=jax.random.key(0))
    with pytest.raises(TypeError, match="optimizer must be an instance of GradientTransformation"):
        gd.TrainedDiscriminator(disc, optimizer="adam")
    algorithm = gd.GANAsODE(model, latent, data, eps=0.1, lr=1.0)
    with pytest.raises(ValueError, match="dimension mismatch"):
        algorithm.init(gd.AffineGenerator(np.ones((2, 1)), np.zeros(2)))
    with pytest.raises(ValueError, match="snapshot_every dividing"):
        gd.run_gan_as_ode(algorithm, gd.AffineGenerator([[1.0]], [0.0]), 10, snapshot_every=3)
    with pytest.raises(ValueError, match="need an AffineGenerator"):
        algorithm.init(gd.MLPGenerator(1, 1, 4, 1, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="particles must have shape"):
        problem = gd.JSFlowProblem(gd.ExactDrift(DATA, RHO0), rho1, rho1.weights)
        problem.initial_state(jnp.zeros((5, 2)))
    with pytest.raises(ConfigError, match="eta_min"):
        run_experiment("mse-divergence", eta_min=3.0, eta_max=2.0)
    with pytest.raises(ConfigError, match="data_weights"):
        run_experiment("js-flow-particles", data_means=[0.0, 1.0, 2.0])
    with pytest.raises(ConfigError, match="data_means"):
        run_experiment("js-flow-particles", dim=2, data_means=[0.0, 1.0, 2.0])
    with pytest.raises(ConfigError, match="snapshot_every"):
        run_experiment("gan-as-ode", n_iter=10, snapshot_every=3)
    with pytest.raises(ConfigError, match="K_list"):
        run_experiment("gan-as-ode", K_list=[0])
    with pytest.raises(ConfigError, match="eps"):
        run_experiment("mse-divergence", eps=0.0)
