"""Checkpoint intervals change nothing (issues 12 and 13): one segment policy
(:func:`gandyn.checkpoint.plan_segments`) gives every save and snapshot to exactly one
segment, so a run checkpointed at any interval writes the summary and arrays of the run
without checkpoints, bit for bit, for every experiment."""

import json
import re

import jax
import numpy as np
import optax
import pytest
from _runs import assert_same_run, load_run
from test_algorithm import PHASE, toy
from test_grid import t1_problem
from typer.testing import CliRunner

import gandyn as gd
from gandyn import checkpoint
from gandyn.checkpoint import CheckpointSpec, plan_segments
from gandyn.cli import app
from gandyn.experiments.algorithm import _nonfinite
from gandyn.solvers import as_arrays, simulate_checkpointed

runner = CliRunner()


def owner(step_ts: np.ndarray, windows, t: float) -> int:
    """The window that must record time ``t``, by its definition: the one whose steps
    ``(t_{k_a}, t_{k_b}]`` contain ``t`` (the first window also ``t_0``)."""
    if t == step_ts[0]:
        return 0
    (found,) = [i for i, w in enumerate(windows) if step_ts[w.k_a] < t <= step_ts[w.k_b]]
    return found


@pytest.mark.parametrize(
    ("n_steps", "stride", "per"),
    [(20, 1, 3), (20, 3, 2), (20, 3, 5), (21, 4, 4), (7, 2, 1), (10, 1, 10), (10, 3, 100)],
)
def test_every_save_and_snapshot_is_in_exactly_one_segment(n_steps, stride, per):
    dt = 0.1
    step_ts = dt * np.arange(n_steps + 1)
    saves = step_ts[np.unique(np.append(np.arange(0, n_steps + 1, stride), n_steps))]
    snapshots = np.array([0.0, 0.05, 0.35, 0.3, step_ts[-1]])  # between steps and on them
    snapshots.sort()
    windows = plan_segments(step_ts, saves, snapshots, per * dt)
    # the steps: consecutive, whole, ``per`` each but the last, covering the run
    assert [w.k_a for w in windows] == list(range(0, n_steps, per))
    assert [w.k_b for w in windows] == [min(k + per, n_steps) for k in range(0, n_steps, per)]
    for times, field in ((saves, "saves"), (snapshots, "snapshots")):
        held = np.concatenate([getattr(w, field) for w in windows])
        np.testing.assert_array_equal(held, np.arange(times.size))  # all, once, in order
        for i, w in enumerate(windows):
            assert all(owner(step_ts, windows, times[j]) == i for j in getattr(w, field))
    if per < stride:
        assert any(w.saves.size == 0 for w in windows)  # segments without a save exist


def test_an_interval_is_whole_steps_at_least_one_at_most_the_run():
    step_ts = 0.1 * np.arange(11)
    bounds = [(w.k_a, w.k_b) for w in plan_segments(step_ts, step_ts, [0.0, 1.0], 0.33)]
    assert bounds == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert len(plan_segments(step_ts, step_ts, [0.0], 0.001)) == 10
    assert len(plan_segments(step_ts, step_ts, [0.0], 1e308)) == 1
    assert len(plan_segments(step_ts, step_ts, [0.0], float("inf"))) == 1
    with pytest.raises(ValueError, match="positive"):
        plan_segments(step_ts, step_ts, [0.0], 0.0)


def test_segments_without_saves_and_saves_between_steps_give_the_one_call_solve(tmp_path):
    problem, state = toy("T1", n_gen=4, n_critic=4)
    t1, dt = 0.3, 0.01
    save_ts = np.linspace(0.0, t1, 8)  # every ≈ 4.3 steps, mostly between steps
    snapshot_ts = [0.0123, 0.05, 0.2, 0.2567]
    kwargs = dict(t1=t1, dt=dt, solver="heun", snapshot_ts=snapshot_ts, diagnostics=PHASE)
    plain = gd.simulate(problem, state, save_ts=save_ts, **kwargs)
    # two steps per segment: more than half the segments record nothing
    spec = CheckpointSpec(tmp_path, every=2 * dt)
    segmented = simulate_checkpointed(problem, state, spec, save_ts=save_ts, **kwargs)
    assert len(list(tmp_path.glob("ckpt-*.npz"))) == checkpoint.KEEP  # it did checkpoint
    np.testing.assert_array_equal(segmented.ts, save_ts)
    np.testing.assert_array_equal(segmented.snapshot_ts, np.unique([0.0, t1, *snapshot_ts]))
    for name in PHASE:
        np.testing.assert_array_equal(segmented.diagnostics[name], plain.diagnostics[name])
    for a, b in ((segmented.snapshots, plain.snapshots), (segmented.final, plain.final)):
        np.testing.assert_array_equal(a.generator, b.generator)
        np.testing.assert_array_equal(a.critic, b.critic)
    assert int(segmented.num_steps) == int(plain.num_steps) == round(t1 / dt)


def test_training_in_segments_of_any_interval_is_the_one_scan_bit_for_bit(tmp_path):
    problem, state = toy("T1", n_gen=4, n_critic=4)
    algorithm = gd.WGANAlgorithm(0.1, optimizer=optax.scale_by_adam(), batches=gd.Minibatch(3))
    keys = jax.random.split(jax.random.key(1), 2)
    common = dict(t1=2.0, key=keys, diagnostics=PHASE, snapshot_ts=[0.7], batched=True)
    common |= dict(save_ts=[0.0, 0.3, 0.7, 1.9])
    plain = gd.train_wgan(problem, state, algorithm, **common)
    # 0.27 rounds to 3 steps: six segments of 3 and one of 2
    segmented = gd.train_wgan(
        problem, state, algorithm, checkpoint=CheckpointSpec(tmp_path, 0.27), **common
    )
    assert len(list(tmp_path.glob("ckpt-*.npz"))) == checkpoint.KEEP
    left, right = jax.tree.leaves(plain), jax.tree.leaves(segmented)
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def cli_sets(sets: dict) -> list[str]:
    return [a for key, value in sets.items() for a in ("--set", f"{key}={json.dumps(value)}")]


TINY_T1 = {"n_gen": 2, "n_critic": 2, "quadrature": 2, "n_snapshots": 4}
CASES = {
    # The repro of issue 12 at a few seconds: 8000 steps, saves every 2nd (capped at 4001),
    # segments of 1001 steps: every boundary after the first falls between two saves.
    "toy-shift-linear": ({"dt": 0.001, "t1": 8.0} | TINY_T1, "1.001", True),
    # 4200 steps, saves every 2nd; segments of 389 steps, and snapshots at t1/3, 2t1/3
    "neuron-bimodal-1d": ({"dt": 0.002, "t1": 8.4} | TINY_T1, "0.778", True),
    # reference ODE and literal run: 4200 steps (saves every 2nd) in segments of 421 steps;
    # the sweeps: 42 and 2 steps per segment of their 420 and 21 steps
    "mean-field-vs-sgd": (
        {"t1": 2.1, "dt": 0.0005, "reference_width": 2, "widths": [2], "etas": [0.1]}
        | {"width_eta": 0.005, "seeds": 2, "quadrature": 2, "n_snapshots": 3}
        | {"batch_size": 2, "optimizer": "adam"},
        "0.2105",
        True,
    ),
    # grid solvers: segments of 3 of the 5 save intervals (0.27 / 0.1 rounds to 3)
    "grid-blowup": (
        {"resolutions": [20, 40], "penalty_betas": [1.0], "t1": 0.5, "n_saves": 6}
        | {"quadrature": 4},
        "0.27",
        True,
    ),
    "fp-js-1d": ({"cells": 50, "t1": 0.2, "n_saves": 7}, "0.07", True),
    "fp-js-2d": ({"cells": 12, "t1": 0.1, "n_saves": 7}, "0.035", True),
    "js-flow-particles": (
        {"n_particles": 50, "t1": 0.2, "dt": 0.05, "n_saves": 5, "cells": 50},
        "0.07",
        True,
    ),
    # stages only: no time integration is segmented
    "gan-as-ode": (
        {"K_list": [1], "n_iter": 2, "snapshot_every": 1, "gen_width": 4}
        | {"latent_quadrature": 2, "quadrature": 2, "ring_components": 2},
        "0.07",
        False,
    ),
    "mse-divergence": (
        {"n_eta": 5, "n_iter": 100, "latent_scales": [1.0], "refine": 2, "quadrature": 8},
        "0.07",
        False,
    ),
}


def test_every_experiment_is_tested():
    assert sorted(CASES) == sorted(gd.experiments.REGISTRY)


@pytest.fixture(scope="module")
def run_pair(tmp_path_factory):
    """``run_pair(name)``: the folders of the case's run with ``--checkpoint-every off``
    and with its interval, and how many segment checkpoints the latter wrote (each pair
    computed once)."""
    pairs = {}

    def run(name: str):
        if name not in pairs:
            sets, every, _ = CASES[name]
            root = tmp_path_factory.mktemp(name)
            args = ["run", name, *cli_sets(sets), "--no-plots", "--no-progress", "--out"]
            plain = runner.invoke(app, [*args, str(root / "off"), "--checkpoint-every", "off"])
            assert plain.exit_code == 0, plain.output
            written = []
            with pytest.MonkeyPatch.context() as patch:
                write = checkpoint.write_checkpoint
                patch.setattr(
                    checkpoint, "write_checkpoint", lambda *a: written.append(1) or write(*a)
                )
                checked = runner.invoke(
                    app, [*args, str(root / "every"), "--checkpoint-every", every]
                )
            assert checked.exit_code == 0, checked.output
            pairs[name] = root / "off", root / "every", len(written)
        return pairs[name]

    return run


SLOW = {"mean-field-vs-sgd"}
"""Over 20 s (two runs of five solves each, two compilations per segment length)."""


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(CASES)]
)
def test_a_checkpoint_interval_changes_no_number(name, run_pair):
    off, every, written = run_pair(name)
    assert (written > 1) == CASES[name][2]  # the run was cut into segments (or has none)
    assert_same_run(every, load_run(off))


def test_issue_12_repro_keeps_all_4001_saves_of_the_save_grid(run_pair):
    _, every, _ = run_pair("toy-shift-linear")
    ts = load_run(every)[1]["ts"]
    # the save grid: every 2nd of the 8000 steps of 0.001 (4001 saves at most)
    expected = 0.001 * np.arange(0, 8001, 2)
    expected[-1] = 8.0
    np.testing.assert_array_equal(ts, expected)
    # the saves the old policy lost: the first of each segment after the first
    assert {1.002, 3.004, 5.006, 7.008} <= set(np.round(ts, 9))


def batch_of_two(final_t, value, generator):
    """A trajectory of two seeds saved at ``t = 0..4``: observable ``value (2, 5)``,
    final generator ``(2, 3, 1)`` (critic zero), stopped at ``final_t (2,)``."""
    ts = np.tile(np.arange(5.0), (2, 1))
    state = gd.MeanFieldState(np.asarray(generator), np.zeros((2, 3, 1)))
    return gd.Trajectory(
        ts=ts,
        diagnostics={"value": np.asarray(value)},
        snapshot_ts=ts[:, :1],
        snapshots=state,
        final=state,
        final_t=np.asarray(final_t),
        result=gd.RESULTS.ok,
        num_steps=np.zeros(2, int),
        entries="particles",
    )


def test_an_overflowing_observable_of_finite_particles_is_reported_with_its_time():
    value = np.ones((2, 5))
    value[1, 3:] = [np.inf, np.nan]  # seed 1: the product of finite particles overflowed
    report = _nonfinite("width 2", batch_of_two([4.0, 4.0], value, np.ones((2, 3, 1))))
    assert report == "width 2: 1 of 2 run(s) non-finite; seed 1 at t = 3 (observables value)"
    finite = batch_of_two([4.0, 4.0], np.ones((2, 5)), np.ones((2, 3, 1)))
    assert _nonfinite("width 2", finite) is None


def test_the_saves_after_a_stop_are_not_counted_as_overflows():
    value = np.ones((2, 5))
    value[0, 3:] = np.nan  # seed 0 stopped at t = 2.5: its later saves were never made
    generator = np.ones((2, 3, 1))
    generator[0, 1] = np.inf
    report = _nonfinite("eta 0.1", batch_of_two([2.5, 4.0], value, generator))
    assert (
        report == "eta 0.1: 1 of 2 run(s) non-finite; seed 0 at t = 2.5 (generator particles [1])"
    )


def test_an_exploding_algorithm_run_is_nonfinite_with_nulls_not_a_crash(tmp_path):
    # Euler-like steps of the undamped oscillator (clip none) grow by √(1 + λη²) = 10 and
    # 50 per step: the width sweep overflows its particles, the step sweep (η = 0.05) only
    # its observable F = ω̄ y, a product of finite particles, before t1
    sets = {"lam": 1e6, "clip": "none", "t1": 2.5, "dt": 0.01, "reference_width": 2}
    sets |= {"widths": [2], "width_eta": 0.01, "etas": [0.05], "seeds": 2}
    sets |= {"quadrature": 2, "n_snapshots": 2}
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", "mean-field-vs-sgd", *cli_sets(sets), "--no-plots", "--out", str(out)]
    )
    assert result.exit_code == 1, result.output
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "nonfinite"
    # when and what: particles that left the floats, or only the observable F
    for label, what in (
        ("width 2", r"generator particles \[0, 1\], critic particles \[0, 1\]"),
        ("eta 0.05", r"observables value\)"),
        ("reference ODE", r"observables value\)"),
    ):
        pattern = rf"{label}: [12] of [12] run\(s\) non-finite; seed \d at t = [\d.]+ \({what}"
        assert re.search(pattern, record["message"]), record["message"]
    summary = json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    assert summary["status"] == "nonfinite"
    assert summary["gap_largest_width"] is None and summary["gap_smallest_eta"] is None


def refuse(constant: str):
    raise ValueError(f"{constant} in summary.json")


# ------------------------------------------------------- transparency, solver by solver


def grid_run(dt):
    problem = t1_problem(16, gd.Upwind(), (-0.5, 0.5), gd.HardClip(0.5))
    state = problem.initial_state(gd.Normal(0.5, 0.3), gd.Normal(0.0, 0.1))
    save_ts = np.linspace(0.0, 0.5, 6)  # saves every 0.1: the intervals below do not divide it

    def run(checkpoint=None):
        return gd.solve_continuity(
            problem,
            state,
            t1=0.5,
            dt=dt,
            save_ts=save_ts,
            snapshot_ts=[0.25],
            checkpoint=checkpoint,
        )

    return run


def fokker_planck_run(method):
    data, initial = (
        gd.GaussianMixture(np.array([0.0]), None, 1.0),
        gd.GaussianMixture(np.array([1.0]), None, 1.0),
    )

    def run(checkpoint=None):
        return gd.solve_fokker_planck(
            data, initial, (-6.0, 7.0), 40, 0.2, method=method, n_saves=6, checkpoint=checkpoint
        )

    return run


def particle_run():
    problem, state = toy("T1", n_gen=4, n_critic=4)
    kwargs = dict(t1=0.3, dt=0.01, solver="heun", snapshot_ts=[0.05, 0.2], diagnostics=PHASE)
    save_ts = np.linspace(0.0, 0.3, 7)  # every 5 steps

    def run(checkpoint=None):
        if checkpoint is None:
            return gd.simulate(problem, state, save_ts=save_ts, **kwargs)
        return simulate_checkpointed(problem, state, checkpoint, save_ts=save_ts, **kwargs)

    return run


def algorithm_run():
    problem, state = toy("T1", n_gen=4, n_critic=4)
    algorithm = gd.WGANAlgorithm(0.1, optimizer=optax.scale_by_adam(), batches=gd.Minibatch(3))
    kwargs = dict(t1=2.0, key=jax.random.key(2), diagnostics=PHASE, save_ts=np.arange(0, 2.1, 0.5))

    def run(checkpoint=None):
        return gd.train_wgan(problem, state, algorithm, checkpoint=checkpoint, **kwargs)

    return run


SOLVERS = {
    "particles": (particle_run, (), 0.07),
    "train-wgan": (algorithm_run, (), 0.7),
    "grid-cfl": (grid_run, (None,), 0.13),
    "grid-fixed-dt": (grid_run, (0.01,), 0.13),
    "fokker-planck-explicit": (fokker_planck_run, ("explicit",), 0.13),
    "fokker-planck-implicit": (fokker_planck_run, ("implicit",), 0.13),
}
"""Per solver: the run, its arguments, and a checkpoint interval that does not divide the
save spacing (segments end between saves, or hold unequal numbers of them)."""


def assert_bitwise(a, b) -> None:
    left, right = as_arrays(a), as_arrays(b)
    assert left.keys() == right.keys()
    assert a.status == b.status == "ok"
    for key, value in left.items():
        np.testing.assert_array_equal(right[key], value, err_msg=key)


@pytest.mark.parametrize("name", SOLVERS)
def test_every_solver_checkpointed_at_any_interval_and_resumed_is_the_one_call_run(name, tmp_path):
    make, args, every = SOLVERS[name]
    run = make(*args)
    plain = run()
    assert_bitwise(plain, run(CheckpointSpec(tmp_path / "whole", 1e9)))  # one segment
    assert_bitwise(plain, run(CheckpointSpec(tmp_path, every)))
    files = sorted(tmp_path.glob("ckpt-*.npz"))
    assert len(files) >= 2  # several segments
    for late in files[1:]:  # killed after the oldest checkpoint kept: resume from it
        late.unlink()
    assert_bitwise(plain, run(CheckpointSpec(tmp_path, every, resume=True)))


def test_throw_raises_the_failure_report_of_a_run_that_did_not_finish():
    narrow, shifted = (
        gd.GaussianMixture(np.array([m]), None, s) for m, s in ((0.0, 0.1), (1.0, 1.0))
    )
    args = (narrow, shifted, (-8.0, 9.0), 100, 0.1)
    kwargs = dict(method="implicit", dt=0.01, n_saves=3)
    report = gd.solve_fokker_planck(*args, **kwargs).failure_report()
    assert report.startswith("run stopped (nonfinite) in step 1 at t = 0.01; non-finite: cells [")
    with pytest.raises(RuntimeError) as raised:
        gd.solve_fokker_planck(*args, throw=True, **kwargs)
    assert str(raised.value) == report
