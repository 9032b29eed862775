"""First-time events at step resolution: independent of ``t1`` and of the save times, first
order in ``dt`` against T1's closed form, carried through checkpointed segments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_simulate import closed_form_first_contact

import gandyn as gd
from gandyn.checkpoint import CheckpointSpec
from gandyn.experiments.toy import T1_PARAMS, build_t1
from gandyn.solvers import simulate_checkpointed
from gandyn.solvers.projected import crossing_time

WALL = {"wall_fraction": gd.diagnostics.wall_fraction}  # few diagnostics: quick to compile
TINY = {"n_gen": 4, "n_critic": 4, "quadrature": 4, "n_snapshots": 2, "solver": "euler"}
T1_CONFIG = {key: param.default for key, param in T1_PARAMS.items()} | TINY


def t1_exact_contact(config) -> float:
    """DESIGN §1.4: first t > 0 with ω̄(t) − ω̄₀ = c − max_j ω_j(0) or −c − min_j ω_j(0)."""
    problem, state = build_t1(config)
    y0 = float(jnp.mean(state.generator) - problem.game.data.mean()[0])
    omega = np.asarray(state.critic[:, 0])
    c = config["c"]
    return closed_form_first_contact(
        config["lam"], y0, omega.mean(), c - omega.max(), -c - omega.min()
    )


def test_crossing_inside_a_step_is_the_zero_of_the_linear_interpolant():
    assert float(crossing_time(1.0, 1.5, -1.0, 3.0)) == 1.125
    assert float(crossing_time(1.0, 1.5, 0.0, -2.0)) == 1.0  # on the boundary at the start
    assert float(crossing_time(1.0, 1.5, -1.0, 0.0)) == 1.5
    assert float(crossing_time(1.0, 1.5, -1.0, -0.5)) == np.inf
    assert float(crossing_time(1.0, 1.5, -jnp.inf, -jnp.inf)) == np.inf  # no walls
    assert float(crossing_time(1.0, 1.5, -1.0, jnp.nan)) == np.inf
    grad = jax.grad(lambda g: crossing_time(0.0, 1.0, g, g + 1.0), argnums=0)
    assert float(grad(-jnp.inf)) == 0.0  # no NaN leaks from the branch not taken


@pytest.mark.slow
def test_t1_first_contact_is_the_closed_form_for_every_t1():
    """Issue 13 measured 0.42, 0.45, 0.5 at the defaults (the first save on the wall, saves
    thinned for t1 > 40)."""
    exact = t1_exact_contact(T1_CONFIG)
    found = [
        gd.run_experiment("toy-shift-linear", **TINY, t1=t1).summary["first_contact_time"]
        for t1 in (40.0, 200.0, 1000.0)
    ]
    assert found[0] == found[1] == found[2]  # the same steps up to the contact: bit for bit
    assert abs(found[0] - exact) < 0.2 * T1_CONFIG["dt"]


def test_t1_first_contact_error_is_first_order_in_dt():
    problem, state = build_t1(T1_CONFIG)
    exact = t1_exact_contact(T1_CONFIG)
    errors = []
    for dt in (0.02, 0.01, 0.005):
        trajectory = gd.simulate(problem, state, t1=1.0, dt=dt, solver="euler", diagnostics=WALL)
        errors.append(float(trajectory.final.first_times["wall_contact"]) - exact)
    slopes = np.log2(np.abs(errors[:-1]) / np.abs(errors[1:]))
    assert np.all((slopes > 0.9) & (slopes < 1.1)), (errors, slopes)


def test_t1_first_contact_does_not_depend_on_the_number_of_saves():
    results = [
        gd.run_experiment("toy-shift-linear", **TINY, n_saves=n_saves) for n_saves in (11, 4001)
    ]
    assert [r.trajectory["ts"].size for r in results] == [11, 4001]
    few, all_steps = (r.summary["first_contact_time"] for r in results)
    assert few == all_steps and abs(few - t1_exact_contact(T1_CONFIG)) < 0.2 * T1_CONFIG["dt"]


@pytest.mark.slow
def test_t2_first_contact_does_not_depend_on_t1_or_the_number_of_saves():
    """Issue 13 measured 2.21 / 2.24 / 2.5 at t1 = 30 / 300 / 2000 (defaults)."""
    base = {"n_gen": 8, "n_critic": 8, "quadrature": 6, "n_snapshots": 2, "dt": 0.02}
    base |= {"solver": "euler"}
    found = [
        gd.run_experiment("neuron-bimodal-1d", **base, t1=t1, n_saves=n_saves).summary[
            "first_contact_time"
        ]
        for t1, n_saves in ((4.0, 4001), (4.0, 11), (100.0, 4001))
    ]
    assert 0.0 < found[0] < 4.0
    assert found[0] == found[1] == found[2]


def test_first_contact_is_carried_through_checkpointed_segments_and_resume(tmp_path):
    """Segments end before and after the contact (t ≈ 0.438); a resume from a checkpoint
    written after it restores it."""
    problem, state = build_t1(T1_CONFIG)
    kwargs = dict(t1=1.0, dt=0.01, solver="euler", snapshot_ts=[], diagnostics=WALL)
    single = gd.simulate(problem, state, **kwargs)
    expected = single.final.first_times["wall_contact"]
    assert 0.4 < float(expected) < 0.5
    whole = simulate_checkpointed(problem, state, CheckpointSpec(tmp_path, 0.2), **kwargs)
    assert whole.final.first_times["wall_contact"] == expected
    for path in sorted(tmp_path.glob("ckpt-*.npz"))[1:]:  # keep the one at t = 0.6
        path.unlink()
    resumed = simulate_checkpointed(
        problem, state, CheckpointSpec(tmp_path, 0.2, resume=True), **kwargs
    )
    assert resumed.final.first_times["wall_contact"] == expected
