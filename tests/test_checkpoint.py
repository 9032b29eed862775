"""Checkpoint and resume: killed runs resume to the same numbers, bad checkpoints are skipped."""

import json

import numpy as np
import pytest
from _runs import assert_same_run, killed_at, load_run as load
from typer.testing import CliRunner

import gandyn as gd
from gandyn.checkpoint import CheckpointSpec, plan_segments
from gandyn.cli import app
from gandyn.experiments import RunOptions, get_experiment, resolve_config

SETS = ["t1=2.0", "dt=0.01", "n_gen=6", "n_critic=6", "quadrature=6", "n_snapshots=5"]
ARGS = [a for s in SETS for a in ("--set", s)] + ["--checkpoint-every", "0.5", "--no-plots"]
runner = CliRunner()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    result = runner.invoke(app, ["run", "toy-shift-linear", *ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return load(out)


def test_segmented_run_matches_a_single_solve_bit_for_bit(tmp_path):
    experiment = get_experiment("toy-shift-linear")
    config = resolve_config(
        experiment,
        {"t1": 2.0, "dt": 0.01, "n_gen": 6, "n_critic": 6, "quadrature": 6, "n_snapshots": 5},
    )
    plain = experiment.run(config, RunOptions())
    segmented = experiment.run(config, RunOptions(checkpoint=CheckpointSpec(tmp_path, 0.5)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ckpt-00000{k}.npz" for k in (1, 2, 3)]
    assert plain.trajectory.keys() == segmented.trajectory.keys()
    for key, value in plain.trajectory.items():
        np.testing.assert_array_equal(segmented.trajectory[key], value, err_msg=key)
    assert segmented.summary == plain.summary


@pytest.mark.parametrize("fault", ["kill-after-checkpoint:0", "kill-before-rename:2"])
def test_a_killed_run_resumes_to_the_same_numbers_bit_for_bit(tmp_path, reference, fault):
    out = tmp_path / "run"
    killed_at(fault, "run", "toy-shift-linear", *ARGS, "--out", str(out))
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    assert not (out / "summary.json").exists()
    resumed = runner.invoke(app, ["resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(out, reference)


def test_a_corrupted_newest_checkpoint_is_skipped_with_a_warning(tmp_path, reference):
    out = tmp_path / "run"
    killed_at("kill-after-checkpoint:2", "run", "toy-shift-linear", *ARGS, "--out", str(out))
    newest = out / "checkpoints" / "ckpt-000002.npz"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.warns(UserWarning, match="ckpt-000002.npz is unreadable"):
        resumed = runner.invoke(app, ["resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(out, reference)


def test_a_checkpoint_with_flipped_bytes_fails_its_digest(tmp_path):
    spec = CheckpointSpec(tmp_path, 0.5)
    path = gd.checkpoint.write_checkpoint(spec.directory, 0, {"x": np.arange(100.0)})
    raw = bytearray(path.read_bytes())
    np.save(tmp_path / "x.npy", np.arange(100.0))
    offset = raw.find((tmp_path / "x.npy").read_bytes()[-800:])
    raw[offset + 10] ^= 0xFF  # corrupt payload bytes
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="checkpoint"):
        gd.checkpoint.read_checkpoint(path)


def test_nonfinite_checkpointed_run_keeps_segments_before_the_failure(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "run",
            "toy-shift-linear",
            "--set",
            "clip=none",
            "--set",
            "lam=1e12",
            "--set",
            "c=0.05",
            "--set",
            "t1=4",
            "--checkpoint-every",
            "1",
            "--out",
            str(out),
            "--no-plots",
        ],
    )
    assert result.exit_code == 1
    summary, arrays = load(out)
    assert summary["status"] == "nonfinite"
    assert json.loads((out / "run.json").read_text())["status"] == "nonfinite"
    assert np.isfinite(arrays["diag_critic_mean"][:3]).all()


def test_resume_refuses_complete_and_unrelated_folders(tmp_path):
    out = tmp_path / "done"
    assert runner.invoke(app, ["run", "toy-shift-linear", *ARGS, "--out", str(out)]).exit_code == 0
    done = runner.invoke(app, ["resume", str(out)])
    assert done.exit_code == 2 and "complete" in done.output
    missing = runner.invoke(app, ["resume", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "not a readable gandyn run or sweep folder" in missing.output


@pytest.mark.parametrize(
    "every,needle",
    [
        ("-1", "must be positive"),
        ("0", "must be positive"),
        ("often", "expected auto, off"),
        ("2.5steps", "whole N"),
    ],
)
def test_bad_checkpoint_interval_is_refused(tmp_path, every, needle):
    out = tmp_path / "x"
    result = runner.invoke(
        app, ["run", "toy-shift-linear", "--checkpoint-every", every, "--out", str(out)]
    )
    assert result.exit_code == 2 and needle in result.output and not out.exists()


def test_segments_cover_the_run_exactly():
    def bounds(t1, dt, every):
        steps = dt * np.arange(round(t1 / dt) + 1)
        return [(w.k_a, w.k_b) for w in plan_segments(steps, steps, steps[:1], every)]

    assert bounds(2.0, 0.01, 0.5) == [(0, 50), (50, 100), (100, 150), (150, 200)]
    assert bounds(1.0, 0.1, 0.3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    # an interval between steps rounds to whole steps, at least one
    assert bounds(1.0, 0.1, 0.33) == bounds(1.0, 0.1, 0.3)
    assert bounds(0.3, 0.1, 0.01) == [(0, 1), (1, 2), (2, 3)]


def interrupt_at(monkeypatch, module, name, call):
    """Make ``module.name`` raise KeyboardInterrupt (Ctrl-C) on its ``call``-th call."""
    original, calls = getattr(module, name), []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def test_ctrl_c_keeps_the_segments_done_and_resume_finishes_the_run(
    tmp_path, reference, monkeypatch
):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at(patch, gd.solvers.particles, "simulate_steps", 3)
        stopped = runner.invoke(app, ["run", "toy-shift-linear", *ARGS, "--out", str(out)])
    assert stopped.exit_code == 130, stopped.output
    assert "gandyn resume" in stopped.output
    summary, arrays = load(out)
    assert summary["status"] == "interrupted"
    assert json.loads((out / "run.json").read_text())["status"] == "interrupted"
    # two segments of 0.5 done: the saves up to t = 1 are those of the uninterrupted run
    assert arrays["ts"][-1] == pytest.approx(1.0)
    n = len(arrays["ts"])
    np.testing.assert_array_equal(arrays["diag_critic_mean"], reference[1]["diag_critic_mean"][:n])
    resumed = runner.invoke(app, ["resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(out, reference)


def test_ctrl_c_in_a_staged_experiment_marks_it_interrupted_and_resume_finishes_it(
    tmp_path, monkeypatch
):
    sets = ["resolutions=[20, 40]", "penalty_betas=[1.0]", "t1=0.5", "n_saves=6"]
    args = ["run", "grid-blowup", *[a for s in sets for a in ("--set", s)], "--no-plots"]
    whole = tmp_path / "whole"
    assert runner.invoke(app, [*args, "--out", str(whole)]).exit_code == 0
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at(patch, gd.experiments.grid_blowup, "solve_continuity", 3)
        stopped = runner.invoke(app, [*args, "--out", str(out)])
    assert stopped.exit_code == 130, stopped.output
    assert json.loads((out / "summary.json").read_text()) == {"status": "interrupted"}
    assert len(list((out / "checkpoints" / "stages").glob("*.npz"))) == 2
    assert runner.invoke(app, ["resume", str(out)]).exit_code == 0
    assert_same_run(out, load(whole))


def test_resume_refuses_checkpoints_of_another_config(tmp_path):
    out = tmp_path / "run"
    killed_at("kill-after-checkpoint:1", "run", "toy-shift-linear", *ARGS, "--out", str(out))
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(config | {"c": 0.3}))
    resumed = runner.invoke(app, ["resume", str(out)])
    assert resumed.exit_code == 2 and "written by another run" in resumed.output


def test_checkpoint_intervals_parse_as_times_steps_auto_or_off():
    from gandyn.cli import parse_interval

    config = {"dt": 0.01, "t1": 2.0}
    assert parse_interval("auto", config) is None
    assert parse_interval("OFF", config) == 0.0
    assert parse_interval("0.5", config) == 0.5
    assert parse_interval("50steps", config) == pytest.approx(0.5)
    assert parse_interval("50 steps", config) == pytest.approx(0.5)
    assert parse_interval("0.25", {"cells": 100}) == 0.25  # a grid experiment: a time
    with pytest.raises(gd.experiments.ConfigError, match="whole N"):
        parse_interval("50steps", {"cells": 100})
