"""The blocked (fast) velocity path equals plain autodiff of the objectives (DESIGN §1.2, §5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gandyn as gd
from gandyn.games._chunks import BLOCK_ELEMENTS, SPLIT, auto_chunk, particle_map, particle_sum

# 300 particles: blocks of 128 (nested layout) plus a remainder; blocks of 7 (7 does not
# divide 300); automatic (here one block shorter than the chunk)
CHUNKS = [128, 7, None]


def plain_velocities(game, gen, critic, gen_points=None, critic_points=None):
    """Reference: one reverse pass (particles) or jvp-of-grad (probes) of the objectives."""
    v_gen = -gd.first_variation_gradient(
        lambda m: game.generator_objective(m, critic), gen, gen_points
    )
    v_critic = game.lam * gd.first_variation_gradient(
        lambda m: game.critic_objective(gen, m), critic, critic_points
    )
    return v_gen, v_critic


def neuron_game(loss=None, chunk_size=None, critic_activation=jnp.tanh, dtype=jnp.float64):
    data = gd.GaussianMixture([[-1.0, 0.5], [1.0, 0.0]], [0.3, 0.7], 0.5).quadrature(3)
    latent = gd.Normal([0.0, 0.0], 1.0).quadrature(4)
    cast = [gd.Quadrature(q.nodes.astype(dtype), q.weights.astype(dtype)) for q in (data, latent)]
    return gd.MeanFieldGame(
        gd.NeuronUnit(2, 2, jnp.tanh),
        gd.NeuronCritic(2, critic_activation),
        *cast,
        lam=0.7,
        loss=loss,
        chunk_size=chunk_size,
    )


def measures(n=300, m=260, dtype=jnp.float64):
    k1, k2, k3 = jax.random.split(jax.random.key(2), 3)
    gen = gd.ParticleMeasure(
        jax.random.normal(k1, (n, 5), dtype), jax.random.uniform(k3, (n,), dtype, 0.5, 1.5) / n
    )
    critic = gd.ParticleMeasure(jax.random.uniform(k2, (m, 4), dtype, -1.0, 1.0))
    return gen, critic


@jax.jit
def fast_and_plain(game, gen, critic, gen_points, critic_points):
    """Both paths at the particles and at the probe points, compiled once."""
    fast = [
        (gd.generator_velocity(game, gen, critic, g), gd.critic_velocity(game, gen, critic, c))
        for g, c in ((None, None), (gen_points, critic_points))
    ]
    plain = [
        plain_velocities(game, gen, critic, None, None),
        plain_velocities(game, gen, critic, gen_points, critic_points),
    ]
    return fast, plain


@pytest.mark.parametrize(
    ("loss", "chunk"),
    [(gd.Wasserstein(), chunk) for chunk in CHUNKS]
    + [(gd.Minimax(), 7), (gd.NonSaturating(), None)],
)
def test_fast_path_equals_plain_autodiff_at_particles_and_points(loss, chunk):
    activation = jnp.tanh if isinstance(loss, gd.Wasserstein) else jax.nn.sigmoid
    game = neuron_game(loss, chunk, activation)
    gen, critic = measures()
    gen_points = jax.random.normal(jax.random.key(7), (9, 5))
    critic_points = jax.random.normal(jax.random.key(8), (11, 4))
    fast, plain = fast_and_plain(game, gen, critic, gen_points, critic_points)
    for got, want in zip(
        jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(plain), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_fast_path_in_float32_matches_float64_to_single_precision():
    gen64, critic64 = measures(512, 384)
    game32 = neuron_game(dtype=jnp.float32)
    gen32, critic32 = (
        gd.ParticleMeasure(m.positions.astype(jnp.float32), m.weights.astype(jnp.float32))
        for m in (gen64, critic64)
    )
    want = jax.jit(plain_velocities)(neuron_game(), gen64, critic64)
    got = jax.jit(
        lambda g, c: (gd.generator_velocity(game32, g, c), gd.critic_velocity(game32, g, c))
    )(gen32, critic32)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == jnp.float32
        np.testing.assert_allclose(g, w, rtol=0, atol=2e-6 * float(jnp.max(jnp.abs(w))))


@pytest.mark.parametrize("chunk", CHUNKS)
def test_t1_closed_form_for_every_chunk_size(chunk):
    data = gd.GaussianMixture([[-1.0], [2.0]], [0.5, 0.5], 0.3).quadrature(8)
    latent = gd.Normal(0.0, 1.0).quadrature(8)
    game = gd.MeanFieldGame(
        gd.ShiftUnit(1), gd.LinearCritic(1), data, latent, lam=1.7, chunk_size=chunk
    )
    gen = gd.ParticleMeasure(jax.random.normal(jax.random.key(0), (300, 1)) + 0.8)
    critic = gd.ParticleMeasure(0.3 * jax.random.normal(jax.random.key(1), (257, 1)))
    y = float(gen.mean()[0] - 0.5)
    omega_bar = float(critic.mean()[0])
    for where in (None, jnp.linspace(-3, 3, 5)[:, None]):
        v_gen, v_critic = jax.jit(
            lambda g, c, p: (
                gd.generator_velocity(game, g, c, p),
                gd.critic_velocity(game, g, c, p),
            )
        )(gen, critic, where)
        np.testing.assert_allclose(v_gen, omega_bar, rtol=1e-12)
        np.testing.assert_allclose(v_critic, -1.7 * y, rtol=1e-12)


def test_zero_weight_particles_get_their_probe_velocity():
    game = neuron_game(chunk_size=64)
    gen, critic = measures()
    weights = gen.weights.at[::3].set(0.0)
    gen0 = gd.ParticleMeasure(gen.positions, weights)
    at_particles = jax.jit(gd.generator_velocity)(game, gen0, critic)
    as_probes = jax.jit(plain_velocities)(game, gen0, critic, gen.positions[::3], None)[0]
    np.testing.assert_allclose(at_particles[::3], as_probes, rtol=1e-10, atol=1e-13)


def test_fast_path_under_jit_vmap_and_grad():
    game = neuron_game(chunk_size=128)
    gen, critic = measures()

    def speed(lam, positions, velocity):
        g = gd.MeanFieldGame(
            game.generator, game.critic, game.data, game.latent, lam, chunk_size=128
        )
        return jnp.sum(velocity(g, gen.with_positions(positions), critic) ** 2)

    def fast(lam, positions):
        return speed(lam, positions, lambda g, m, c: gd.critic_velocity(g, m, c))

    def plain(lam, positions):
        return speed(lam, positions, lambda g, m, c: plain_velocities(g, m, c)[1])

    lams = jnp.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(
        jax.jit(jax.vmap(fast, (0, None)))(lams, gen.positions),
        jax.jit(jax.vmap(plain, (0, None)))(lams, gen.positions),
        rtol=1e-10,
    )
    grads = [jax.jit(jax.grad(f, (0, 1)))(0.7, gen.positions) for f in (fast, plain)]
    for got, want in zip(*grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)


def test_chunk_helpers_cover_every_particle_once():
    positions = jnp.arange(300.0)[:, None] * jnp.ones((1, 2))
    weights = jnp.linspace(0.0, 1.0, 300)
    for chunk in (128, 7, 300, 1000):
        total = particle_sum(lambda theta, w: w @ (theta[:, 0] ** 2), positions, weights, chunk)
        np.testing.assert_allclose(total, weights @ positions[:, 0] ** 2, rtol=1e-13)
        np.testing.assert_array_equal(
            particle_map(lambda theta: theta[::-1], positions, chunk), positions[:, ::-1]
        )


def test_automatic_chunk_fits_a_cache_block():
    for nodes in (1, 24, 1000, 1024, 2048, 10**6):
        chunk = auto_chunk(nodes)
        assert chunk & (chunk - 1) == 0 and chunk >= 2**SPLIT
        assert chunk * nodes <= BLOCK_ELEMENTS or chunk == 2**SPLIT
        assert 2 * chunk * nodes > BLOCK_ELEMENTS
    assert auto_chunk(1024, 100) == 100
    with pytest.raises(ValueError, match="chunk_size"):
        neuron_game(chunk_size=0)


def test_peak_memory_at_a_million_particles_stays_in_blocks():
    """Compiled, not run: XLA's temporary buffers for both velocities at N = M = 2^20 with
    1024 nodes per rule in float32 stay under 64 MiB (one N × nodes table: 4 GiB)."""
    n = 2**20
    data = gd.Normal([0.0, 0.0], 1.0).quadrature(32)
    game = gd.MeanFieldGame(
        gd.NeuronUnit(2, 2),
        gd.NeuronCritic(2),
        *(
            gd.Quadrature(q.nodes.astype(jnp.float32), q.weights.astype(jnp.float32))
            for q in (data, data)
        ),
    )

    def velocities(gen_positions, gen_weights, critic_positions, critic_weights):
        gen = gd.ParticleMeasure(gen_positions, gen_weights)
        critic = gd.ParticleMeasure(critic_positions, critic_weights)
        return gd.generator_velocity(game, gen, critic), gd.critic_velocity(game, gen, critic)

    specs = [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in ((n, 5), (n,), (n, 4), (n,))]
    memory = jax.jit(velocities).lower(*specs).compile().memory_analysis()
    assert memory.temp_size_in_bytes < 64 * 2**20
