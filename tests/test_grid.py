"""Finite-volume continuity solver: invariants, orders of convergence, blow-up on the walls."""

import functools
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gandyn import (
    MUSCL,
    GaussianMixture,
    HardClip,
    LinearCritic,
    MeanFieldGame,
    MeanFieldProblem,
    NoConstraint,
    Normal,
    PenaltyClip,
    ShiftUnit,
    Upwind,
    sample_measure,
    simulate,
)
from gandyn.checkpoint import CheckpointSpec
from gandyn.diagnostics import wasserstein1_1d
from gandyn.experiments import ConfigError, run_experiment
from gandyn.experiments.common import loglog_slope
from gandyn.experiments.grid_blowup import MODELS
from gandyn.solvers.grid import (
    ContinuityProblem,
    Grid,
    discretize,
    outflow_rate,
    solve_continuity,
    transport_rate,
)
from gandyn.units import AbstractCriticUnit

DATA = GaussianMixture(np.array([-1.0, 1.0]), None, 0.3)  # mean 0


def t1_game(lam=1.0, critic=None):
    critic = LinearCritic(1) if critic is None else critic
    return MeanFieldGame(
        ShiftUnit(1), critic, DATA.quadrature(8), Normal(0.0, 1.0).quadrature(8), lam
    )


def test_grid_rejects_bad_input():
    for cells in (0, -3, 1, 2.5, (10, 0)):
        with pytest.raises(ValueError, match="cells"):
            Grid(0.0, 1.0, cells)
    with pytest.raises(ValueError, match="low < high"):
        Grid(1.0, 0.0, 10)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        Grid([0.0, 0.0, 0.0], 1.0, 4)


def test_discretize_is_exact_and_reports_lost_mass():
    grid = Grid(-6.0, 6.0, 7)
    masses = discretize(grid, Normal(0.5, 1.0))
    edges = np.asarray(grid.edges(0))
    from scipy.stats import norm

    expected = np.diff(norm.cdf(edges, 0.5, 1.0))
    np.testing.assert_allclose(masses, expected / expected.sum(), rtol=1e-11)
    with pytest.raises(ValueError, match=r"holds only 0\.68.*0\.317 is lost"):
        discretize(Grid(-1.0, 1.0, 20), Normal(0.0, 1.0))


@functools.partial(jax.jit, static_argnums=3)
def random_step(grid, masses, velocities, scheme):
    """One step at Courant number 0.999 × the limit with frozen velocities."""
    dt = 0.999 * scheme.cfl_limit / outflow_rate(grid, velocities)
    stage = masses + dt * transport_rate(grid, masses, velocities, scheme)
    if scheme.stages == 1:
        return stage
    return 0.5 * (masses + stage + dt * transport_rate(grid, stage, velocities, scheme))


@pytest.mark.parametrize("scheme", [Upwind(), MUSCL()], ids=repr)
@pytest.mark.parametrize("cells", [(37,), (13, 17)])
def test_random_step_conserves_mass_and_positivity(scheme, cells):
    grid = Grid(np.zeros(len(cells)), np.ones(len(cells)) * 2.0, cells)
    for seed in range(5):
        keys = jax.random.split(jax.random.key(seed), 3)
        masses = jax.random.uniform(keys[0], cells) ** 4
        masses = jnp.where(jax.random.uniform(keys[1], cells) < 0.3, 0.0, masses)
        velocities = [
            3 * jax.random.normal(jax.random.fold_in(keys[2], k), grid.face_shape(k))
            for k in range(grid.dim)
        ]
        new = random_step(grid, masses, velocities, scheme)
        assert abs(float(jnp.sum(new) - jnp.sum(masses))) < 1e-14 * float(jnp.sum(masses))
        assert float(jnp.min(new)) >= 0.0


@pytest.mark.parametrize("scheme", [Upwind(), MUSCL()], ids=repr)
def test_zero_flux_walls_hold_mass(scheme):
    grid = Grid(0.0, 1.0, 20)
    masses = jnp.zeros(20).at[-1].set(0.7).at[0].set(0.3)
    outward = [jnp.where(grid.faces(0)[:, 0] > 0.5, 1.0, -1.0)]
    # mass in the wall cells with the field pointing out of the box does not move
    np.testing.assert_array_equal(transport_rate(grid, masses, outward, scheme), 0.0)
    bump = discretize(grid, Normal(0.5, 0.08))
    for _ in range(400):
        bump = bump + 0.02 * transport_rate(grid, bump, outward, scheme)
    assert abs(float(bump[0] + bump[-1]) - 1) < 1e-12  # everything piled on the walls


def t1_problem(cells, scheme, critic_box=(-1.5, 1.5), constraint=None, critic=None):
    return ContinuityProblem(
        t1_game(critic=critic),
        constraint,
        Grid(-3.0, 4.0, cells),
        Grid(*critic_box, cells),
        scheme,
    )


def shifted_masses(grid, mean, std, shift):
    return discretize(grid, Normal(mean + shift, std))


@pytest.mark.parametrize(
    ("scheme", "fitted", "local"),
    [(Upwind(), (0.85, 1.1), (0.9, 1.1)), (MUSCL(), (1.6, 2.3), (1.8, 2.3))],
)
def test_order_of_convergence_on_smooth_transport(scheme, fitted, local):
    """T1 without walls: both densities translate rigidly along the closed-form oscillator.

    L1 error of the cell masses; the minmod limiter clips the extrema, so MUSCL reaches its
    second order only asymptotically (the local order of the two finest grids)."""
    t = 1.0
    y0, omega0 = 0.5, 0.0  # generator N(0.5, 0.5²) against data mean 0; critic N(0, 0.25²)
    omega_t = omega0 * np.cos(t) - y0 * np.sin(t)
    y_t = y0 * np.cos(t) + omega0 * np.sin(t)
    resolutions = [100, 200, 400]
    errors = []
    for cells in resolutions:
        problem = t1_problem(cells, scheme, (-2.0, 2.0))
        state = problem.initial_state(Normal(0.5, 0.5), Normal(0.0, 0.25))
        traj = solve_continuity(problem, state, t1=t, save_ts=[0.0, t])
        exact_critic = shifted_masses(problem.critic_grid, 0.0, 0.25, omega_t - omega0)
        exact_gen = shifted_masses(problem.generator_grid, 0.5, 0.5, y_t - y0)
        errors.append(
            float(jnp.sum(jnp.abs(traj.final.critic - exact_critic)))
            + float(jnp.sum(jnp.abs(traj.final.generator - exact_gen)))
        )
    order = loglog_slope([1 / n for n in resolutions], errors)
    finest = loglog_slope([1 / n for n in resolutions[-2:]], errors[-2:])
    assert fitted[0] < order < fitted[1] and local[0] < finest < local[1], (order, errors)


def test_cfl_violation_by_fixed_dt_is_an_error():
    problem = t1_problem(200, Upwind())
    state = problem.initial_state(Normal(0.5, 0.3), Normal(0.0, 0.1))
    with pytest.raises(ValueError, match=r"violates the CFL limit of Upwind"):
        solve_continuity(problem, state, t1=1.0, dt=0.1)
    with pytest.raises(ValueError, match=r"courant must be in \(0, 0.5\]"):
        solve_continuity(t1_problem(200, MUSCL()), state, t1=1.0, courant=0.8)


def test_constraint_and_grid_must_agree():
    with pytest.raises(ValueError, match=r"must be the clip box"):
        t1_problem(50, Upwind(), (-1.0, 1.0), HardClip(0.5))
    with pytest.raises(ValueError, match="must extend beyond"):
        t1_problem(50, Upwind(), (-0.5, 0.5), PenaltyClip(0.5, 4.0))
    with pytest.raises(TypeError, match="scheme must be an instance of AbstractScheme"):
        t1_problem(50, "weno")


def blowup_runs(resolutions):
    runs = {}
    for cells in resolutions:
        problem = t1_problem(cells, Upwind(), (-0.5, 0.5), HardClip(0.5))
        state = problem.initial_state(Normal(0.5, 0.3), Normal(0.0, 0.1))
        runs[cells] = solve_continuity(problem, state, t1=2.0, save_ts=np.linspace(0, 2, 41))
    return runs


def test_sup_norm_converges_before_contact_and_grows_like_one_over_dx_after():
    resolutions = [100, 200, 400]
    runs = blowup_runs(resolutions)
    dx = [1.0 / n for n in resolutions]
    ts = np.asarray(runs[400].ts)
    # closed form: the bump N(0, 0.1²) shifts by −0.5 sin t; its 4σ edge meets −c at sin t = 0.2
    before = int(np.searchsorted(ts, 0.1))
    after = int(np.searchsorted(ts, 1.5))
    sup = {n: np.asarray(r.diagnostics["critic_sup"]) for n, r in runs.items()}
    assert abs(loglog_slope(dx, [sup[n][before] for n in resolutions])) < 0.01
    assert abs(sup[400][before] - 1 / (0.1 * np.sqrt(2 * np.pi))) < 0.05  # the bump's peak
    exponent = -loglog_slope(dx, [sup[n][after] for n in resolutions])
    assert 0.9 < exponent < 1.05, exponent
    for run in runs.values():
        diag = run.diagnostics
        assert float(jnp.max(jnp.abs(diag["critic_mass"] - 1))) < 1e-13
        assert float(jnp.min(diag["critic_min"])) >= 0.0


@pytest.mark.slow
def test_penalty_clip_sup_stays_bounded():
    local = []
    for beta in (1.0, 2.0):
        sups = []
        for cells in (200, 400, 800, 1600):
            problem = t1_problem(cells, MUSCL(), (-1.5, 1.5), PenaltyClip(0.5, beta))
            state = problem.initial_state(Normal(0.5, 0.3), Normal(0.0, 0.1))
            run = solve_continuity(problem, state, t1=6.0, save_ts=np.linspace(0, 6, 61))
            sups.append(float(jnp.max(run.diagnostics["critic_sup"])))
        slopes = -np.diff(np.log(sups)) / np.diff(np.log([1 / 200, 1 / 400, 1 / 800, 1 / 1600]))
        assert np.all(np.diff(slopes) < 0) and slopes[-1] < 0.3, slopes  # exponent → 0
        local.append(sups[-1])
    assert local[1] > local[0]  # grows with beta


@pytest.mark.parametrize("model", ["t1", pytest.param("t2", marks=pytest.mark.slow)])
def test_grid_matches_particles_before_contact(model):
    """T1 and the 1-D-parameter T2 without walls: W1 between particle and grid measures → 0
    for both players (the particles follow the same velocity function)."""
    t, distances = 1.0, []
    gen_unit, critic_unit = MODELS[model]
    game = MeanFieldGame(
        gen_unit, critic_unit, DATA.quadrature(8), Normal(0.0, 1.0).quadrature(8), 1.0
    )
    gen_law, critic_law = Normal(0.5, 0.3), Normal(0.0, 0.1)
    key = jax.random.key(0)
    gen = sample_measure(key, gen_law, 2000, "quantile")
    critic = sample_measure(key, critic_law, 2000, "quantile")
    particles, state = MeanFieldProblem.from_measures(game, NoConstraint(), gen, critic)
    traj = simulate(particles, state, t1=t, dt=0.005, solver="heun", save_ts=[0.0, t])
    for cells in (100, 400):
        problem = ContinuityProblem(
            game, None, Grid(-3.0, 4.0, cells), Grid(-1.5, 1.5, cells), MUSCL()
        )
        run = solve_continuity(
            problem, problem.initial_state(gen_law, critic_law), t1=t, save_ts=[0.0, t]
        )
        distances.append(
            sum(
                float(wasserstein1_1d(p[:, 0], w, grid.centres()[:, 0], masses))
                for p, w, grid, masses in (
                    (traj.final.critic, critic.weights, problem.critic_grid, run.final.critic),
                    (
                        traj.final.generator,
                        gen.weights,
                        problem.generator_grid,
                        run.final.generator,
                    ),
                )
            )
        )
    # W1 of cell-centre atoms to a smooth law is ≈ Δx/4 per player: first order in Δx
    assert distances[1] < distances[0] / 3.5 and distances[1] < 0.008, distances


def test_grid_blowup_experiment_runs_and_validates():
    result = run_experiment(
        "grid-blowup", resolutions=[50, 100], penalty_betas=[1.0], t1=1.0, n_saves=21
    )
    summary = result.summary
    assert summary["status"] == "ok"
    assert summary["mass_error"] < 1e-12 and summary["density_min"] >= 0
    assert summary["contact_time"] is not None and 0.6 < summary["blowup_exponent"] < 1.1
    with pytest.raises(ConfigError, match=r"gen_domain: .* is lost"):
        run_experiment("grid-blowup", gen_domain=[0.0, 1.0])
    with pytest.raises(ConfigError, match="resolutions"):
        run_experiment("grid-blowup", resolutions=[100])


class DomainCritic(AbstractCriticUnit):
    """The linear critic ``ω x`` on ``x ≥ low`` only (NaN below): the T1 game until the
    generated points ``z + θ̄`` cross ``low``, then non-finite velocities."""

    data_dim: int = eqx.field(static=True)
    low: float

    def __init__(self, low: float):
        self.data_dim, self.low = 1, low

    @property
    def param_dim(self) -> int:
        return 1

    def __call__(self, omega, x):
        return (omega @ x) * jnp.where(x[0] >= self.low, 1.0, jnp.nan)


def test_a_nonfinite_state_stops_the_run_and_keeps_the_saves_before_it():
    z_min = float(jnp.min(Normal(0.0, 1.0).quadrature(8).nodes))
    save_ts = np.linspace(0.0, 2.0, 201)  # finer than the CFL steps: steps end on saves

    def run(critic):
        problem = t1_problem(100, Upwind(), (-0.5, 0.5), HardClip(0.5), critic)
        state = problem.initial_state(Normal(0.5, 0.3), Normal(0.0, 0.1))
        return solve_continuity(problem, state, t1=2.0, save_ts=save_ts, snapshot_ts=save_ts)

    clean, failed = run(LinearCritic(1)), run(DomainCritic(z_min + 0.2))
    assert clean.status == "ok" and failed.status == "nonfinite"
    # the first save where the lowest generated point z_min + θ̄ is below the domain: the
    # velocity there is NaN, so the step from it is the first non-finite one
    k = int(np.argmax(np.asarray(clean.diagnostics["generator_mean"][:, 0]) < 0.2))
    assert 0.5 < save_ts[k] < 1.9
    assert float(failed.diagnostics["t"][-1]) == save_ts[k]
    assert int(failed.num_steps) == int(clean.diagnostics["steps"][k]) + 1
    report = failed.failure_report()
    assert report.startswith(f"run stopped (nonfinite) in step {int(failed.num_steps)} at t = ")
    assert "generator cells [0, 1, 2, 3, 4, 5, 6, 7]" in report
    for name, series in failed.diagnostics.items():
        last = k if name == "value" else k + 1  # F evaluates Ψ below the domain at save k
        np.testing.assert_array_equal(series[:last], clean.diagnostics[name][:last], name)
    np.testing.assert_array_equal(failed.snapshots.critic[: k + 1], clean.snapshots.critic[: k + 1])
    assert np.isnan(np.asarray(failed.diagnostics["generator_mean"][k + 1 :])).all()
    assert np.isnan(np.asarray(failed.final.generator)).all()


def test_grid_blowup_reports_a_nonfinite_run_and_keeps_its_data(monkeypatch):
    z_min = float(jnp.min(Normal(0.0, 1.0).quadrature(8).nodes))
    monkeypatch.setitem(MODELS, "t1", (ShiftUnit(1), DomainCritic(z_min + 0.2)))
    result = run_experiment(
        "grid-blowup", resolutions=[20, 40], penalty_betas=[1.0], t1=2.0, n_saves=41, quadrature=8
    )
    assert result.status == result.summary["status"] == "nonfinite"
    assert result.message.startswith("hard run, 20 cells: run stopped (nonfinite) in step ")
    assert "penalty_1 run, 40 cells: run stopped (nonfinite)" in result.message
    json.dumps(result.summary, allow_nan=False)
    sup = result.trajectory["sup_hard_40"]
    finite = np.isfinite(sup)
    assert 5 < finite.sum() < 40 and finite[: finite.sum()].all()  # a finite prefix
    assert result.summary["sup_max_finest"] == pytest.approx(sup[finite].max(), rel=0, abs=0)


def leaves(tree):
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(tree)]


@pytest.mark.parametrize("every", [None, 0.3])
def test_a_checkpointed_grid_solve_is_the_one_call_solve_and_resumes_bit_for_bit(tmp_path, every):
    problem = t1_problem(40, MUSCL(), (-0.5, 0.5), HardClip(0.5))
    state = problem.initial_state(Normal(0.5, 0.3), Normal(0.0, 0.1))
    kwargs = dict(t1=2.0, save_ts=np.linspace(0, 2, 41), snapshot_ts=[0.7, 1.3])
    plain = solve_continuity(problem, state, **kwargs)
    spec = CheckpointSpec(tmp_path, every)
    segmented = solve_continuity(problem, state, checkpoint=spec, **kwargs)
    for a, b in zip(leaves(segmented), leaves(plain), strict=True):
        np.testing.assert_array_equal(a, b)
    files = sorted(tmp_path.glob("ckpt-*.npz"))
    assert len(files) == 3  # the newest three of several segments
    for path in files[1:]:  # as if killed after the oldest one kept
        path.unlink()
    resumed = solve_continuity(
        problem, state, checkpoint=CheckpointSpec(tmp_path, every, True), **kwargs
    )
    for a, b in zip(leaves(resumed), leaves(plain), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("courant", [None, 0.5])
def test_muscl_steps_keep_both_stages_within_the_cfl_limit(courant):
    """The first stage alone chose the step before: its second stage reached 0.54–0.62 here
    (from t ≈ 1.55, once mass piles on a wall). Positivity and mass are kept as before."""
    for cells in (100, 200):
        problem = t1_problem(cells, MUSCL(), (-0.5, 0.5), HardClip(0.5))
        state = problem.initial_state(Normal(0.5, 0.3), Normal(0.0, 0.1))
        run = solve_continuity(
            problem, state, t1=2.5, save_ts=np.linspace(0, 2.5, 51), courant=courant
        )
        used = np.asarray(run.diagnostics["courant"])
        assert run.status == "ok" and used.max() <= MUSCL.cfl_limit
        assert used.max() > 0.9 * (0.45 if courant is None else 0.5)  # steps are not timid
        assert float(jnp.max(jnp.abs(run.diagnostics["critic_mass"] - 1))) < 1e-13
        assert float(jnp.min(run.diagnostics["critic_min"])) >= 0.0


@pytest.mark.slow  # four grid runs, each compiled: about 30 s on 2 cores
def test_grid_blowup_records_a_courant_number_within_the_limit():
    summary = run_experiment(
        "grid-blowup",
        scheme="muscl",
        resolutions=[50, 100],
        penalty_betas=[1.0],
        t1=2.0,
        n_saves=11,
        quadrature=8,
    ).summary
    assert summary["courant_limit"] == 0.5
    assert 0.4 < summary["courant_max"] <= 0.5
    assert summary["mass_error"] < 1e-13 and summary["density_min"] >= 0.0
