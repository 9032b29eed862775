"""The command line end to end, and every kind of bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import gandyn as gd
from gandyn.admission import RUNTIME_BYTES
from gandyn.cli import app, parse_set

TINY = [
    "--set",
    "t1=0.5",
    "--set",
    "dt=0.05",
    "--set",
    "n_gen=4",
    "--set",
    "n_critic=4",
    "--set",
    "quadrature=4",
    "--set",
    "n_snapshots=3",
]
runner = CliRunner()


def test_run_writes_config_summary_trajectory_and_plots(tmp_path):
    out = tmp_path / "toy"
    result = runner.invoke(
        app,
        ["run", "toy-shift-linear", *TINY, "--set", "c=0.2", "--out", str(out), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "first_contact_time" in result.output
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "summary.json",
        "run.json",
        "trajectory.npz",
        "time_series.png",
        "phase_portrait.png",
        "critic_histograms.png",
    } <= names
    config = json.loads((out / "config.json").read_text())
    assert config["c"] == 0.2 and config["n_gen"] == 4 and config["lam"] == 1.0
    summary = json.loads((out / "summary.json").read_text())
    python = gd.run_experiment(
        "toy-shift-linear", t1=0.5, dt=0.05, n_gen=4, n_critic=4, quadrature=4, n_snapshots=3, c=0.2
    )
    assert summary == json.loads(json.dumps(python.summary))
    traj = gd.io.load_trajectory(out / "trajectory.npz")
    np.testing.assert_array_equal(
        traj["diag_wall_fraction"], python.trajectory["diag_wall_fraction"]
    )
    assert traj["snapshot_critic"].shape == (3, 4, 1)


def test_existing_folder_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    first = runner.invoke(app, ["run", "toy-shift-linear", *TINY, "--out", str(out), "--no-plots"])
    assert first.exit_code == 0, first.output
    refused = runner.invoke(app, ["run", "toy-shift-linear", *TINY, "--out", str(out)])
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    replaced = runner.invoke(
        app,
        ["run", "toy-shift-linear", *TINY, "--set", "c=0.3", "--out", str(out), "--overwrite"],
    )
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((out / "config.json").read_text())["c"] == 0.3
    assert (out / "time_series.png").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "no-such-experiment"], "unknown experiment 'no-such-experiment'"),
        (["run", "toy-shift-linear", "--set", "colour=red"], "unknown key 'colour'"),
        (["run", "toy-shift-linear", "--set", "c=-1"], "c: expected float > 0"),
        (["run", "toy-shift-linear", "--set", "c=0"], "c: expected float > 0"),
        (["run", "toy-shift-linear", "--set", "n_gen=0"], "n_gen: expected int >= 1"),
        (["run", "toy-shift-linear", "--set", "n_critic=2.5"], "n_critic: expected an integer"),
        (["run", "toy-shift-linear", "--set", "lam=abc"], "lam: expected float"),
        (["run", "toy-shift-linear", "--set", "lam=NaN"], "lam: must be finite"),
        (["run", "toy-shift-linear", "--set", "beta=Infinity"], "beta: must be finite"),
        (["run", "toy-shift-linear", "--set", "clip=soft"], "clip: unknown value 'soft'"),
        (["run", "toy-shift-linear", "--set", "data_weights=[1,2,3]"], "data_weights"),
        (["run", "toy-shift-linear", "--set", "critic_init_low=0.5"], "critic_init_low"),
        (["run", "toy-shift-linear", "--set", "t1=1", "--set", "dt=0.3"], "multiple of dt"),
        (["run", "toy-shift-linear", "--set", "novalue"], "expected key=value"),
        (["run", "neuron-bimodal-1d", "--set", "activation=swish"], "activation"),
        (["list", "nope"], "unknown experiment"),
    ],
)
def test_bad_input_is_one_clear_line_exit_2_and_nothing_written(tmp_path, args, needle):
    out = tmp_path / "never"
    result = runner.invoke(app, [*args, "--out", str(out)] if args[0] == "run" else args)
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_set_values_parse_as_json_where_they_can():
    parsed = parse_set(["a=1", "b=0.5", "c=[0.3,0.7]", "d=true", "e=hard", "f=x=y"])
    assert parsed == {"a": 1, "b": 0.5, "c": [0.3, 0.7], "d": True, "e": "hard", "f": "x=y"}


def test_list_shows_every_experiment_and_the_keys_of_one():
    listing = runner.invoke(app, ["list"])
    assert listing.exit_code == 0
    for name in gd.REGISTRY:
        assert name in listing.output
    keys = runner.invoke(app, ["list", "toy-shift-linear"])
    assert keys.exit_code == 0 and "init_sampling" in keys.output and "period" in keys.output


def test_a_failing_run_exits_nonzero_and_keeps_what_it_computed(tmp_path):
    out = tmp_path / "bad"
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
            "t1=5",
            "--set",
            "c=0.05",
            "--out",
            str(out),
            "--no-plots",
        ],
    )
    assert result.exit_code == 1
    assert "nonfinite" in result.output and "t = " in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "nonfinite"


def test_a_run_that_cannot_fit_in_memory_is_refused_with_the_estimate(tmp_path, monkeypatch):
    experiment = gd.experiments.get_experiment("toy-shift-linear")
    config = gd.experiments.resolve_config(experiment, {"n_gen": 1000, "n_critic": 1000})
    small = gd.experiments.resolve_config(experiment, {"n_gen": 10, "n_critic": 10})
    need, need_small = experiment.memory(config), experiment.memory(small)
    # the estimate grows with the number of particles
    assert need > need_small > 0
    monkeypatch.setattr(gd.io, "available_memory", lambda: need + RUNTIME_BYTES - 1)
    out = tmp_path / "big"
    result = runner.invoke(
        app,
        [
            "run",
            "toy-shift-linear",
            "--set",
            "n_gen=1000",
            "--set",
            "n_critic=1000",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "memory: this run needs about" in result.output and "n_gen" in result.output
    assert not out.exists()


def test_input_refused_by_the_run_itself_exits_2_and_leaves_no_folder(tmp_path):
    # an explicit Fokker-Planck step above the diffusive limit is only known once the grid
    # is built, inside the run, after the (checkpointed) folder was started
    out = tmp_path / "fp"
    result = runner.invoke(
        app, ["run", "fp-js-1d", "--set", "dt=1.0", "--set", "cells=50", "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "diffusive limit" in result.output
    assert not out.exists()
