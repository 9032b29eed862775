"""The literal WGAN algorithm against the mean-field ODE (DESIGN §1.5)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gandyn as gd
from gandyn import diagnostics as dg
from gandyn.experiments.toy import T1_PARAMS, T2_PARAMS, build_t1, build_t2

PHASE = {"generated_mean": dg.generated_mean, "critic_mean": dg.critic_mean}
"""The (y, ω̄) diagnostics of T1 (fewer diagnostics compile faster)."""


def toy(name, **overrides):
    """Problem and initial state of toy T1 or T2 (experiments/toy.py) with overrides."""
    params, build = (T1_PARAMS, build_t1) if name == "T1" else (T2_PARAMS, build_t2)
    return build({key: p.default for key, p in params.items()} | overrides)


def train(problem, state, algorithm, *, t1, **kwargs):
    """``train_wgan`` recording the T1 phase ``(y, ω̄)`` unless told otherwise."""
    kwargs.setdefault("diagnostics", PHASE)
    return gd.train_wgan(problem, state, algorithm, t1=t1, **kwargs)


def max_state_difference(a, b):
    return max(
        float(jnp.max(jnp.abs(a.generator - b.generator))),
        float(jnp.max(jnp.abs(a.critic - b.critic))),
    )


def oscillator(t, lam, y0, w0):
    """T1 off the walls (DESIGN §1.4): ẏ = ω̄, dω̄/dt = −λ y."""
    r = math.sqrt(lam)
    return y0 * np.cos(r * t) + w0 / r * np.sin(r * t), w0 * np.cos(r * t) - r * y0 * np.sin(r * t)


def phase_error(problem, traj, y0, w0):
    """Time average of |y − y_exact| + |ω̄ − ω̄_exact| over the saved times ``(..., T)``."""
    y = traj.diagnostics["generated_mean"][..., 0] - problem.game.data.mean()[0]
    w = traj.diagnostics["critic_mean"][..., 0]
    y_exact, w_exact = oscillator(np.asarray(traj.ts), float(problem.game.lam), y0, w0)
    return np.mean(np.abs(y - y_exact) + np.abs(w - w_exact), axis=-1)


def slope(x, y):
    return np.polyfit(np.log(x), np.log(y), 1)[0]


# ----------------------------------------------------------------------------- projected Euler


@pytest.mark.parametrize(
    ("model", "overrides", "dt", "t1"),
    [
        ("T1", {"n_gen": 24, "n_critic": 32, "lam": 1.7}, 0.05, 4.0),
        ("T1", {"n_gen": 8, "n_critic": 8, "lam": 1.7, "clip": "penalty", "beta": 20.0}, 0.05, 4.0),
        ("T2", {"n_gen": 16, "n_critic": 16, "c": 0.4, "quadrature": 8, "lam": 2.0}, 0.05, 3.0),
    ],
)
def test_full_batch_simultaneous_sgd_is_projected_euler(model, overrides, dt, t1):
    problem, state = toy(model, **overrides)
    snapshots = np.arange(0.0, t1 + dt / 2, 0.5)
    ode = gd.simulate(problem, state, t1=t1, dt=dt, solver="euler", snapshot_ts=snapshots)
    algorithm = gd.WGANAlgorithm(dt, updates=gd.Simultaneous())
    literal = gd.train_wgan(problem, state, algorithm, t1=t1, snapshot_ts=snapshots)
    assert float(jnp.max(ode.diagnostics["wall_fraction"])) > 0.3  # the clip is exercised
    assert max_state_difference(ode.final, literal.final) < 1e-12
    assert max_state_difference(ode.snapshots, literal.snapshots) < 1e-12
    np.testing.assert_allclose(literal.snapshot_ts, ode.snapshot_ts, atol=1e-12)
    for name, series in ode.diagnostics.items():
        np.testing.assert_allclose(literal.diagnostics[name], series, atol=1e-12, err_msg=name)


# ----------------------------------------------------------------------------- gaps: η and N


def t1_free(**overrides):
    """T1 with walls out of reach, so the exact solution is the oscillator."""
    return toy("T1", c=10.0, lam=1.5, **overrides)


FREE_ETAS = np.array([0.08, 0.04, 0.02])
UPDATE_ORDERS = (gd.Alternating(), gd.Simultaneous())


@pytest.fixture(scope="module")
def free_runs():
    """Full-batch T1 off the walls at each step of ``FREE_ETAS``, both update orders."""
    problem, state = t1_free(n_gen=8, n_critic=8)
    runs = {
        (updates, eta): train(problem, state, gd.WGANAlgorithm(eta, updates=updates), t1=4.0)
        for updates in UPDATE_ORDERS
        for eta in FREE_ETAS
    }
    return problem, state, runs


@pytest.mark.parametrize("updates", UPDATE_ORDERS, ids=repr)
def test_full_batch_gap_to_exact_ode_is_first_order_in_eta(free_runs, updates):
    problem, state, runs = free_runs
    y0 = float(state.generator.mean() - problem.game.data.mean()[0])
    w0 = float(state.critic.mean())
    gaps = [phase_error(problem, runs[updates, eta], y0, w0) for eta in FREE_ETAS]
    assert slope(FREE_ETAS, gaps) == pytest.approx(1.0, abs=0.08)


def test_alternating_differs_from_simultaneous_at_first_order_in_eta(free_runs):
    """Both are first order, so they differ at O(η); the O(η²) term moves the slope
    measured over η ∈ [0.02, 0.08] by less than 0.1."""
    _, _, runs = free_runs
    differences = [
        max_state_difference(runs[gd.Alternating(), eta].final, runs[gd.Simultaneous(), eta].final)
        for eta in FREE_ETAS
    ]
    assert slope(FREE_ETAS, differences) == pytest.approx(1.0, abs=0.1)


def test_minibatch_sgd_gap_to_exact_ode_is_half_order_in_eta():
    """E gap ∝ √η: the batch noise of variance ∝ η per unit time accumulates like a
    Brownian path. 128 seeds give each log-mean a standard error ≈ 0.05 and the slope
    over a factor 8 in η one ≈ 0.04; the tolerance 0.12 is three of those."""
    problem, state = t1_free(n_gen=8, n_critic=8)
    y0 = float(state.generator.mean() - problem.game.data.mean()[0])
    w0 = float(state.critic.mean())
    keys = jax.random.split(jax.random.key(3), 128)
    etas = np.array([0.08, 0.04, 0.02, 0.01])
    gaps = []
    for eta in etas:
        algorithm = gd.WGANAlgorithm(eta, batches=gd.Minibatch(2))
        runs = jax.vmap(lambda k, a=algorithm: train(problem, state, a, t1=2.0, key=k))(keys)
        gaps.append(np.mean(phase_error(problem, runs, y0, w0)))
    assert slope(etas, gaps) == pytest.approx(0.5, abs=0.12)


def test_gap_to_mean_field_limit_shrinks_like_inverse_sqrt_width():
    """i.i.d. initial particles: the finite network starts O(N^{-1/2}) away from the law's
    means and (off the walls) the gap stays linear in that offset. 64 seeds give each
    log-mean gap a standard error ≈ 0.09 and the slope over a factor 16 in width one
    ≈ 0.05; tolerance 0.15. The step η = 0.004 keeps the O(η) discretization error (the
    gap of a start at the exact means) below a tenth of the smallest gap."""
    problem, _ = t1_free(n_gen=4, n_critic=4)
    config = {key: p.default for key, p in T1_PARAMS.items()}
    gen_law = gd.Normal(config["gen_init_mean"], config["gen_init_std"])
    critic_law = gd.Uniform(config["critic_init_low"], config["critic_init_high"])
    y0 = config["gen_init_mean"] - float(problem.game.data.mean()[0])
    w0 = 0.5 * (config["critic_init_low"] + config["critic_init_high"])
    algorithm = gd.WGANAlgorithm(0.004)
    widths = np.array([16, 64, 256])
    gaps = []
    for width in widths:
        weights = jnp.full(width, 1.0 / width)
        problem_w = gd.MeanFieldProblem(problem.game, problem.constraint, weights, weights)

        def run(key, problem_w=problem_w, width=width):
            key_gen, key_critic = jax.random.split(key)
            start = gd.MeanFieldState(
                gen_law.sample(key_gen, width), critic_law.sample(key_critic, width)
            )
            return train(problem_w, start, algorithm, t1=2.0, save_ts=np.linspace(0, 2, 51))

        runs = jax.vmap(run)(jax.random.split(jax.random.key(int(width)), 64))
        gaps.append(np.mean(phase_error(problem_w, runs, y0, w0)))
    assert slope(widths, gaps) == pytest.approx(-0.5, abs=0.12)


# ----------------------------------------------------------------------------- clipping orders


CLIP_ETA = 0.05
CLIP_SNAPSHOTS = np.arange(0.0, 6.0, 0.25)  # T1's first wall contact is near t = 0.41


@pytest.fixture(scope="module")
def clip_runs():
    """T1 with walls: ``(problem, {(updates, clip): trajectory})``, all four orderings."""
    problem, state = toy("T1", n_gen=16, n_critic=16)
    runs = {
        (updates, clip): gd.train_wgan(
            problem,
            state,
            gd.WGANAlgorithm(CLIP_ETA, updates=updates, clip=clip),
            t1=6.0,
            snapshot_ts=CLIP_SNAPSHOTS,
        )
        for updates in UPDATE_ORDERS
        for clip in (gd.ClipAfter(), gd.ClipBefore())
    }
    return problem, runs


@pytest.mark.parametrize("updates", UPDATE_ORDERS, ids=repr)
def test_clip_after_keeps_every_critic_coordinate_in_the_box(clip_runs, updates):
    problem, runs = clip_runs
    traj = runs[updates, gd.ClipAfter()]
    assert float(jnp.max(traj.diagnostics["wall_fraction"])) == 1.0
    assert float(jnp.max(traj.diagnostics["critic_max_abs"])) <= float(problem.constraint.c)


@pytest.mark.parametrize("updates", UPDATE_ORDERS, ids=repr)
def test_clip_before_overshoots_by_at_most_one_critic_step(clip_runs, updates):
    """T1: the critic gradient is −y for every particle, so a stored critic can exceed
    the wall by at most η_D |y| of the step that produced it — and it does."""
    problem, runs = clip_runs
    traj = runs[updates, gd.ClipBefore()]
    y = traj.diagnostics["generated_mean"][:, 0] - problem.game.data.mean()[0]
    excess = traj.diagnostics["critic_max_abs"] - problem.constraint.c
    eta_d = float(problem.game.lam) * CLIP_ETA
    assert float(jnp.max(excess)) > 0.1 * eta_d * float(jnp.max(jnp.abs(y)))
    assert bool(jnp.all(excess[1:] <= eta_d * jnp.abs(y[:-1]) + 1e-12))


def test_clip_orders_agree_after_clipping_with_simultaneous_updates(clip_runs):
    """Simultaneous: both gradients are taken at the clipped critic, so clipping the
    clip-before state gives the clip-after state exactly, and the generators agree."""
    problem, runs = clip_runs
    a, b = runs[gd.Simultaneous(), gd.ClipAfter()], runs[gd.Simultaneous(), gd.ClipBefore()]
    np.testing.assert_array_equal(a.snapshots.generator, b.snapshots.generator)
    np.testing.assert_array_equal(a.snapshots.critic, problem.constraint.clip(b.snapshots.critic))
    assert float(jnp.max(jnp.abs(a.snapshots.critic - b.snapshots.critic))) > 0


def test_clip_orders_differ_with_alternating_updates_only_after_wall_contact(clip_runs):
    """Alternating: the generator reads the critic as stored, unclipped under clip-before."""
    _, runs = clip_runs
    a, b = runs[gd.Alternating(), gd.ClipAfter()], runs[gd.Alternating(), gd.ClipBefore()]
    np.testing.assert_array_equal(a.snapshots.generator[:2], b.snapshots.generator[:2])
    assert float(jnp.max(jnp.abs(a.final.generator - b.final.generator))) > 1e-3


# ----------------------------------------------------------------------------- batches, optimizers


def test_minibatch_without_replacement_of_the_whole_set_is_full_batch():
    """A batch of every point, weights (n/b) w_k = w_k: the same sums in another order."""
    problem, state = toy("T1", n_gen=8, n_critic=8, quadrature=6)
    size = problem.game.data.size
    latent = gd.Normal(0.0, 1.0).quadrature(size)
    problem = eqx.tree_at(lambda p: p.game.latent, problem, latent)
    batches = gd.Minibatch(size, replace=False)
    sampled = train(
        problem, state, gd.WGANAlgorithm(0.05, batches=batches), t1=1.0, key=jax.random.key(0)
    )
    full = train(problem, state, gd.WGANAlgorithm(0.05), t1=1.0)
    assert max_state_difference(sampled.final, full.final) < 1e-12


@pytest.mark.parametrize(
    ("optimizer", "size"),
    [(optax.scale_by_adam(), 1.0), (optax.scale_by_rms(), 1 / math.sqrt(0.1))],
    ids=["adam", "rmsprop"],
)
def test_first_adaptive_step_moves_each_generator_particle_by_eta_times_its_sign(optimizer, size):
    """T1: the generator's mean-field gradient is −ω̄ for every particle; a first adam step
    is −η g/|g|, a first rmsprop step (decay 0.9) −η g/√(0.1 g²), up to optax's ε."""
    problem, state = toy("T1", n_gen=8, n_critic=8, critic_init_low=0.1, critic_init_high=0.3)
    eta = 0.01
    traj = train(problem, state, gd.WGANAlgorithm(eta, optimizer=optimizer), t1=eta)
    omega_bar = float(traj.final.critic.mean())
    assert omega_bar > 0.05
    np.testing.assert_allclose(traj.final.generator - state.generator, eta * size, rtol=1e-5)


def test_critic_steps_per_generator_step_share_the_critic_time_step():
    """T1: the critic gradient −y does not depend on ω and y is frozen during the critic
    steps, so 5 steps of η_D = λ η_G / 5 (clipped after each, same sign) land where one
    step of λ η_G does — to round-off, walls included."""
    problem, state = toy("T1", n_gen=8, n_critic=8, lam=1.3)
    one = train(problem, state, gd.WGANAlgorithm(0.05), t1=3.0)
    five = train(problem, state, gd.WGANAlgorithm(0.05, n_critic=5), t1=3.0)
    moved = five.diagnostics["critic_mean"] - five.diagnostics["critic_mean"][:1]
    assert float(jnp.max(jnp.abs(moved))) > 0.3
    assert max_state_difference(one.final, five.final) < 1e-13


def test_nonfinite_run_is_reported_with_its_time():
    problem, state = toy("T1", n_gen=4, n_critic=4, clip="none")
    state = gd.MeanFieldState(state.generator.at[0, 0].set(jnp.nan), state.critic)
    traj = train(problem, state, gd.WGANAlgorithm(0.1), t1=1.0)
    assert traj.status == "nonfinite"
    assert float(traj.final_t) == pytest.approx(0.1)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eta": 0.0}, "eta must be finite and > 0"),
        ({"eta": -0.1}, "eta must be finite and > 0"),
        ({"eta": 0.1, "eta_d": 0.0}, "eta_d must be finite and > 0"),
        ({"eta": 0.1, "n_critic": 0}, "n_critic must be an integer >= 1"),
    ],
)
def test_bad_algorithm_settings_are_refused(kwargs, match):
    eta = kwargs.pop("eta")
    with pytest.raises(ValueError, match=match):
        gd.WGANAlgorithm(eta, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"updates": "jacobi"}, "updates must be an instance of AbstractUpdateOrder, got 'jacobi'"),
        ({"clip": "never"}, "clip must be an instance of AbstractClipOrder, got 'never'"),
        ({"optimizer": "lbfgs"}, "optimizer must be an instance of GradientTransformation"),
        ({"updates": gd.ClipAfter()}, "updates must be an instance of AbstractUpdateOrder"),
    ],
)
def test_strategies_of_the_wrong_kind_are_refused(kwargs, match):
    with pytest.raises(TypeError, match=match):
        gd.WGANAlgorithm(0.1, **kwargs)


def test_bad_training_calls_are_refused():
    problem, state = toy("T1", n_gen=4, n_critic=4)
    n_data = problem.game.data.size
    too_big = gd.WGANAlgorithm(0.1, batches=gd.Minibatch(n_data + 1, replace=False))
    with pytest.raises(ValueError, match=f"batch size {n_data + 1} exceeds the {n_data} points"):
        train(problem, state, too_big, t1=1.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="pass key="):
        train(problem, state, gd.WGANAlgorithm(0.1, batches=gd.Minibatch(4)), t1=1.0)
    with pytest.raises(ValueError, match="not a positive multiple of eta"):
        train(problem, state, gd.WGANAlgorithm(0.3), t1=1.0)
    with pytest.raises(ValueError, match="must equal the game's lam"):
        train(problem, state, gd.WGANAlgorithm(0.1, eta_d=0.2, n_critic=2), t1=1.0)
    with pytest.raises(ValueError, match="batch size must be a positive integer"):
        gd.Minibatch(0)
    with pytest.raises(ValueError, match="both sides draw i.i.d."):
        gd.Minibatch(4, replace=False, data_law=gd.Normal(0.0, 1.0), latent_law=gd.Normal(0, 1))


def test_given_critic_step_consistent_with_lambda_is_the_default():
    problem, state = toy("T1", n_gen=4, n_critic=4, lam=2.0)
    implied = gd.WGANAlgorithm(0.05, n_critic=4)
    explicit = gd.WGANAlgorithm(0.05, eta_d=2.0 * 0.05 / 4, n_critic=4)
    a = train(problem, state, implied, t1=1.0)
    b = train(problem, state, explicit, t1=1.0)
    assert max_state_difference(a.final, b.final) < 1e-14
    assert float(dg.critic_mean(problem, a.final)[0]) != float(state.critic.mean())
