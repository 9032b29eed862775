"""Claims nothing else checks (issue 13, item 9): exact and sliced W1 against scipy and closed
forms; ``AffineUnit`` and the relu / softplus / identity / sigmoid activations against closed
forms, and both players' velocities against central differences of ``F`` (DESIGN §1.2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import wasserstein_distance

import gandyn as gd
from gandyn.diagnostics import sliced_wasserstein1, wasserstein1_1d
from gandyn.experiments.choices import ACTIVATIONS

# ----------------------------------------------------------------------------- W1


def weighted_cloud(seed, n, dim=None, ties=False):
    """``n`` points (``(n,)`` or ``(n, dim)``) and positive unnormalised weights."""
    rng = np.random.default_rng(seed)
    shape = (n,) if dim is None else (n, dim)
    points = rng.normal(size=shape) * rng.uniform(0.5, 2.0) + rng.normal()
    if ties:  # repeated atoms, shared with nothing else
        points[: n // 2] = np.round(points[: n // 2], 1)
    return points, rng.uniform(0.1, 3.0, size=n)


@pytest.mark.parametrize(("seed", "a", "b"), [(0, 1, 1), (1, 7, 3), (2, 40, 55), (3, 200, 17)])
@pytest.mark.parametrize("ties", [False, True])
def test_w1_1d_equals_scipy_on_weighted_particles(seed, a, b, ties):
    x, wx = weighted_cloud(seed, a, ties=ties)
    y, wy = weighted_cloud(seed + 100, b, ties=ties)
    got = float(wasserstein1_1d(*map(jnp.asarray, (x, wx, y, wy))))
    want = wasserstein_distance(x, y, u_weights=wx, v_weights=wy)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_w1_1d_between_particles_and_a_quadrature_rule_equals_scipy():
    rule = gd.GaussianMixture([[-1.0], [2.0]], [0.3, 0.7], 0.4).quadrature(12)
    x, wx = weighted_cloud(4, 31)
    nodes, weights = np.asarray(rule.nodes[:, 0]), np.asarray(rule.weights)
    got = float(wasserstein1_1d(jnp.asarray(x), jnp.asarray(wx), rule.nodes[:, 0], rule.weights))
    want = wasserstein_distance(x, nodes, u_weights=wx, v_weights=weights)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_w1_1d_of_a_translation_is_the_shift_and_of_equal_measures_zero():
    x, wx = weighted_cloud(5, 23)
    x, wx = jnp.asarray(x), jnp.asarray(wx)
    np.testing.assert_allclose(float(wasserstein1_1d(x, wx, x - 0.37, 2.5 * wx)), 0.37, rtol=1e-12)
    assert float(wasserstein1_1d(x, wx, x[::-1], wx[::-1])) == pytest.approx(0.0, abs=1e-15)


def angle_directions(n):
    """The documented 2-D directions: angles ``π k / n``, ``k < n``; ``(n, 2)``."""
    angles = np.pi * np.arange(n) / n
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


@pytest.mark.parametrize(("seed", "n_directions"), [(0, 64), (1, 7)])
def test_sliced_w1_2d_is_the_mean_of_scipy_w1_of_projections(seed, n_directions):
    x, wx = weighted_cloud(seed, 30, dim=2)
    y, wy = weighted_cloud(seed + 100, 45, dim=2)
    got = float(sliced_wasserstein1(*map(jnp.asarray, (x, wx, y, wy)), n_directions))
    want = np.mean(
        [
            wasserstein_distance(x @ u, y @ u, u_weights=wx, v_weights=wy)
            for u in angle_directions(n_directions)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_sliced_w1_of_a_translation_is_the_mean_projected_shift():
    x, wx = weighted_cloud(6, 25, dim=2)
    shift = np.array([0.8, -0.3])
    got = float(sliced_wasserstein1(*map(jnp.asarray, (x, wx, x + shift, wx)), 16))
    want = np.mean(np.abs(angle_directions(16) @ shift))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sliced_w1_in_1d_is_exact_and_in_3d_averages_over_the_sphere():
    x, wx = weighted_cloud(7, 20, dim=1)
    y, wy = weighted_cloud(8, 9, dim=1)
    got = float(sliced_wasserstein1(*map(jnp.asarray, (x, wx, y, wy))))
    want = wasserstein_distance(x[:, 0], y[:, 0], u_weights=wx, v_weights=wy)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # translation by s in R^3: E_u |s·u| = |s| / 2 for u uniform on the sphere; 4096 fixed
    # directions give it to ≈ 0.3 / √4096 ≈ 0.5 % of |s|
    p, wp = weighted_cloud(9, 10, dim=3)
    shift = np.array([0.5, -1.0, 2.0])
    sliced = float(sliced_wasserstein1(*map(jnp.asarray, (p, wp, p + shift, wp)), 4096))
    np.testing.assert_allclose(sliced, np.linalg.norm(shift) / 2, rtol=0.02)


# ----------------------------------------------------------------------------- units


def fd_gradient(f, x, h=1e-5):
    """Central differences of the scalar ``f`` in every entry of ``x`` (one compiled vmap)."""
    steps = h * jnp.eye(x.size, dtype=x.dtype).reshape(x.size, *x.shape)
    values = jax.jit(jax.vmap(f))(jnp.concatenate([x[None] + steps, x[None] - steps]))
    return ((values[: x.size] - values[x.size :]) / (2 * h)).reshape(x.shape)


def fd_velocities(game, gen, critic):
    """``V_G = −(∂F_G/∂θ_i)/w_i`` and ``V_D = λ (∂F_D/∂ω_j)/v_j`` by central differences."""
    d_gen = fd_gradient(
        lambda p: game.generator_objective(gen.with_positions(p), critic), gen.positions
    )
    d_critic = fd_gradient(
        lambda p: game.critic_objective(gen, critic.with_positions(p)), critic.positions
    )
    return -d_gen / gen.weights[:, None], game.lam * d_critic / critic.weights[:, None]


def test_affine_unit_is_a_z_plus_b_with_row_major_a():
    unit = gd.AffineUnit(2, 3)
    theta = jnp.arange(1.0, 9.0)  # A = [[1, 2, 3], [4, 5, 6]], b = (7, 8)
    z = jnp.array([0.5, -1.0, 2.0])
    np.testing.assert_array_equal(unit(theta, z), [0.5 - 2 + 6 + 7, 2 - 5 + 12 + 8])
    assert unit.param_dim == 8


def affine_game(critic_unit, lam=0.6):
    data = gd.GaussianMixture([[-1.0, 0.5], [1.0, 0.0]], [0.3, 0.7], 0.5).quadrature(3)
    nodes = jax.random.normal(jax.random.key(2), (6, 3)) + jnp.array([[0.4, -0.2, 1.0]])
    latent = gd.Quadrature(nodes, jnp.arange(1.0, 7.0) / 21)  # a rule in R^3, not centred
    return gd.MeanFieldGame(gd.AffineUnit(2, 3), critic_unit, data, latent, lam)


def affine_measures(q):
    k1, k2 = jax.random.split(jax.random.key(3))
    gen = gd.ParticleMeasure(
        jax.random.normal(k1, (5, 8)), jnp.array([1.0, 2.0, 3.0, 1.5, 0.5]) / 8
    )
    return gen, gd.ParticleMeasure(jax.random.normal(k2, (4, q)))


def test_affine_velocities_with_a_linear_critic_equal_the_closed_form():
    """``F = ω̄·x̄* − ω̄·(Ā m + b̄)`` (m the latent mean): ``V_G(A, b) = (ω̄ mᵀ, ω̄)`` everywhere,
    ``V_D = λ (x̄* − Ā m − b̄)``."""
    game = affine_game(gd.LinearCritic(2))
    gen, critic = affine_measures(2)
    omega_bar = np.average(np.asarray(critic.positions), axis=0, weights=critic.weights)
    m = np.asarray(game.latent.weights) @ np.asarray(game.latent.nodes)
    theta = np.asarray(gen.positions)
    w = np.asarray(gen.weights) / np.sum(gen.weights)
    a_bar, b_bar = (w @ theta[:, :6]).reshape(2, 3), w @ theta[:, 6:]
    data_mean = np.asarray(game.data.weights) @ np.asarray(game.data.nodes)
    want_gen = np.concatenate([np.outer(omega_bar, m).ravel(), omega_bar])
    want_critic = game.lam * (data_mean - a_bar @ m - b_bar)
    probes = jax.random.normal(jax.random.key(4), (3, 8))
    for where, n in ((None, 5), (probes, 3)):
        np.testing.assert_allclose(
            gd.generator_velocity(game, gen, critic, where), np.tile(want_gen, (n, 1)), rtol=1e-12
        )
    for where, n in ((None, 4), (probes[:, :2], 3)):
        np.testing.assert_allclose(
            gd.critic_velocity(game, gen, critic, where),
            np.tile(want_critic, (n, 1)),
            rtol=1e-12,
        )


@pytest.mark.parametrize("loss", [gd.Wasserstein(), gd.Minimax()], ids=repr)
def test_affine_velocities_with_a_neuron_critic_match_finite_differences_of_f(loss):
    game = affine_game(gd.NeuronCritic(2, jnp.tanh))
    game = gd.MeanFieldGame(game.generator, game.critic, game.data, game.latent, game.lam, loss)
    gen, critic = affine_measures(4)
    fd_gen, fd_critic = fd_velocities(game, gen, critic)
    np.testing.assert_allclose(
        gd.generator_velocity(game, gen, critic), fd_gen, rtol=1e-7, atol=1e-9
    )
    np.testing.assert_allclose(
        gd.critic_velocity(game, gen, critic), fd_critic, rtol=1e-7, atol=1e-9
    )


CLOSED_FORMS = {
    "relu": lambda s: np.maximum(s, 0.0),
    "softplus": lambda s: np.logaddexp(0.0, s),
    "identity": lambda s: s,
    "sigmoid": lambda s: 1.0 / (1.0 + np.exp(-s)),
}
PRE_ACTIVATIONS = np.array([-40.0, -2.5, -0.3, 0.7, 3.0, 40.0])


@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_neuron_units_equal_the_closed_form(activation):
    """``a σ(w·z + b)`` and ``α σ(β·x + b)`` with the pre-activation ``s`` set by ``b``."""
    sigma = CLOSED_FORMS[activation]
    sigma_jax = ACTIVATIONS[activation]
    gen, critic = gd.NeuronUnit(2, 2, sigma_jax), gd.NeuronCritic(2, sigma_jax)
    u, w = np.array([0.5, -1.5]), np.array([0.3, 0.2])  # w·u = −0.15
    for s in PRE_ACTIVATIONS:
        theta = jnp.array([2.0, -0.5, *w, s + 0.15])
        omega = jnp.array([-1.5, *w, s + 0.15])
        np.testing.assert_allclose(
            gen(theta, jnp.asarray(u)), [2 * sigma(s), -0.5 * sigma(s)], rtol=1e-14
        )
        np.testing.assert_allclose(critic(omega, jnp.asarray(u)), -1.5 * sigma(s), rtol=1e-14)


def neuron_game(activation):
    data = gd.GaussianMixture([[-1.0, 0.5], [1.0, 0.0]], [0.3, 0.7], 0.5).quadrature(3)
    latent = gd.Normal([0.0, 0.0], 1.0).quadrature(3)
    return gd.MeanFieldGame(
        gd.NeuronUnit(2, 2, ACTIVATIONS[activation]),
        gd.NeuronCritic(2, ACTIVATIONS[activation]),
        data,
        latent,
        lam=0.7,
    )


def pre_activations(game, gen, critic):
    """Every ``w·z + b`` of the generator and ``β·x + b`` of the critic that ``F`` evaluates."""
    k = game.generator.data_dim
    theta, omega = gen.positions, critic.positions
    z, x = game.latent.nodes, game.data.nodes
    y = game.generate(gen, z)
    s_gen = z @ theta[:, k:-1].T + theta[None, :, -1]
    s_critic = jnp.concatenate([x, y]) @ omega[:, 1:-1].T + omega[None, :, -1]
    return jnp.concatenate([s_gen.ravel(), s_critic.ravel()])


@pytest.mark.parametrize("activation", ["relu", "softplus", "identity", "sigmoid"])
def test_neuron_velocities_match_finite_differences_of_f(activation):
    """Uniform weights: ``V_G = −N ∂F/∂θ_i``, ``V_D = λ M ∂F/∂ω_j`` (DESIGN §1.2)."""
    game = neuron_game(activation)
    k1, k2 = jax.random.split(jax.random.key(11))
    gen = gd.ParticleMeasure(jax.random.normal(k1, (6, 5)))
    critic = gd.ParticleMeasure(jax.random.normal(k2, (5, 4)))
    s = pre_activations(game, gen, critic)
    # relu: off the kink by far more than a step moves any pre-activation, units on both sides
    assert float(jnp.min(jnp.abs(s))) > 1e-3 and bool(jnp.any(s < 0) & jnp.any(s > 0))
    v_gen, v_critic = (
        gd.generator_velocity(game, gen, critic),
        gd.critic_velocity(game, gen, critic),
    )
    fd_gen, fd_critic = fd_velocities(game, gen, critic)
    np.testing.assert_allclose(v_gen, fd_gen, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(v_critic, fd_critic, rtol=1e-7, atol=1e-9)
    assert float(jnp.max(jnp.abs(v_gen))) > 1e-2 and float(jnp.max(jnp.abs(v_critic))) > 1e-2


DERIVATIVES = {
    "relu": lambda s: (s > 0).astype(s.dtype),
    "softplus": CLOSED_FORMS["sigmoid"],
    "identity": np.ones_like,
    "sigmoid": lambda s: CLOSED_FORMS["sigmoid"](s) * (1 - CLOSED_FORMS["sigmoid"](s)),
}


def neuron_parts(params, k):
    """``(a, w, b)`` of neuron parameters ``(n, k + l + 1)``, or ``(α, β, b)`` with ``k = 1``."""
    params = np.asarray(params)
    return params[:, :k], params[:, k:-1], params[:, -1]


@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_neuron_generator_against_a_linear_critic_equals_the_closed_form(activation):
    """``D = ω̄·x``, so ``δF/δμ(θ) = −(ω̄·a) E σ(w·z + b)`` and ``V_G = (ω̄ Eσ, (ω̄·a) E σ' z,
    (ω̄·a) E σ')``; ``V_D = λ (x̄* − E G(z))`` everywhere."""
    sigma, d_sigma = CLOSED_FORMS[activation], DERIVATIVES[activation]
    base = neuron_game(activation)
    game = gd.MeanFieldGame(base.generator, gd.LinearCritic(2), base.data, base.latent, 0.7)
    k1, k2, k3 = jax.random.split(jax.random.key(12), 3)
    gen = gd.ParticleMeasure(jax.random.normal(k1, (6, 5)), jnp.linspace(0.5, 1.5, 6) / 6)
    critic = gd.ParticleMeasure(jax.random.normal(k2, (4, 2)))
    probes = jax.random.normal(k3, (3, 5))
    z, gamma = np.asarray(game.latent.nodes), np.asarray(game.latent.weights)
    x_mean = np.asarray(game.data.weights) @ np.asarray(game.data.nodes)
    omega_bar = np.asarray(critic.weights) @ np.asarray(critic.positions)

    def closed_form(theta):
        a, w, b = neuron_parts(theta, 2)
        s = w @ z.T + b[:, None]  # (n, nodes)
        scale = (a @ omega_bar)[:, None]
        return np.concatenate(
            [
                np.outer(sigma(s) @ gamma, omega_bar),
                scale * ((d_sigma(s) * gamma) @ z),
                scale * (d_sigma(s) @ gamma)[:, None],
            ],
            axis=1,
        )

    a, w, b = neuron_parts(gen.positions, 2)
    generated_mean = (np.asarray(gen.weights) * (sigma(w @ z.T + b[:, None]) @ gamma)) @ a
    for where in (None, probes):
        at = gen.positions if where is None else where
        np.testing.assert_allclose(
            gd.generator_velocity(game, gen, critic, where), closed_form(at), rtol=1e-12, atol=1e-15
        )
    np.testing.assert_allclose(
        gd.critic_velocity(game, gen, critic, probes[:, :2]),
        np.tile(0.7 * (x_mean - generated_mean), (3, 1)),
        rtol=1e-12,
    )


@pytest.mark.parametrize("activation", CLOSED_FORMS)
def test_neuron_critic_against_a_shift_generator_equals_the_closed_form(activation):
    """``G(z) = θ̄ + z``: ``V_G = E_z ∇D(θ̄ + z)`` everywhere, and ``V_D(ω) = λ ∇_ω (E_x Ψ(ω, x)
    − E_z Ψ(ω, θ̄ + z))`` with ``∇Ψ = (σ(s), α σ'(s) x, α σ'(s))``."""
    sigma, d_sigma = CLOSED_FORMS[activation], DERIVATIVES[activation]
    base = neuron_game(activation)
    game = gd.MeanFieldGame(gd.ShiftUnit(2), base.critic, base.data, base.latent, 0.7)
    k1, k2, k3 = jax.random.split(jax.random.key(13), 3)
    gen = gd.ParticleMeasure(jax.random.normal(k1, (5, 2)))
    critic = gd.ParticleMeasure(jax.random.normal(k2, (6, 4)), jnp.linspace(0.5, 1.5, 6) / 6)
    probes = jax.random.normal(k3, (3, 4))
    y = np.asarray(gen.mean()) + np.asarray(game.latent.nodes)
    gamma = np.asarray(game.latent.weights)
    x, data_weights = np.asarray(game.data.nodes), np.asarray(game.data.weights)

    def expected_gradient(omega, points, weights):
        alpha, beta, b = neuron_parts(omega, 1)
        s = beta @ points.T + b[:, None]  # (n, nodes)
        d = alpha * d_sigma(s)
        return np.concatenate(
            [sigma(s) @ weights[:, None], (d * weights) @ points, d @ weights[:, None]], axis=1
        )

    alpha, beta, b = neuron_parts(critic.positions, 1)
    grad_d = (
        np.asarray(critic.weights)[:, None] * alpha * d_sigma(beta @ y.T + b[:, None])
    ).T @ beta
    np.testing.assert_allclose(
        gd.generator_velocity(game, gen, critic, probes[:, :2]),
        np.tile(gamma @ grad_d, (3, 1)),
        rtol=1e-12,
        atol=1e-15,
    )
    for where in (None, probes):
        at = critic.positions if where is None else where
        want = 0.7 * (expected_gradient(at, x, data_weights) - expected_gradient(at, y, gamma))
        np.testing.assert_allclose(
            gd.critic_velocity(game, gen, critic, where), want, rtol=1e-12, atol=1e-15
        )
