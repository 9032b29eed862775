"""Velocity fields: T1 closed forms and finite differences of the first variation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gandyn as gd


def t1_game(lam=1.7):
    data = gd.GaussianMixture([[-1.0], [2.0]], [0.5, 0.5], 0.3).quadrature(8)
    latent = gd.Normal(0.0, 1.0).quadrature(8)
    return gd.MeanFieldGame(gd.ShiftUnit(1), gd.LinearCritic(1), data, latent, lam=lam)


def test_t1_velocities_equal_the_closed_form_at_particles_and_points():
    game = t1_game()
    key1, key2 = jax.random.split(jax.random.key(0))
    gen = gd.ParticleMeasure(jax.random.normal(key1, (7, 1)) + 0.8)
    critic = gd.ParticleMeasure(0.3 * jax.random.normal(key2, (5, 1)), jnp.arange(1.0, 6.0) / 15)
    y = float(gen.mean()[0] - 0.5)  # data mean is (−1 + 2)/2
    omega_bar = float(critic.mean()[0])
    points = jnp.linspace(-3, 3, 4)[:, None]
    for where in (None, points):
        v_gen = gd.generator_velocity(game, gen, critic, where)
        v_critic = gd.critic_velocity(game, gen, critic, where)
        np.testing.assert_allclose(v_gen, omega_bar, rtol=1e-12)
        np.testing.assert_allclose(v_critic, -1.7 * y, rtol=1e-12)


def neuron_setup(loss):
    data = gd.GaussianMixture([[-1.0, 0.5], [1.0, 0.0]], None, 0.5).quadrature(4)
    latent = gd.Normal([0.0, 0.0], 1.0).quadrature(4)
    game = gd.MeanFieldGame(
        gd.NeuronUnit(2, 2, jnp.tanh), gd.NeuronCritic(2, jax.nn.sigmoid), data, latent, 0.7, loss
    )
    k1, k2 = jax.random.split(jax.random.key(1))
    gen = gd.ParticleMeasure(jax.random.normal(k1, (6, 5)), jnp.linspace(0.5, 1.5, 6) / 6)
    critic = gd.ParticleMeasure(jax.random.normal(k2, (5, 4)))
    return game, gen, critic


def fd_first_variation_gradient(functional, measure, points, eps=1e-3, h=1e-3):
    """Central differences in the probe weight (first variation), then in its position;
    ``points (P, p)`` → ``(P, p)``, all evaluations in one compiled ``vmap``."""

    def first_variation(x):
        plus = functional(measure.append(x[None], jnp.array([eps])))
        minus = functional(measure.append(x[None], jnp.array([-eps])))
        return (plus - minus) / (2 * eps)

    steps = h * jnp.eye(points.shape[1])
    shifted = points[:, None, None, :] + jnp.stack([steps, -steps])[None]  # (P, 2, p, p)
    values = jax.jit(jax.vmap(first_variation))(shifted.reshape(-1, points.shape[1]))
    values = values.reshape(points.shape[0], 2, points.shape[1])  # (P, ±, direction)
    return (values[:, 0] - values[:, 1]) / (2 * h)


@pytest.mark.parametrize("loss", [gd.Wasserstein(), gd.Minimax(), gd.NonSaturating()], ids=repr)
def test_neuron_velocities_match_finite_differences_at_free_points(loss):
    game, gen, critic = neuron_setup(loss)
    gen_points = jax.random.normal(jax.random.key(5), (3, 5))
    critic_points = jax.random.normal(jax.random.key(6), (3, 4))
    v_gen = gd.generator_velocity(game, gen, critic, gen_points)
    v_critic = gd.critic_velocity(game, gen, critic, critic_points)
    fd_gen = -fd_first_variation_gradient(
        lambda m: game.generator_objective(m, critic), gen, gen_points
    )
    fd_critic = game.lam * fd_first_variation_gradient(
        lambda m: game.critic_objective(gen, m), critic, critic_points
    )
    np.testing.assert_allclose(v_gen, fd_gen, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(v_critic, fd_critic, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("loss", [gd.Wasserstein(), gd.NonSaturating()], ids=repr)
def test_particle_shortcut_equals_probe_evaluation_at_the_particles(loss):
    game, gen, critic = neuron_setup(loss)
    np.testing.assert_allclose(
        gd.generator_velocity(game, gen, critic),
        gd.generator_velocity(game, gen, critic, gen.positions),
        rtol=1e-10,
        atol=1e-14,
    )
    np.testing.assert_allclose(
        gd.critic_velocity(game, gen, critic),
        gd.critic_velocity(game, gen, critic, critic.positions),
        rtol=1e-10,
        atol=1e-14,
    )


def test_uniform_weights_give_the_mean_field_scaling_n_times_the_gradient():
    game, _, critic = neuron_setup(gd.Wasserstein())
    gen = gd.ParticleMeasure(jax.random.normal(jax.random.key(2), (6, 5)))
    grad = jax.grad(lambda x: game.value(gen.with_positions(x), critic))(gen.positions)
    np.testing.assert_allclose(gd.generator_velocity(game, gen, critic), -6 * grad, rtol=1e-12)


def test_game_refuses_mismatched_dimensions_and_unknown_loss():
    data = gd.Normal([0.0, 0.0], 1.0).quadrature(3)
    latent = gd.Normal(0.0, 1.0).quadrature(3)
    with pytest.raises(ValueError, match="dimension mismatch"):
        gd.MeanFieldGame(gd.ShiftUnit(1), gd.LinearCritic(1), data, latent)
    with pytest.raises(TypeError, match="loss must be an instance of AbstractLoss"):
        gd.MeanFieldGame(gd.ShiftUnit(1), gd.LinearCritic(1), latent, latent, loss="hinge")
    with pytest.raises(TypeError, match="activation must be a function"):
        gd.NeuronUnit(1, 1, "swish")
