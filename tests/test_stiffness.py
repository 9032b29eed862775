"""The stiffness guard of PenaltyClip and the exact split that makes large beta usable."""

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize
from typer.testing import CliRunner

import gandyn as gd
from gandyn.cli import app
from gandyn.experiments.toy import build_t1
from gandyn.solvers import SOLVERS

runner = CliRunner()


def amplification(solver: diffrax.AbstractSolver, x: float) -> float:
    """``R(−x)``, measured: one diffrax step of ``y' = −y`` of length ``x`` from ``y = 1``."""
    return float(_step(solver, jnp.asarray(x)))


@jax.jit
def _step(solver, x):
    term = diffrax.ODETerm(lambda t, y, args: -y)
    return diffrax.diffeqsolve(term, solver, 0.0, x, x, jnp.asarray(1.0)).ys[-1]


def test_bounds_are_the_closed_forms_of_low_order_methods():
    # R(−x) = 1 − x + x²/2 meets 1 at x = 2 for every 2-stage order-2 method (and Euler)
    for name in ("euler", "heun", "midpoint", "ralston"):
        assert gd.stability_bound(name) == pytest.approx(2.0, abs=1e-12)
    # Bosh3: 3 stages, order 3: 1 − x + x²/2 − x³/6 = −1
    bosh3 = optimize.brentq(lambda x: 2 - x + x**2 / 2 - x**3 / 6, 2.0, 3.0, xtol=1e-14)
    assert gd.stability_bound("bosh3") == pytest.approx(bosh3, abs=1e-10)
    assert bosh3 == pytest.approx(2.5127, abs=1e-4)


@pytest.mark.parametrize("name", list(SOLVERS))
def test_the_bound_is_where_a_measured_step_stops_damping_the_decay(name):
    solver = SOLVERS[name]()
    bound = gd.stability_bound(solver)
    inside = [amplification(solver, x) for x in np.linspace(0.05, 0.999, 12) * bound]
    assert max(abs(r) for r in inside) < 1
    assert abs(amplification(solver, 1.001 * bound)) > 1


def test_implicit_solvers_have_no_bound():
    assert gd.stability_bound(diffrax.ImplicitEuler()) == math.inf
    assert gd.stability_bound(diffrax.Kvaerno5()) == math.inf


STIFF = ["--set", "clip=penalty", "--set", "beta=1000", "--set", "solver=heun"]


def test_a_stiff_penalty_is_refused_before_any_work_naming_beta_dt_and_solver(tmp_path):
    out = tmp_path / "stiff"
    result = runner.invoke(app, ["run", "toy-shift-linear", *STIFF, "--out", str(out)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    for needle in ("beta", "1000", "0.01", "heun", "dt < 0.002", "clip=penalty-split"):
        assert needle in message
    assert not out.exists()


def t1(constraint, n=8):
    """T1's default game and initial particles (``n`` + ``n`` of them), ``constraint``."""
    config = gd.experiments.resolve_config(
        gd.experiments.get_experiment("toy-shift-linear"), {"n_gen": n, "n_critic": n}
    )
    problem, state = build_t1(config)
    weights = problem.generator_weights, problem.critic_weights
    return gd.MeanFieldProblem(problem.game, constraint, *weights), state


def test_simulate_refuses_a_stiff_penalty_at_trace_time_and_under_vmap():
    problem, state = t1(gd.PenaltyClip(0.5, 1000.0))
    with pytest.raises(ValueError, match=r"beta \* dt = 1000 \* 0.01 = 10 .* heun"):
        gd.simulate(problem, state, t1=1.0, dt=0.01, solver="heun")

    def final_mean(beta):
        stiff = gd.MeanFieldProblem(
            problem.game,
            gd.PenaltyClip(problem.constraint.c, beta),
            problem.generator_weights,
            problem.critic_weights,
        )
        traj = gd.simulate(stiff, state, t1=0.1, dt=0.01, solver="heun")
        return traj.final.critic.mean()

    assert np.all(np.isfinite(jax.vmap(final_mean)(jnp.array([10.0, 100.0]))))
    with pytest.raises(Exception, match="stability bound of heun"):
        jax.block_until_ready(jax.vmap(final_mean)(jnp.array([10.0, 1000.0])))
    # an adaptive controller resolves the stiffness itself: not refused
    traj = gd.simulate(
        problem,
        state,
        t1=0.05,
        dt=0.01,
        solver="tsit5",
        stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-8),
    )
    assert traj.status == "ok"


def test_the_split_decay_is_the_exact_flow_of_the_penalty_term():
    c, beta, dt = 0.5, 30.0, 0.07
    u = jnp.array([[0.9, -0.2, -1.4], [0.5, 0.49, -0.6]])
    split = gd.SplitPenaltyClip(c, beta, dt)
    decay = gd.PenaltyClip(c, beta)
    exact = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: decay.velocity(y, jnp.zeros_like(y))),
        diffrax.Dopri8(),
        0.0,
        dt,
        dt / 50,
        u,
        stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-14),
    ).ys[-1]
    np.testing.assert_allclose(split.project(u), exact, atol=1e-11)
    np.testing.assert_array_equal(split.project(u)[0, 1], u[0, 1])  # inside: untouched
    with pytest.raises(ValueError, match="dt = 0.07, the run steps dt = 0.01"):
        gd.simulate(*t1(split), t1=0.1, dt=0.01)


def first_contact_closed_form(problem, state) -> float:
    """DESIGN §1.4: the first t > 0 with ω̄(t) − ω̄₀ = c − max ω_j(0) or −c − min ω_j(0)."""
    lam, c = float(problem.game.lam), float(problem.constraint.c)
    y0 = float(jnp.mean(state.generator) - problem.game.data.mean()[0])
    w = np.asarray(state.critic[:, 0])
    w0, r = float(w.mean()), math.sqrt(lam)

    def shift(t):
        return w0 * math.cos(r * t) - r * y0 * math.sin(r * t) - w0

    ts = np.linspace(1e-6, 2 * math.pi / r, 20001)
    gap = [max(shift(t) - (c - w.max()), -c - w.min() - shift(t)) for t in ts]
    k = int(np.argmax(np.asarray(gap) >= 0))
    return optimize.brentq(
        lambda t: max(shift(t) - (c - w.max()), -c - w.min() - shift(t)), ts[k - 1], ts[k]
    )


def test_the_split_finds_the_wall_contact_the_explicit_penalty_missed():
    problem, state = t1(gd.SplitPenaltyClip(0.5, 1000.0, 0.01), n=64)
    exact = first_contact_closed_form(problem, state)
    assert exact == pytest.approx(0.4132, abs=1e-4)  # the default T1's closed form
    traj = gd.simulate(problem, state, t1=0.5, dt=0.01, solver="heun")
    assert traj.status == "ok"
    assert float(traj.final.first_times["wall_contact"]) == pytest.approx(exact, abs=1e-3)
    assert float(traj.diagnostics["wall_fraction"][-1]) > 0.3  # the stalled run: 0
    # the penalty flow resolved by small explicit steps (beta dt = 0.5): the same path
    resolved_problem, _ = t1(gd.PenaltyClip(0.5, 1000.0), n=64)
    resolved = gd.simulate(resolved_problem, state, t1=0.5, dt=5e-4, solver="heun")
    assert float(resolved.final.first_times["wall_contact"]) == pytest.approx(exact, abs=1e-3)
    np.testing.assert_allclose(
        traj.diagnostics["critic_mean"][-1], resolved.diagnostics["critic_mean"][-1], atol=0.01
    )
