"""The particle ODE: closed forms of toy T1, clipping behaviour, solver orders."""

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

import gandyn as gd
from gandyn import diagnostics as dg

DATA_MEAN = 0.5


def t1_problem(constraint, *, lam=1.0, n_critic=16, low=-0.1, high=0.15, gen_mean=1.3):
    data = gd.GaussianMixture([[-1.0], [2.0]], [0.5, 0.5], 0.3).quadrature(8)
    latent = gd.Normal(0.0, 1.0).quadrature(8)
    game = gd.MeanFieldGame(gd.ShiftUnit(1), gd.LinearCritic(1), data, latent, lam=lam)
    gen = gd.sample_measure(jax.random.key(0), gd.Normal(gen_mean, 0.5), 12, "quantile")
    critic = gd.sample_measure(jax.random.key(1), gd.Uniform(low, high), n_critic, "quantile")
    return gd.MeanFieldProblem.from_measures(game, constraint, gen, critic)


def oscillator(t, lam, y0, w0):
    """Closed form of (y, ω̄) off the walls: ẏ = ω̄, dω̄/dt = −λ y."""
    r = math.sqrt(lam)
    return y0 * np.cos(r * t) + w0 / r * np.sin(r * t), w0 * np.cos(r * t) - r * y0 * np.sin(r * t)


def phase(traj):
    return traj.diagnostics["generated_mean"][:, 0] - DATA_MEAN, traj.diagnostics["critic_mean"][
        :, 0
    ]


def test_unclipped_t1_is_the_harmonic_oscillator_with_period_2pi_over_sqrt_lambda():
    lam = 2.0
    problem, state = t1_problem(None, lam=lam)
    diagnostics = dg.default_diagnostics() | {"invariant": dg.toy_invariant}
    traj = gd.simulate(
        problem,
        state,
        t1=30.0,
        dt=0.01,
        solver="tsit5",
        diagnostics=diagnostics,
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-12),
    )
    y, w = phase(traj)
    y_exact, w_exact = oscillator(np.asarray(traj.ts), lam, float(y[0]), float(w[0]))
    np.testing.assert_allclose(y, y_exact, atol=1e-8)
    np.testing.assert_allclose(w, w_exact, atol=1e-8)
    period = dg.period(traj.ts, w, 15.0)
    assert float(period) == pytest.approx(2 * np.pi / np.sqrt(lam), rel=1e-3)
    h = traj.diagnostics["invariant"]
    assert float(jnp.max(jnp.abs(h - h[0]))) < 1e-8 * float(h[0])


def closed_form_first_contact(lam, y0, w0, upper, lower):
    """First t > 0 with ω̄(t) − ω̄₀ = upper or = lower (levels from the extreme particles)."""
    ts = np.linspace(0, 4 * np.pi / np.sqrt(lam), 200_001)
    shift = oscillator(ts, lam, y0, w0)[1] - w0
    hit = np.flatnonzero((shift >= upper) | (shift <= lower))
    k = hit[0]
    level = upper if shift[k] >= upper else lower
    return optimize.brentq(lambda t: oscillator(t, lam, y0, w0)[1] - w0 - level, ts[k - 1], ts[k])


@pytest.mark.parametrize("lam,c", [(1.0, 0.5), (3.0, 0.4)])
def test_hard_clip_first_contact_matches_the_closed_form_within_one_step(lam, c):
    problem, state = t1_problem(gd.HardClip(c), lam=lam)
    dt = 1e-3
    traj = gd.simulate(problem, state, t1=2.0, dt=dt, solver="heun")
    omega0 = np.asarray(state.critic[:, 0])
    y0 = float(phase(traj)[0][0])
    expected = closed_form_first_contact(
        lam, y0, omega0.mean(), c - omega0.max(), -c - omega0.min()
    )
    detected = float(dg.first_time(traj.ts, traj.diagnostics["wall_fraction"] > 0))
    assert abs(detected - expected) <= dt


def test_hard_clip_keeps_every_critic_coordinate_in_the_box_exactly():
    result = gd.experiments.run_experiment(
        "neuron-bimodal-1d", t1=6.0, n_gen=32, n_critic=32, c=0.6, n_snapshots=13
    )
    snaps = result.trajectory["snapshot_critic"]
    assert np.abs(snaps).max() <= 0.6
    assert np.any(np.abs(snaps) == 0.6)  # the walls are reached
    assert result.trajectory["diag_critic_max_abs"].max() <= 0.6
    assert result.summary["wall_fraction_max"] > 0


def test_euler_with_hard_clip_is_the_clipped_simultaneous_gradient_step():
    problem, state = t1_problem(gd.HardClip(0.12))
    dt = 0.05
    traj = gd.simulate(problem, state, t1=dt, dt=dt, solver="euler")
    gen, critic = problem.measures(state)
    v_gen = gd.generator_velocity(problem.game, gen, critic)
    v_critic = gd.critic_velocity(problem.game, gen, critic)
    np.testing.assert_allclose(traj.final.generator, state.generator + dt * v_gen, rtol=1e-14)
    expected = jnp.clip(state.critic + dt * v_critic, -0.12, 0.12)
    np.testing.assert_allclose(traj.final.critic, expected, rtol=1e-15, atol=1e-17)
    assert float(jnp.max(jnp.abs(traj.final.critic))) == 0.12  # clipped exactly


def test_a_single_hard_clipped_atom_settles_on_the_circle_h_equals_c_squared():
    c = 0.3
    problem, state = t1_problem(gd.HardClip(c), n_critic=1, low=0.0, high=0.02)
    traj = gd.simulate(
        problem, state, t1=20.0, dt=1e-3, solver="heun", diagnostics={"invariant": dg.toy_invariant}
    )
    h = np.asarray(traj.diagnostics["invariant"])
    assert h[0] > 1.5 * c**2
    late = np.asarray(traj.ts) > 10.0
    np.testing.assert_allclose(h[late], c**2, rtol=5e-3)


def test_penalty_clip_tends_to_hard_clip_as_beta_grows():
    c, t1 = 0.3, 6.0
    ts = np.linspace(0, t1, 301)
    hard_problem, state = t1_problem(gd.HardClip(c))
    hard = gd.simulate(hard_problem, state, t1=t1, dt=2e-4, solver="heun", save_ts=ts)
    errors = []
    for beta in (10.0, 100.0, 1000.0):
        problem, state = t1_problem(gd.PenaltyClip(c, beta))
        traj = gd.simulate(
            problem,
            state,
            t1=t1,
            dt=1e-3,
            solver="tsit5",
            save_ts=ts,
            stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-10),
        )
        assert traj.status == "ok"
        errors.append(
            float(
                jnp.max(jnp.abs(traj.diagnostics["critic_mean"] - hard.diagnostics["critic_mean"]))
            )
        )
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.02 * errors[0] ** 0 * 0.05  # within 1e-3 at beta = 1000


def leave_time(ts, omega, after, c, margin=0.02):
    """First time after ``after`` that the atom is more than ``margin`` inside −c."""
    mask = (ts > after) & (omega > -c + margin)
    return ts[np.argmax(mask)]


def test_smooth_clip_equals_hard_clip_before_contact_and_lags_after_it():
    c, dt, t1 = 0.3, 1e-3, 6.0
    hard_problem, state = t1_problem(gd.HardClip(c), n_critic=1, low=0.0, high=0.02)
    hard = gd.simulate(hard_problem, state, t1=t1, dt=dt, solver="heun")
    ts = np.asarray(hard.ts)
    contact = float(dg.first_time(hard.ts, hard.diagnostics["wall_fraction"] > 0))
    hard_omega = np.asarray(hard.diagnostics["critic_mean"][:, 0])
    far = (ts < contact) & (hard_omega > -c + 0.1)  # before contact, 0.1 from the wall
    lags, gaps = [], []
    for beta in (100.0, 400.0):
        problem, state = t1_problem(gd.SmoothClip(c, beta), n_critic=1, low=0.0, high=0.02)
        smooth = gd.simulate(
            problem,
            state,
            t1=t1,
            dt=dt,
            solver="heun",
            diagnostics=dg.default_diagnostics() | {"u": lambda p, s: s.critic[0, 0]},
        )
        omega = np.asarray(smooth.diagnostics["critic_mean"][:, 0])
        gaps.append(np.abs(omega[far] - hard_omega[far]).max())
        u = np.asarray(smooth.diagnostics["u"])
        assert u.min() < -c < omega.min()  # u passes the wall, ω never reaches it
        lags.append(leave_time(ts, omega, contact, c) - leave_time(ts, hard_omega, contact, c))
    assert gaps[1] < 1e-8 and gaps[0] < 1e-3  # equal up to O(exp(−β · distance))
    assert lags[0] > lags[1] > 0  # hysteresis, shrinking as beta grows


def order_problem(constraint):
    data = gd.GaussianMixture([[-1.0], [1.0]], None, 0.4).quadrature(6)
    latent = gd.Normal(0.0, 1.0).quadrature(6)
    game = gd.MeanFieldGame(gd.NeuronUnit(1, 1), gd.NeuronCritic(1), data, latent, lam=1.3)
    gen = gd.ParticleMeasure(jax.random.normal(jax.random.key(0), (5, 3)))
    critic = gd.ParticleMeasure(0.5 * jax.random.normal(jax.random.key(1), (5, 3)))
    return gd.MeanFieldProblem.from_measures(game, constraint, gen, critic)


@pytest.mark.parametrize(
    "solver,order,dts",
    [
        ("euler", 1, [0.02, 0.01, 0.005]),
        ("heun", 2, [0.04, 0.02, 0.01]),
        ("tsit5", 5, [0.2, 0.1, 0.05]),
    ],
)
def test_projected_solver_keeps_the_inner_order_on_a_smooth_problem(solver, order, dts):
    t1 = 1.6
    problem, state = order_problem(None)
    reference = gd.simulate(
        problem,
        state,
        t1=t1,
        dt=0.01,
        solver="dopri8",
        stepsize_controller=diffrax.PIDController(rtol=1e-13, atol=1e-13),
    )
    problem, state = order_problem(gd.HardClip(50.0))  # box never reached: projection inert
    errors = []
    for dt in dts:
        traj = gd.simulate(problem, state, t1=t1, dt=dt, solver=solver)
        diff = jax.tree_util.tree_map(
            lambda a, b: jnp.max(jnp.abs(a - b)), traj.final, reference.final
        )
        errors.append(max(jax.tree_util.tree_leaves(diff)))
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert slope == pytest.approx(order, abs=0.1 * order + 0.1)


def test_nonfinite_state_stops_the_run_and_keeps_what_came_before():
    problem, state = t1_problem(None, lam=1e12)  # Euler is unstable at this lambda
    traj = gd.simulate(problem, state, t1=5.0, dt=0.01, solver="euler")
    assert traj.status == "nonfinite"
    stop = float(traj.final_t)
    assert 0 < stop < 5.0
    kept = np.asarray(traj.ts) < stop - 0.01
    assert kept.sum() > 3 and np.all(np.isfinite(traj.diagnostics["critic_mean"][kept]))
    report = traj.failure_report()
    assert report is not None and "critic particles" in report and f"{stop:.6g}" in report


def test_hard_clip_refuses_adaptive_steps_and_bad_times():
    problem, state = t1_problem(gd.HardClip(0.5))
    with pytest.raises(ValueError, match="fixed steps"):
        gd.simulate(
            problem,
            state,
            t1=1.0,
            dt=0.1,
            stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6),
        )
    with pytest.raises(ValueError, match="multiple of dt"):
        gd.simulate(problem, state, t1=1.0, dt=0.3)
    with pytest.raises(ValueError, match="t0 < t1"):
        gd.simulate(problem, state, t1=-1.0, dt=0.1)
