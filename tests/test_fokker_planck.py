"""Nonlinear Fokker–Planck flow of study J on grids: the facts of DESIGN §2.2."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from gandyn import GaussianMixture, ring_mixture
from gandyn.experiments import ConfigError, run_experiment
from gandyn.experiments.common import loglog_slope
from gandyn.solvers.fokker_planck import (
    FokkerPlanckOperator,
    js_divergence,
    solve_fokker_planck,
)
from gandyn.solvers.grid import Grid, cell_masses, discretize

STANDARD = GaussianMixture(np.array([0.0]), None, 1.0)
SHIFTED = GaussianMixture(np.array([1.0]), None, 1.0)


def test_sanity_values_of_design():
    """ρ_d = N(0,1), ρ_0 = N(1,1): JS = 0.111421, χ² = e − 1, d mean/dt = E[v] = −0.397973."""
    sol = solve_fokker_planck(STANDARD, SHIFTED, (-10.0, 12.0), 4000, 1e-3, n_saves=2)
    diag = sol.diagnostics
    assert abs(float(diag["js"][0]) - 0.111421) < 1e-4
    assert abs(float(diag["chi2"][0]) - (np.e - 1)) < 1e-4
    assert abs(float(diag["mean_velocity"][0, 0]) - (-0.397973)) < 1e-4
    js_sol = solve_fokker_planck(
        STANDARD, SHIFTED, (-10.0, 12.0), 4000, 1e-3, n_saves=2, normalisation="js"
    )
    assert abs(float(js_sol.diagnostics["mean_velocity"][0, 0]) - (-0.397973 / 2)) < 1e-4


def test_js_dissipation_rate_matches_the_velocity():
    """``dJS/dt = −½ ∫ ρ |v|²`` at t = 0, with v = −sigmoid((1 − 2y)/2) for the sanity pair."""
    grid = Grid(-10.0, 12.0, 4000)
    op = FokkerPlanckOperator(grid, STANDARD, 1.0, 1e-6)
    masses = discretize(grid, SHIFTED)
    u = op.ratio(masses)
    # d/dt Σ d_i j(u_i) = Σ j'(u_i) dm_i/dt with j'(u) = ½ log(2u/(1+u))
    rate = float(jnp.sum(0.5 * jnp.log(2 * u / (1 + u)) * op(masses)))
    expected = integrate.quad(
        lambda y: special.expit((1 - 2 * y) / 2) ** 2 * stats.norm(1, 1).pdf(y), -20, 20
    )[0]
    assert abs(rate - (-0.5 * expected)) < 1e-4


@pytest.mark.parametrize("method", ["explicit", "implicit"])
def test_data_density_is_stationary(method):
    data = GaussianMixture(np.array([-1.0, 2.0]), np.array([0.3, 0.7]), 0.6)
    sol = solve_fokker_planck(data, data, (-6.0, 7.0), 120, 2.0, method=method, n_saves=3)
    np.testing.assert_allclose(sol.densities[-1], sol.data_density, rtol=1e-12, atol=0)
    assert float(sol.diagnostics["js"][-1]) < 1e-15


def monotone(series):
    series = np.asarray(series)
    return bool(np.all(np.diff(series) <= 1e-13 * series[0]))


@pytest.mark.parametrize("method", ["explicit", "implicit"])
@pytest.mark.parametrize("normalisation", ["v", "js"])
def test_js_chi2_decrease_mass_and_min_max_principle_1d(method, normalisation):
    """At every step. Implicit: far in the tails ``u`` is known to absolute round-off only."""
    data = GaussianMixture(np.array([-1.5, 1.5]), None, 0.5)
    initial = GaussianMixture(np.array([2.5]), None, 0.4)
    kappa = 1.0 if normalisation == "v" else 0.5
    limit = float(FokkerPlanckOperator(Grid(-5.0, 6.0, 150), data, kappa, 1e-6).explicit_limit())
    steps = 120 if method == "implicit" else int(np.ceil(1.0 / limit))
    sol = solve_fokker_planck(
        data,
        initial,
        (-5.0, 6.0),
        150,
        1.0,
        method=method,
        normalisation=normalisation,
        n_saves=steps + 1,
        dt=1.0 / steps,
    )
    assert sol.num_steps == steps  # diagnostics after every step
    diag = sol.diagnostics
    assert monotone(diag["js"]) and monotone(diag["chi2"])
    assert float(diag["js"][-1]) < 0.8 * float(diag["js"][0])
    assert float(jnp.max(jnp.abs(diag["mass"] - 1))) < 1e-14
    slack = 0.0 if method == "explicit" else 1e-12
    assert float(jnp.min(diag["u_min"])) >= float(diag["u_min"][0]) * (1 - 1e-12) - slack
    assert float(jnp.max(diag["u_max"])) <= float(diag["u_max"][0]) * (1 + 1e-12)
    assert float(jnp.min(diag["density_min"])) >= 0.0


def test_fokker_planck_2d_ring():
    sol = solve_fokker_planck(
        ring_mixture(2.0, 8, 0.5),
        GaussianMixture(np.array([[0.5, 0.0]]), None, 0.5),
        (-4.5, 4.5),
        24,
        1.0,
        n_saves=41,
    )
    diag = sol.diagnostics
    assert monotone(diag["js"]) and monotone(diag["chi2"])
    assert float(jnp.max(jnp.abs(diag["mass"] - 1))) < 1e-14
    assert float(jnp.min(diag["u_min"])) >= float(diag["u_min"][0]) * (1 - 1e-12)
    assert float(jnp.max(diag["u_max"])) <= float(diag["u_max"][0]) * (1 + 1e-12)
    # symmetric in y: the mean stays on the x axis
    assert float(jnp.max(jnp.abs(diag["mean"][:, 1]))) < 1e-12


def test_grid_convergence_of_mean_and_variance_at_t1():
    """Second order in Δx (explicit dt ∝ Δx²): gaps ``|q_n − q_2n|`` shrink by ≈ 4."""
    resolutions = [100, 200, 400, 800, 1600]
    finals = []
    for cells in resolutions:
        diag = solve_fokker_planck(
            STANDARD, SHIFTED, (-8.0, 9.0), cells, 1.0, n_saves=2
        ).diagnostics
        finals.append([float(diag["mean"][-1, 0]), float(diag["variance"][-1, 0])])
    gaps = np.abs(np.diff(np.asarray(finals), axis=0))
    dx = [1 / n for n in resolutions[:-1]]
    assert 1.8 < loglog_slope(dx, gaps[:, 1]) < 2.2, gaps[:, 1]  # variance
    assert 1.8 < loglog_slope(dx[-2:], gaps[-2:, 0]) < 2.2, gaps[:, 0]  # mean, asymptotically
    # extrapolated limits at t = 1: mean 0.669652, variance 1.211000
    assert abs(finals[-1][0] - 0.669652) < 2e-6 and abs(finals[-1][1] - 1.211000) < 2e-5


def test_implicit_is_first_order_in_time():
    reference = solve_fokker_planck(STANDARD, SHIFTED, (-8.0, 9.0), 200, 1.0, n_saves=2)
    reference = solve_fokker_planck(
        STANDARD, SHIFTED, (-8.0, 9.0), 200, 1.0, n_saves=2, dt=float(reference.dt) / 8
    )
    gaps = []
    for steps in (25, 50):
        implicit = solve_fokker_planck(
            STANDARD,
            SHIFTED,
            (-8.0, 9.0),
            200,
            1.0,
            n_saves=2,
            method="implicit",
            dt=1 / steps,
        )
        assert float(implicit.diagnostics["newton_residual"][-1]) < 1e-10
        gaps.append(float(jnp.sum(jnp.abs(implicit.densities[-1] - reference.densities[-1]))))
    assert 0.9 < loglog_slope([1 / 25, 1 / 50], gaps) < 1.1, gaps


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="cells"):
        solve_fokker_planck(STANDARD, SHIFTED, (-8.0, 9.0), 0, 1.0)
    with pytest.raises(ValueError, match=r"holds only 0\.9986.*0\.00135 is lost"):
        solve_fokker_planck(STANDARD, SHIFTED, (-8.0, 3.0), 100, 1.0)
    with pytest.raises(ValueError, match="exceeds the explicit diffusive limit"):
        solve_fokker_planck(STANDARD, SHIFTED, (-8.0, 9.0), 100, 1.0, dt=0.1)
    with pytest.raises(ValueError, match="unknown normalisation"):
        solve_fokker_planck(STANDARD, SHIFTED, (-8.0, 9.0), 100, 1.0, normalisation="kl")
    with pytest.raises(ConfigError, match=r"domain: .* is lost"):
        run_experiment("fp-js-1d", domain=[-1.0, 1.0])
    with pytest.raises(ConfigError, match="init_mean"):
        run_experiment("fp-js-2d", init_mean=[0.0])


def test_fp_experiments_summaries():
    result = run_experiment("fp-js-1d", cells=100, t1=1.0, n_saves=11)
    s = result.summary
    assert s["js_monotone"] and s["chi2_monotone"] and s["max_principle"]
    assert s["mass_error"] < 1e-13 and s["js_final"] < s["js_initial"]


@pytest.mark.slow
def test_fp_2d_experiment_summary():
    two = run_experiment("fp-js-2d", cells=16, t1=0.5, n_saves=6, method="implicit")
    assert two.summary["js_monotone"] and two.summary["mass_error"] < 1e-13
    assert len(two.summary["mean_final"]) == 2


def test_js_divergence_of_identical_laws_is_zero():
    masses = jnp.asarray([0.2, 0.3, 0.5])
    assert abs(float(js_divergence(masses, masses))) < 1e-16


def test_particles_driven_by_the_grid_density_follow_the_grid():
    """Cross-check with the study-J particle flow: particles moved by the exact drift
    ``sigmoid(ℓ)∇ℓ`` with ``ρ_t`` read from the grid solution have the grid's mean and
    variance (Lagrangian and Eulerian views of one equation)."""
    from gandyn import (
        ExactDrift,
        GridDensity,
        JSFlowProblem,
        Normal,
        ParticleMeasure,
        sample_measure,
        simulate_js_flow,
    )

    sol = solve_fokker_planck(STANDARD, SHIFTED, (-8.0, 9.0), 800, 1.0, n_saves=101)
    current = GridDensity(sol.grid.low, sol.grid.high, sol.densities, np.asarray(sol.ts))
    rule = STANDARD.quadrature(16)
    problem = JSFlowProblem(
        ExactDrift(STANDARD, current),
        ParticleMeasure(rule.nodes, rule.weights),
        jnp.full(4000, 1 / 4000),
    )
    start = sample_measure(None, Normal(1.0, 1.0), 4000, "quantile").positions
    flow = simulate_js_flow(problem, start, t1=1.0, dt=0.01, save_ts=[0.0, 1.0])
    particles = np.asarray(flow.final.particles)
    mean, var = particles.mean(), particles.var()
    assert abs(mean - float(sol.diagnostics["mean"][-1, 0])) < 1e-4
    assert abs(var - float(sol.diagnostics["variance"][-1, 0])) < 1e-3  # quantile tails


def test_a_data_density_vanishing_in_the_box_stops_the_run_at_the_first_step():
    """N(0, 0.1²) underflows to exactly 0 in the cells beyond |x| ≈ 3.9 while the initial
    N(1, 1) does not: u = ρ/ρ_d is infinite there and the first step is non-finite."""
    narrow = GaussianMixture(np.array([0.0]), None, 0.1)
    grid = Grid(-8.0, 9.0, 100)
    vanishing = np.flatnonzero(np.asarray(cell_masses(grid, narrow)) == 0)
    assert vanishing[:8].tolist() == list(range(8))
    sol = solve_fokker_planck(
        narrow, SHIFTED, (-8.0, 9.0), 100, 0.1, method="implicit", dt=0.01, n_saves=3
    )
    assert sol.status == "nonfinite" and int(sol.num_steps) == 1  # stopped at once
    assert sol.failure_report() == (
        f"run stopped (nonfinite) in step 1 at t = 0.01; non-finite: cells {vanishing[:8].tolist()}"
    )
    initial = discretize(grid, SHIFTED) / grid.volume
    np.testing.assert_array_equal(sol.densities[0], initial)
    bad = set(np.flatnonzero(~np.isfinite(np.asarray(sol.densities[-1]))).tolist())
    assert set(vanishing) <= bad <= {c + d for c in vanishing for d in (-1, 0, 1)}
    result = run_experiment(
        "fp-js-1d", cells=100, t1=0.1, n_saves=3, data_std=0.1, method="implicit", dt=0.01
    )
    assert result.status == result.summary["status"] == "nonfinite"
    assert result.message == sol.failure_report() and result.summary["steps"] == 1
    assert result.summary["mean_initial"] == pytest.approx(1.0, abs=1e-12)
    assert result.summary["mean_final"] is None


@pytest.mark.parametrize("method", ["explicit", "implicit"])
def test_a_checkpointed_solve_is_the_one_call_solve_and_resumes_bit_for_bit(tmp_path, method):
    from gandyn.checkpoint import CheckpointSpec

    args = (STANDARD, SHIFTED, (-8.0, 9.0), 120, 0.5)
    kwargs = dict(method=method, n_saves=21)
    plain = solve_fokker_planck(*args, **kwargs)
    whole = solve_fokker_planck(*args, checkpoint=CheckpointSpec(tmp_path), **kwargs)
    files = sorted(tmp_path.glob("ckpt-*.npz"))
    assert [f.name for f in files] == [f"ckpt-00000{k}.npz" for k in (7, 8, 9)]
    files[-1].unlink()
    resumed = solve_fokker_planck(*args, checkpoint=CheckpointSpec(tmp_path, resume=True), **kwargs)
    for run in (whole, resumed):
        np.testing.assert_array_equal(run.densities, plain.densities)
        assert run.diagnostics.keys() == plain.diagnostics.keys()
        for name, value in plain.diagnostics.items():
            np.testing.assert_array_equal(run.diagnostics[name], value, err_msg=name)
        assert int(run.num_steps) == int(plain.num_steps)
