"""The WGAN algorithm survives: checkpointed training resumes bit for bit (optimizer state and
random key included), and an exploding step stops it with the time and the data before it."""

import json
import math

import jax
import numpy as np
import optax
import pytest
from _runs import assert_same_run, gandyn_cli, killed_at, load_run
from test_algorithm import PHASE, toy

import gandyn as gd
from gandyn.checkpoint import CheckpointSpec

ADAM = optax.scale_by_adam()
"""One object: runs built with it share their compilations."""


def adam_minibatch(eta=0.05):
    return gd.WGANAlgorithm(eta, optimizer=ADAM, batches=gd.Minibatch(4))


def arrays(trajectory):
    """Every array of a (possibly batched) trajectory, by name, as NumPy."""
    leaves = jax.tree_util.tree_leaves_with_path(trajectory)
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def assert_identical(a, b):
    left, right = arrays(a), arrays(b)
    assert left.keys() == right.keys()
    for name, value in left.items():
        np.testing.assert_array_equal(value, right[name], err_msg=name)


def test_checkpointed_training_equals_one_scan_and_resumes_bit_for_bit(tmp_path):
    problem, state = toy("T1", n_gen=8, n_critic=8, clip="hard")
    algorithm = adam_minibatch()
    keys = jax.random.split(jax.random.key(3), 2)
    common = dict(t1=2.0, key=keys, diagnostics=PHASE, snapshot_ts=[0.5, 1.5], batched=True)
    plain = gd.train_wgan(problem, state, algorithm, **common)
    spec = CheckpointSpec(tmp_path, every=0.25)
    whole = gd.train_wgan(problem, state, algorithm, checkpoint=spec, **common)
    np.testing.assert_allclose(
        whole.diagnostics["critic_mean"], plain.diagnostics["critic_mean"], rtol=1e-12
    )
    np.testing.assert_allclose(whole.final.critic, plain.final.critic, rtol=1e-12)
    # the newest checkpoints are of segments 5, 6, 7: drop two, as if killed after segment 5
    files = sorted(tmp_path.glob("ckpt-*.npz"))
    assert [f.name for f in files] == [f"ckpt-00000{k}.npz" for k in (5, 6, 7)]
    for path in files[1:]:
        path.unlink()
    resumed = gd.train_wgan(
        problem, state, algorithm, checkpoint=CheckpointSpec(tmp_path, 0.25, resume=True), **common
    )
    assert_identical(resumed, whole)


def test_resuming_with_another_run_shape_is_refused(tmp_path):
    problem, state = toy("T1", n_gen=8, n_critic=8)
    algorithm = gd.WGANAlgorithm(0.05)
    gd.train_wgan(problem, state, algorithm, t1=0.5, checkpoint=CheckpointSpec(tmp_path, 0.25))
    bigger, state16 = toy("T1", n_gen=16, n_critic=16)
    with pytest.raises(gd.StaleCheckpoint, match="does not fit this run .*does not match"):
        gd.train_wgan(
            bigger,
            state16,
            algorithm,
            t1=0.5,
            checkpoint=CheckpointSpec(tmp_path, 0.25, resume=True),
        )


def overflow_step(eta: float, lam: float, y0: float, w0: float) -> int:
    """First step of explicit Euler on T1's oscillator (ẏ = ω̄, dω̄/dt = −λ y) at which a
    coordinate overflows float64: the closed-form linear map, iterated in Python floats."""
    y, w = y0, w0
    for k in range(1, 100_000):
        y, w = y + eta * w, w - eta * lam * y
        if not (math.isfinite(y) and math.isfinite(w)):
            return k
    raise AssertionError("no overflow")


def test_an_exploding_step_stops_training_with_the_time_and_the_data_before_it(tmp_path):
    eta, lam = 10.0, 1.0
    problem, state = toy("T1", n_gen=4, n_critic=4, clip="none", lam=lam)
    algorithm = gd.WGANAlgorithm(eta, updates=gd.Simultaneous())
    y0 = float(np.mean(state.generator) - problem.game.data.mean()[0])
    w0 = float(np.mean(state.critic))
    expected = overflow_step(eta, lam, y0, w0)
    t1 = eta * (expected + 50)
    spec = CheckpointSpec(tmp_path, every=eta * 20)
    for run in (
        gd.train_wgan(problem, state, algorithm, t1=t1, diagnostics=PHASE),
        gd.train_wgan(problem, state, algorithm, t1=t1, diagnostics=PHASE, checkpoint=spec),
    ):
        assert run.status == "nonfinite"
        k = round(float(run.final_t) / eta)
        # the particles sit at the mean ± a bounded offset: they overflow with the mean,
        # give or take the step in which an intermediate product overflows first
        assert abs(k - expected) <= 2, (k, expected)
        before = np.asarray(run.ts) < float(run.final_t)
        series = np.asarray(run.diagnostics["critic_mean"])[:, 0]
        assert np.isfinite(series[before]).all() and np.isnan(series[~before]).all()
        assert np.abs(series[before]).max() > 1e250  # it did explode before it stopped
        report = run.failure_report()
        assert report is not None and f"t = {float(run.final_t):.6g}" in report
        assert "particles" in report


SGD_SETS = {
    "t1": 1.0,
    "dt": 0.05,
    "reference_width": 8,
    "widths": [4],
    "width_eta": 0.05,
    "etas": [0.1],
    "seeds": 2,
    "quadrature": 4,
    "n_snapshots": 2,
    "batch_size": 3,
    "optimizer": "adam",
}
SGD_ARGS = [a for k, v in SGD_SETS.items() for a in ("--set", f"{k}={json.dumps(v)}")]


SGD_RUN = ["run", "mean-field-vs-sgd", *SGD_ARGS, "--checkpoint-every", "0.25", "--no-plots"]


@pytest.fixture(scope="module")
def sgd_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("sgd") / "whole"
    whole = gandyn_cli(*SGD_RUN, "--out", str(out))
    assert whole.returncode == 0, whole.stderr
    return load_run(out)


# checkpoint files in order: reference ODE 0-3, width 4: 4-7, eta 0.1: 8-12, literal: 13-16
@pytest.mark.parametrize(
    "fault",
    ["kill-before-rename:10", pytest.param("kill-after-checkpoint:5", marks=pytest.mark.slow)],
)
def test_a_killed_algorithm_run_resumes_to_the_same_numbers_bit_for_bit(
    tmp_path, sgd_reference, fault
):
    out = tmp_path / "killed"
    killed_at(fault, *SGD_RUN, "--out", str(out))
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    resumed = gandyn_cli("resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(out, sgd_reference)
    assert not (out / "checkpoints").exists()  # removed once the run is ok


def test_the_experiment_names_the_seed_time_and_particles_of_a_nonfinite_run():
    from gandyn.experiments.algorithm import _nonfinite

    eta = 10.0
    problem, state = toy("T1", n_gen=4, n_critic=4, clip="none")
    y0 = float(np.mean(state.generator) - problem.game.data.mean()[0])
    expected = overflow_step(eta, 1.0, y0, float(np.mean(state.critic)))
    # seed 1 starts at the equilibrium (generated mean = data mean, critic 0): it stays
    rest = gd.MeanFieldState(
        np.full_like(state.generator, float(problem.game.data.mean()[0])),
        np.zeros_like(state.critic),
    )
    states = jax.tree.map(lambda a, b: np.stack([a, b]), state, rest)
    runs = gd.train_wgan(
        problem,
        states,
        gd.WGANAlgorithm(eta, updates=gd.Simultaneous()),
        t1=eta * (expected + 10),
        key=jax.random.split(jax.random.key(0), 2),
        diagnostics=PHASE,
        batched=True,
    )
    report = _nonfinite("eta 10", runs)
    assert report is not None
    assert report.startswith("eta 10: 1 of 2 run(s) non-finite; seed 0 at t = ")
    assert "particles" in report
    assert abs(float(runs.final_t[0]) / eta - expected) <= 2
    assert np.isfinite(np.asarray(runs.final.critic[1])).all()
