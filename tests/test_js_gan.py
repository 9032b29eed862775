"""GAN-as-ODE: the affine GAN's linearisation (autodiff Jacobian = closed form), the
stability threshold and 2-cycle of ``mse-divergence``, exact least squares, the K-step fit."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gandyn as gd
from gandyn.experiments import gan_as_ode, run_experiment

DATA = gd.GaussianMixture([0.0])


def affine_algorithm(scale, eps, lr, K=1, fit="gradient", normalisation="v"):
    latent = gd.Normal(0.0, scale)
    return gd.GANAsODE(
        gd.ExactDiscriminator(DATA, latent),
        latent.quadrature(40),
        DATA.quadrature(40),
        eps=eps,
        lr=lr,
        K=K,
        fit=fit,
        normalisation=normalisation,
    )


def one_step(algorithm, a, b):
    state = algorithm.step(algorithm.init(gd.AffineGenerator([[a]], [b])))[0]
    return jnp.stack([state.generator.A[0, 0], state.generator.b[0]])


@pytest.mark.parametrize(
    ("scale", "eps", "lr", "K", "normalisation"),
    [(1.0, 0.4, 0.7, 1, "v"), (0.5, 0.3, 1.3, 3, "v"), (1.4, 0.25, 0.4, 2, "js")],
)
def test_autodiff_jacobian_at_the_fixed_point_is_the_derived_linearisation(
    scale, eps, lr, K, normalisation
):
    """μ_a = 1 − cε[1 − (1 − λs²)^K], μ_b = 1 − (cε/2)[1 − (1 − λ)^K] (module docstring)."""
    algorithm = affine_algorithm(scale, eps, lr, K, normalisation=normalisation)
    fixed = jnp.array([1 / scale, 0.0])
    np.testing.assert_allclose(one_step(algorithm, *fixed), fixed, atol=1e-14)
    jac = eqx.filter_jit(jax.jacfwd(lambda p: one_step(algorithm, p[0], p[1])))(fixed)
    c = {"v": 1.0, "js": 0.5}[normalisation]
    mu_a, mu_b = gd.affine_gan_eigenvalues(lr * eps, eps, scale, K, c)
    np.testing.assert_allclose(jac, np.diag([mu_a, mu_b]), atol=1e-12)


def test_linear_threshold_of_the_gan_step_is_min_2_over_s2_and_4():
    for scale in (0.5, 0.8, 1.0, 1.3):
        for c in (1.0, 0.5):
            expected = min(2 / scale**2, 4) / c
            np.testing.assert_allclose(
                gd.affine_gan_threshold(0.25, scale, 1, c), expected, rtol=1e-9
            )


def test_many_gradient_steps_reach_the_exact_least_squares_fit():
    """K steps of rate λ contract the MSE error by (1 − λs²)^K and (1 − λ)^K: with K = 400
    and λ = 0.5, s = 1.2 the K-step fit equals the least-squares fit to round-off."""
    gradient = affine_algorithm(1.2, 0.3, 0.5, K=400)
    lstsq = affine_algorithm(1.2, 0.3, 0.5, fit="lstsq")
    for a, b in ((0.6, 0.4), (1.3, -0.8)):
        np.testing.assert_allclose(one_step(gradient, a, b), one_step(lstsq, a, b), atol=1e-12)


@pytest.fixture(scope="module")
def mse_result():
    return run_experiment(
        "mse-divergence", n_eta=13, n_iter=2000, latent_scales=[0.8, 1.25], refine=10
    )


def test_mse_divergence_threshold_agrees_with_the_linearisation(mse_result):
    """The contraction test cannot see decay slower than |μ|^{N/2} ≥ ½ (μ = −1 + cδs²), so
    the estimate lies in [η* − 2 ln 2/(N s²) − resolution, η* + resolution]."""
    s = mse_result.summary
    n_iter = mse_result.config["n_iter"]
    assert s["eta_threshold_linear"] == pytest.approx(2.0, rel=1e-9)
    assert s["eta_threshold_jacobian"] == pytest.approx(2.0, rel=1e-9)
    slack = 2 * math.log(2) / n_iter
    assert 2.0 - slack - s["eta_threshold_resolution"] <= s["eta_threshold"] <= 2.0
    # Per scale: bracket [θ/2, 3θ/2] in refine + 1 intervals, refined twice the same way.
    points = mse_result.config["refine"] + 1
    for found, theory, scale in zip(
        s["eta_threshold_by_scale"],
        s["eta_threshold_linear_by_scale"],
        s["latent_scales"],
        strict=True,
    ):
        resolution = theory / points**3
        assert theory - slack / min(scale**2, 0.5) - resolution <= found <= theory + resolution


def test_mse_divergence_two_cycle_and_least_squares(mse_result):
    s = mse_result.summary
    assert s["cycle_is_period_two"] and s["cycle_closure"] < 1e-10 and s["cycle_b_max"] < 1e-12
    low, high = s["cycle_values"]
    assert low < 1.0 < high
    # The two values are swapped by one iteration at the cycle's η.
    algorithm = affine_algorithm(1.0, 0.25, s["cycle_eta"] / 0.25)
    np.testing.assert_allclose(one_step(algorithm, low, 0.0)[0], high, rtol=1e-9)
    np.testing.assert_allclose(one_step(algorithm, high, 0.0)[0], low, rtol=1e-9)
    # Exact least squares converges on every η and scale, at the rate max|1 − ε|, |1 − ε/2|.
    assert s["ls_converges"]
    np.testing.assert_allclose(s["ls_rate_measured"], s["ls_rate_linear"], rtol=1e-5)
    classes = mse_result.trajectory["classes"]
    etas = mse_result.trajectory["etas"]
    assert np.all(classes[etas < 1.95] == 0) and np.all(classes[(etas > 2.05) & (etas < 2.5)] == 1)


@pytest.mark.slow
def test_gan_as_ode_experiment_follows_the_mse_descent():
    result = run_experiment(
        "gan-as-ode",
        n_iter=20,
        snapshot_every=10,
        K_list=[1, 3],
        latent_quadrature=6,
        quadrature=3,
        gen_width=8,
        disc_width=8,
        lr=0.01,
        drift="neural",
        disc_pretrain=20,
    )
    s = result.summary
    assert s["status"] == "ok"
    for K in (1, 3):
        # Small-λ gradient steps on a smooth MSE decrease it; the K = 1 step realises
        # λ × (generator kernel) of the intended displacement, so the ratio is small.
        assert s[f"K{K}_mse_after_over_before"] < 1
        assert 0 < s[f"K{K}_displacement_ratio_mean"] < 1
    assert s["K3_displacement_ratio_mean"] > s["K1_displacement_ratio_mean"]
    assert result.trajectory["K3_snapshots"].shape == (3, 36, 2)


def test_gan_as_ode_reports_the_iteration_where_a_run_went_nonfinite(monkeypatch):
    original = gan_as_ode._gan_run

    def breaks_at_iteration_7(algorithm, generator, n_iter, every):
        run = original(algorithm, generator, n_iter, every)
        if algorithm.K == 2:  # from iteration 7 (0-based 6) on, as if the fit blew up
            run["diag_mse_after"] = np.where(np.arange(n_iter) >= 6, np.nan, run["diag_mse_after"])
            run["snapshots"] = np.where(
                np.arange(len(run["snapshots"]))[:, None, None] > 0, np.inf, run["snapshots"]
            )
        return run

    monkeypatch.setattr(gan_as_ode, "_gan_run", breaks_at_iteration_7)
    config = dict(K_list=[1, 2], n_iter=10, snapshot_every=5, gen_width=8, latent_quadrature=4)
    result = run_experiment("gan-as-ode", quadrature=2, eps=0.05, **config)
    assert result.status == "nonfinite" and result.summary["status"] == "nonfinite"
    assert result.message == "generated points went non-finite: K = 2 after iteration 7 (t = 0.35)"
    assert np.isfinite(result.trajectory["K1_snapshots"]).all()
