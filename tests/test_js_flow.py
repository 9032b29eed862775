"""The particle ODE of the JS flow: mean velocity at t = 0, JS decrease, dissipation, and
agreement with the grid Fokker–Planck solution at t = 1 within the CLT error of N particles."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gandyn as gd
from gandyn.experiments import run_experiment
from gandyn.solvers.fokker_planck import solve_fokker_planck

DATA = gd.GaussianMixture([0.0])
RHO0 = gd.GaussianMixture([1.0])


def points(law, size=40):
    rule = law.quadrature(size)
    return gd.ParticleMeasure(rule.nodes, rule.weights)


@pytest.mark.parametrize(("normalisation", "factor"), [("v", 1.0), ("js", 0.5)])
def test_mean_velocity_at_t0_is_the_sanity_value(normalisation, factor):
    """d mean/dt (0) = c E_ρ0[v] = −0.397973 c (DESIGN §2.2); zero at the data."""
    rho0 = points(RHO0, 60)
    problem = gd.JSFlowProblem(gd.ExactDrift(DATA, RHO0), points(DATA), rho0.weights, normalisation)
    state = problem.initial_state(rho0.positions)
    velocity = problem.vector_field(0.0, state).particles
    np.testing.assert_allclose(rho0.weights @ velocity[:, 0], -0.3979728 * factor, atol=1e-7)
    at_data = gd.JSFlowProblem(gd.ExactDrift(DATA, DATA), points(DATA), rho0.weights)
    assert np.all(at_data.velocity(0.0, at_data.initial_state(rho0.positions)) == 0)


def test_kde_particle_flow_decreases_js_and_moves_towards_the_data():
    x0 = RHO0.sample(jax.random.key(3), 400)
    problem = gd.JSFlowProblem(gd.KDEDrift(DATA), points(DATA), jnp.full(400, 1 / 400))
    traj = gd.simulate_js_flow(problem, x0, t1=1.0, dt=0.05)
    js = np.asarray(traj.diagnostics["js"])
    assert traj.status == "ok"
    assert np.all(np.diff(js) < 0) and js[-1] < 0.6 * js[0]
    mean = np.asarray(traj.diagnostics["mean"][:, 0])
    assert np.all(np.diff(mean) < 0)
    # Order is preserved by a 1-D flow map (particles never cross).
    order = np.argsort(np.asarray(x0[:, 0]))
    assert np.all(np.diff(np.asarray(traj.final.particles[order, 0])) > 0)


@pytest.fixture(scope="module")
def fokker_planck():
    return solve_fokker_planck(DATA, RHO0, (-8.0, 9.0), 400, 1.0, n_saves=21)


def test_exact_drift_particles_track_the_grid_fokker_planck_at_t1(fokker_planck):
    """Particles drawn i.i.d. from ρ_0 and moved with the exact drift (ρ_t interpolated from
    the grid solution) are i.i.d. draws of ρ_1: their mean and variance differ from the grid's
    by at most 4 CLT standard errors (sd/√N, and √(μ4 − σ⁴)/√N) plus the grid's own error
    (< 1e-3 here: 400 and 800 cells agree to 2e-4; deterministic quantile particles to 6e-4).
    The changes since t = 0 cancel the initial sampling error and are checked the same way."""
    fp, n = fokker_planck, 4000
    grid = gd.GridDensity(fp.grid.low, fp.grid.high, fp.densities, np.asarray(fp.ts))
    problem = gd.JSFlowProblem(gd.ExactDrift(DATA, grid), points(DATA), jnp.full(n, 1 / n))
    x0 = RHO0.sample(jax.random.key(0), n)
    traj = gd.simulate_js_flow(problem, x0, t1=1.0, dt=0.05, save_ts=np.asarray(fp.ts))
    x0, x1 = np.asarray(x0[:, 0]), np.asarray(traj.final.particles[:, 0])
    mean_fp = np.asarray(fp.diagnostics["mean"][:, 0])
    var_fp = np.asarray(fp.diagnostics["variance"][:, 0])
    grid_error = 1e-3
    se_mean = x1.std() / math.sqrt(n)
    se_var = ((x1 - x1.mean()) ** 2).std() / math.sqrt(n)
    assert abs(x1.mean() - mean_fp[-1]) < 4 * se_mean + grid_error
    assert abs(x1.var() - var_fp[-1]) < 4 * se_var + grid_error
    shift = x1 - x0
    se_shift = shift.std() / math.sqrt(n)
    assert abs(shift.mean() - (mean_fp[-1] - mean_fp[0])) < 4 * se_shift + grid_error
    m2 = (x1 - 1) ** 2 - (x0 - 1) ** 2
    m2_fp = var_fp[-1] + (mean_fp[-1] - 1) ** 2 - var_fp[0]
    assert abs(m2.mean() - m2_fp) < 4 * m2.std() / math.sqrt(n) + grid_error
    # dJS/dt = −½ E|v|²: the drop of the particles' JS matches the integrated dissipation
    # (trapezoid on 21 saves; both sides use the same particles).
    js = np.asarray(traj.diagnostics["js"])
    dissipation = np.trapezoid(np.asarray(traj.diagnostics["dissipation"]), np.asarray(traj.ts))
    assert np.all(np.diff(js) < 0)
    np.testing.assert_allclose(js[0] - js[-1], dissipation, rtol=0.03)


def test_js_flow_experiment_with_a_neural_drift_moves_towards_the_data():
    result = run_experiment(
        "js-flow-particles",
        estimator="neural",
        n_particles=200,
        t1=0.5,
        dt=0.05,
        n_saves=6,
        cells=100,
        disc_pretrain=300,
        disc_width=16,
    )
    summary = result.summary
    assert summary["status"] == "ok"
    assert summary["js_final"] < summary["js_initial"]
    assert summary["mean_final"][0] < 2.0 and summary["mean_final_grid"][0] < 2.0
    series = result.trajectory["diag_mean"][:, 0]
    assert np.all(np.diff(series) < 0)


class UndefinedAfter(gd.KDEDrift):
    """The kernel estimate, undefined (NaN) from time ``t_fail`` on: until then the flow is
    that of KDEDrift."""

    t_fail: float = 0.5

    def logit(self, y, measure, t=0.0):
        return jnp.where(t < self.t_fail, super().logit(y, measure, t), jnp.nan)


def test_a_nonfinite_drift_stops_the_flow_and_keeps_the_saves_before_it():
    x0 = RHO0.sample(jax.random.key(3), 100)
    weights = jnp.full(100, 1 / 100)
    clean = gd.JSFlowProblem(gd.KDEDrift(DATA), points(DATA), weights)
    broken = gd.JSFlowProblem(UndefinedAfter(DATA), points(DATA), weights)
    reference = gd.simulate_js_flow(clean, x0, t1=2.0, dt=0.05)
    run = gd.simulate_js_flow(broken, x0, t1=2.0, dt=0.05)
    assert reference.status == "ok" and run.status == "nonfinite"
    # Heun's second stage of the step from 0.45 reads the drift at 0.5: that step fails
    assert float(run.final_t) == pytest.approx(0.5, abs=1e-12)
    assert np.isnan(np.asarray(run.final.particles)).any()
    before = np.asarray(run.ts) < 0.5 - 1e-9
    assert before.sum() == 10
    for name, series in run.diagnostics.items():
        np.testing.assert_array_equal(
            np.asarray(series)[before], np.asarray(reference.diagnostics[name])[before], name
        )
        assert not np.isfinite(np.asarray(series)[~before]).all()
    report = run.failure_report()
    assert report is not None and "t = 0.5" in report and "non-finite: particles" in report
