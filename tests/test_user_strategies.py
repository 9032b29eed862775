"""Strategies written outside gandyn — a loss, a constraint, units, a grid scheme — run through
every solver that takes their family (``simulate``, ``solve_continuity``, ``train_wgan``) and
obey the mathematics: a re-implementation matches the built-in to round-off, a scaled loss is
the Wasserstein game in rescaled time, a user's box keeps the critic in it, user units follow
T1's closed-form oscillator."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gandyn as gd
from gandyn import diagnostics as dg

PHASE = {"generated_mean": dg.generated_mean, "critic_mean": dg.critic_mean}
DATA = gd.GaussianMixture(np.array([-1.0, 1.0]), None, 0.3)  # mean 0


# ----------------------------------------------------------------------------- user strategies


class MeanGap(gd.AbstractLoss):
    """``F = E D(x) − E D(G(z))`` as one weighted sum over the stacked values."""

    def critic_objective(self, real, fake, data_weights, latent_weights):
        return jnp.sum(jnp.concatenate([data_weights, -latent_weights]) * jnp.r_[real, fake])

    def generator_objective(self, real, fake, data_weights, latent_weights):
        return self.critic_objective(real, fake, data_weights, latent_weights)


class ScaledWasserstein(gd.AbstractLoss):
    """``k F``: the Wasserstein game ``k`` times faster (``k`` a traced array)."""

    k: jax.Array

    def critic_objective(self, real, fake, data_weights, latent_weights):
        return self.k * (data_weights @ real - latent_weights @ fake)

    def generator_objective(self, real, fake, data_weights, latent_weights):
        return self.critic_objective(real, fake, data_weights, latent_weights)


class Box(gd.AbstractConstraint):
    """Exact projection onto ``[low, high]^q``, by ``where`` rather than ``clip``."""

    low: jax.Array
    high: jax.Array
    projects = True

    def velocity(self, u, v):
        return v

    def project(self, u):
        return jnp.where(u < self.low, self.low, jnp.where(u > self.high, self.high, u))

    def on_wall(self, u):
        return (u <= self.low) | (u >= self.high)


class EyeShift(gd.AbstractGeneratorUnit):
    """``Φ(θ, z) = I z + θ``: :class:`~gandyn.ShiftUnit` as an affine map."""

    data_dim: int = eqx.field(static=True)
    latent_dim: int = eqx.field(static=True)

    def __init__(self, dim: int):
        self.data_dim = self.latent_dim = dim

    @property
    def param_dim(self) -> int:
        return self.data_dim

    def __call__(self, theta, z):
        return jnp.eye(self.data_dim) @ z + theta


class DotCritic(gd.AbstractCriticUnit):
    """``Ψ(ω, x) = Σ_k ω_k x_k``: :class:`~gandyn.LinearCritic` as a sum."""

    data_dim: int = eqx.field(static=True)

    @property
    def param_dim(self) -> int:
        return self.data_dim

    def __call__(self, omega, x):
        return jnp.sum(omega * x)


class SlicedUpwind(gd.AbstractScheme):
    """Upwind by moving ``axis`` first and slicing: each cell's density on its side."""

    cfl_limit = 1.0
    stages = 1

    def face_states(self, rho, axis):
        moved = jnp.moveaxis(rho, axis, 0)
        return jnp.moveaxis(moved[:-1], 0, axis), jnp.moveaxis(moved[1:], 0, axis)


# ----------------------------------------------------------------------------- helpers


def t1_game(lam=1.0, loss=None, generator=None, critic=None, dim=1):
    data = DATA if dim == 1 else gd.GaussianMixture(np.array([[-1.0, 0.5], [1.0, -0.5]]), None, 0.3)
    return gd.MeanFieldGame(
        gd.ShiftUnit(dim) if generator is None else generator,
        gd.LinearCritic(dim) if critic is None else critic,
        data.quadrature(6),
        gd.Normal(np.zeros(dim), 1.0).quadrature(6),
        lam,
        loss,
    )


def particles(game, constraint, n=12, critic_spread=0.3):
    """Quantile particles: generator N(0.5, 0.5²), critic Uniform-ish around 0."""
    key = jax.random.key(0)
    gen = gd.sample_measure(key, gd.Normal(0.5, 0.5), n, "quantile")
    critic = gd.sample_measure(key, gd.Normal(0.1, critic_spread), n, "quantile")
    return gd.MeanFieldProblem.from_measures(game, constraint, gen, critic)


def grid_problem(game, constraint, scheme=None, cells=40, box=(-0.5, 0.5)):
    dim = game.generator.param_dim
    gen_grid = gd.Grid(np.full(dim, -3.0), 4.0, cells)
    critic_grid = gd.Grid(np.full(dim, box[0]), box[1], cells)
    problem = gd.ContinuityProblem(game, constraint, gen_grid, critic_grid, scheme)
    law = gd.Normal(np.full(dim, 0.5), 0.3), gd.Normal(np.zeros(dim), 0.09)
    return problem, problem.initial_state(*law)


def assert_same_states(a, b, atol):
    np.testing.assert_allclose(a.generator, b.generator, rtol=0, atol=atol)
    np.testing.assert_allclose(a.critic, b.critic, rtol=0, atol=atol)


def oscillator(t, lam, y0, w0):
    """T1 off the walls (DESIGN §1.4): ẏ = ω̄, dω̄/dt = −λ y."""
    r = math.sqrt(lam)
    return y0 * np.cos(r * t) + w0 / r * np.sin(r * t), w0 * np.cos(r * t) - r * y0 * np.sin(r * t)


# ----------------------------------------------------------------------------- losses


def test_a_user_loss_equal_to_wasserstein_gives_its_trajectories_in_every_solver():
    game, mine = t1_game(1.3), t1_game(1.3, MeanGap())
    problem, state = particles(game, gd.HardClip(0.5))
    user_problem = eqx.tree_at(lambda p: p.game, problem, mine)
    run = dict(t1=2.0, dt=0.05, solver="euler", diagnostics=PHASE, snapshot_ts=[1.0])
    ode, user_ode = (gd.simulate(p, state, **run) for p in (problem, user_problem))
    assert np.unique(ode.final.critic).size < 6  # the wall merged critic particles
    assert_same_states(ode.final, user_ode.final, 1e-13)
    algorithm = gd.WGANAlgorithm(0.05, n_critic=2, optimizer=optax.scale_by_adam())
    literal, user_literal = (
        gd.train_wgan(p, state, algorithm, t1=1.0, diagnostics=PHASE)
        for p in (problem, user_problem)
    )
    assert_same_states(literal.final, user_literal.final, 1e-13)
    grids = [grid_problem(g, gd.HardClip(0.5), gd.MUSCL()) for g in (game, mine)]
    runs = [gd.solve_continuity(p, s, t1=1.0, save_ts=[0.0, 1.0]) for p, s in grids]
    np.testing.assert_allclose(runs[0].final.critic, runs[1].final.critic, rtol=0, atol=1e-13)
    np.testing.assert_allclose(runs[0].final.generator, runs[1].final.generator, atol=1e-13)


def test_a_scaled_user_loss_is_the_wasserstein_game_in_rescaled_time():
    """``k F`` multiplies both velocities by ``k``: Euler (and projected Euler, and the
    literal sgd step) with step ``h`` on ``k F`` is the step ``k h`` on ``F``."""
    k = 2.5
    game, scaled = t1_game(0.8), t1_game(0.8, ScaledWasserstein(jnp.asarray(k)))
    problem, state = particles(game, gd.HardClip(0.5))
    scaled_problem = eqx.tree_at(lambda p: p.game, problem, scaled)
    fast = gd.simulate(scaled_problem, state, t1=1.0, dt=0.02, solver="euler", diagnostics=PHASE)
    slow = gd.simulate(problem, state, t1=k * 1.0, dt=k * 0.02, solver="euler", diagnostics=PHASE)
    assert np.unique(slow.final.critic).size < 10  # the wall merged critic particles
    assert_same_states(fast.final, slow.final, 1e-12)
    fast = gd.train_wgan(scaled_problem, state, gd.WGANAlgorithm(0.02), t1=1.0, diagnostics=PHASE)
    slow = gd.train_wgan(problem, state, gd.WGANAlgorithm(k * 0.02), t1=k, diagnostics=PHASE)
    assert_same_states(fast.final, slow.final, 1e-12)
    grids = [grid_problem(g, gd.HardClip(0.5)) for g in (scaled, game)]
    fast, slow = (
        gd.solve_continuity(p, s, t1=t, dt=h, save_ts=[0.0, t])
        for (p, s), t, h in zip(grids, (0.4, k * 0.4), (0.002, k * 0.002), strict=True)
    )
    np.testing.assert_allclose(fast.final.critic, slow.final.critic, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.final.generator, slow.final.generator, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- constraints


def test_a_user_box_keeps_the_critic_in_it_and_is_hardclip_when_symmetric():
    game = t1_game(1.3)
    hard, state = particles(game, gd.HardClip(0.4), critic_spread=0.6)
    mine = eqx.tree_at(lambda p: p.constraint, hard, Box(jnp.asarray(-0.4), jnp.asarray(0.4)))
    run = dict(t1=2.0, dt=0.05, solver="euler", diagnostics=PHASE, snapshot_ts=[0.5, 1.0])
    ode, user_ode = (gd.simulate(p, state, **run) for p in (hard, mine))
    assert_same_states(ode.snapshots, user_ode.snapshots, 1e-13)
    algorithm = gd.WGANAlgorithm(0.05, clip=gd.ClipBefore())
    literal, user_literal = (
        gd.train_wgan(p, state, algorithm, t1=1.0, diagnostics=PHASE) for p in (hard, mine)
    )
    assert_same_states(literal.final, user_literal.final, 1e-13)
    grids = [grid_problem(game, c) for c in (gd.HardClip(0.5), Box(-0.5, 0.5))]
    runs = [gd.solve_continuity(p, s, t1=1.0, save_ts=[0.0, 1.0]) for p, s in grids]
    np.testing.assert_allclose(runs[0].final.critic, runs[1].final.critic, rtol=0, atol=1e-13)
    # an asymmetric box: every critic coordinate stays in [low, high] and some sit on a wall
    low, high = -0.2, 0.45
    box = eqx.tree_at(lambda p: p.constraint, hard, Box(jnp.asarray(low), jnp.asarray(high)))
    state = gd.MeanFieldState(state.generator, box.constraint.project(state.critic))
    for traj in (
        gd.simulate(box, state, **run),
        gd.train_wgan(box, state, gd.WGANAlgorithm(0.05), t1=2.0, snapshot_ts=[0.5, 1.0]),
    ):
        critic = np.asarray(traj.snapshots.critic)
        assert critic.min() >= low and critic.max() <= high
        assert np.any(critic == low) or np.any(critic == high)


# ----------------------------------------------------------------------------- units


def test_user_units_equal_to_shift_and_linear_match_them_and_follow_the_oscillator():
    lam, c = 1.5, 10.0  # walls out of reach: T1 is the oscillator
    game, mine = t1_game(lam), t1_game(lam, generator=EyeShift(1), critic=DotCritic(1))
    problem, state = particles(game, gd.HardClip(c))
    user_problem = eqx.tree_at(lambda p: p.game, problem, mine)
    run = dict(t1=3.0, dt=0.005, solver="heun", diagnostics=PHASE)
    ode, user_ode = (gd.simulate(p, state, **run) for p in (problem, user_problem))
    assert_same_states(ode.final, user_ode.final, 1e-13)
    y0 = float(jnp.mean(state.generator))  # data mean 0, latent mean 0
    w0 = float(jnp.mean(state.critic))
    y, w = oscillator(np.asarray(user_ode.ts), lam, y0, w0)
    # Heun's global error at this step: about 1.5e-5
    np.testing.assert_allclose(user_ode.diagnostics["generated_mean"][:, 0], y, atol=5e-5)
    np.testing.assert_allclose(user_ode.diagnostics["critic_mean"][:, 0], w, atol=5e-5)
    algorithm = gd.WGANAlgorithm(0.05, updates=gd.Simultaneous())
    literal, user_literal = (
        gd.train_wgan(p, state, algorithm, t1=1.0, diagnostics=PHASE)
        for p in (problem, user_problem)
    )
    assert_same_states(literal.final, user_literal.final, 1e-13)
    grids = [
        grid_problem(g, gd.HardClip(0.5), gd.MUSCL(), cells=12)
        for g in (t1_game(dim=2), t1_game(generator=EyeShift(2), critic=DotCritic(2), dim=2))
    ]
    runs = [gd.solve_continuity(p, s, t1=0.5, save_ts=[0.0, 0.5]) for p, s in grids]
    np.testing.assert_allclose(runs[0].final.critic, runs[1].final.critic, rtol=0, atol=1e-13)
    np.testing.assert_allclose(runs[0].final.generator, runs[1].final.generator, atol=1e-13)


# ----------------------------------------------------------------------------- schemes


@pytest.mark.parametrize("dim", [1, 2])
def test_a_user_upwind_scheme_matches_upwind(dim):
    game = t1_game(dim=dim)
    cells = 60 if dim == 1 else 12
    runs = [
        gd.solve_continuity(*grid_problem(game, gd.HardClip(0.5), s, cells), t1=1.0)
        for s in (gd.Upwind(), SlicedUpwind())
    ]
    assert float(runs[0].diagnostics["critic_wall_mass"][-1]) > 0.1  # the walls are reached
    for name in ("generator", "critic"):
        np.testing.assert_array_equal(
            getattr(runs[0].final, name), getattr(runs[1].final, name), err_msg=name
        )
    np.testing.assert_array_equal(runs[0].diagnostics["courant"], runs[1].diagnostics["courant"])


def test_a_scheme_with_stages_the_grid_solver_cannot_step_is_refused():
    class ThreeStages(SlicedUpwind):
        stages = 3

    with pytest.raises(ValueError, match="ThreeStages has 3 stages"):
        grid_problem(t1_game(), gd.HardClip(0.5), ThreeStages())
