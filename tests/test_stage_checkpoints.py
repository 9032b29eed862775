"""Stage checkpoints of the grid and study-J experiments: a checkpointed, a killed and
resumed, and a damaged-then-resumed run give the plain run's numbers bit for bit, and a
resumed run computes only the stages it has no good file for."""

import functools
import json

import jax
import numpy as np
import pytest
from _runs import assert_same_run, killed_at, load_run
from typer.testing import CliRunner

from gandyn.checkpoint import CheckpointSpec, read_checkpoint
from gandyn.cli import app
from gandyn.experiments import (
    RunOptions,
    fokker_planck,
    gan_as_ode,
    get_experiment,
    grid_blowup,
    js_flow,
    mse_divergence,
    resolve_config,
)

TINY = {
    "grid-blowup": {
        "resolutions": [20, 40],
        "penalty_betas": [1.0],
        "t1": 0.5,
        "n_saves": 6,
        "quadrature": 4,
    },
    "fp-js-1d": {"cells": 50, "t1": 0.2, "n_saves": 3},
    "fp-js-2d": {"cells": 12, "t1": 0.1, "n_saves": 3},
    "js-flow-particles": {"n_particles": 50, "t1": 0.2, "dt": 0.05, "n_saves": 3, "cells": 50},
    "gan-as-ode": {
        "K_list": [1, 2],
        "n_iter": 4,
        "snapshot_every": 2,
        "gen_width": 8,
        "latent_quadrature": 4,
        "quadrature": 2,
    },
    "mse-divergence": {
        "n_eta": 5,
        "n_iter": 100,
        "latent_scales": [1.0],
        "refine": 2,
        "quadrature": 8,
    },
}
WORK = {
    "grid-blowup": [(grid_blowup, "solve_continuity")],
    "fp-js-1d": [(fokker_planck, "solve_fokker_planck")],
    "fp-js-2d": [(fokker_planck, "solve_fokker_planck")],
    "js-flow-particles": [(js_flow, "solve_fokker_planck"), (js_flow, "simulate_js_flow")],
    "gan-as-ode": [(gan_as_ode, "simulate_js_flow"), (gan_as_ode, "run_gan_as_ode")],
    "mse-divergence": [(mse_divergence, "_affine_paths"), (mse_divergence, "_affine_jacobians")],
}
"""The functions that do each experiment's expensive work (one or more calls per stage)."""


def run(name: str, spec: CheckpointSpec | None = None):
    experiment = get_experiment(name)
    return experiment.run(resolve_config(experiment, TINY[name]), RunOptions(checkpoint=spec))


@functools.cache
def plain(name: str):
    return run(name)


def assert_same(result, reference) -> None:
    assert (result.status, result.message) == (reference.status, reference.message)
    assert result.summary == reference.summary
    assert result.trajectory.keys() == reference.trajectory.keys()
    for key, value in reference.trajectory.items():
        np.testing.assert_array_equal(result.trajectory[key], value, err_msg=key)


def count_calls(monkeypatch, module, attr: str, fail_at: int | None = None) -> list[int]:
    """Wrap ``module.attr`` to count its calls that compute (not those traced for the
    shape of a stage read back, which run nothing); the call numbered ``fail_at`` (from 0)
    raises instead, like a kill in the middle of that piece of work."""
    calls, original = [0], getattr(module, attr)

    def wrapper(*args, **kwargs):
        if calls[0] == fail_at:
            raise RuntimeError("killed")
        out = original(*args, **kwargs)
        calls[0] += not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(out))
        return out

    monkeypatch.setattr(module, attr, wrapper)
    return calls


def count_work(monkeypatch, name: str) -> dict[str, list[int]]:
    """Call counters on the functions doing ``name``'s expensive work."""
    return {attr: count_calls(monkeypatch, module, attr) for module, attr in WORK[name]}


SLOW = {"gan-as-ode"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in TINY]
)
def test_checkpointed_and_fully_resumed_runs_equal_the_plain_run(name, tmp_path, monkeypatch):
    assert_same(run(name, CheckpointSpec(tmp_path)), plain(name))
    stages = sorted(p.name for p in (tmp_path / "stages").iterdir())
    assert len(stages) >= 1 and all(s.endswith(".npz") for s in stages)
    calls = count_work(monkeypatch, name)
    assert_same(run(name, CheckpointSpec(tmp_path, resume=True)), plain(name))
    assert {a: c[0] for a, c in calls.items()} == dict.fromkeys(calls, 0)  # all read back


def test_stage_names_are_one_per_piece_of_work(tmp_path):
    run("grid-blowup", CheckpointSpec(tmp_path))
    assert sorted(p.stem for p in (tmp_path / "stages").iterdir()) == [
        "hard-cells20",
        "hard-cells40",
        "penalty-beta1.0-cells20",
        "penalty-beta1.0-cells40",
    ]


@pytest.mark.parametrize(
    ("name", "module", "attr", "fail_at"),
    [
        ("grid-blowup", grid_blowup, "solve_continuity", 3),
        ("js-flow-particles", js_flow, "simulate_js_flow", 0),
    ],
)
def test_a_run_stopped_in_a_stage_resumes_with_only_the_unfinished_work(
    name, module, attr, fail_at, tmp_path, monkeypatch
):
    """Stopped in the 4th grid solve (3 stages saved) or in the particle flow (the grid
    solution saved): the resumed run does only that one piece of work again."""
    reference = plain(name)
    with monkeypatch.context() as patch:
        count_calls(patch, module, attr, fail_at)
        with pytest.raises(RuntimeError, match="killed"):
            run(name, CheckpointSpec(tmp_path))
    calls = count_work(monkeypatch, name)
    assert_same(run(name, CheckpointSpec(tmp_path, resume=True)), reference)
    assert {a: c[0] for a, c in calls.items()} == {a: int(a == attr) for a in calls}


@pytest.mark.parametrize(
    ("name", "damaged", "attr"),
    [
        ("grid-blowup", "hard-cells40", "solve_continuity"),
        ("js-flow-particles", "particle-flow", "simulate_js_flow"),
    ],
)
def test_a_damaged_stage_file_is_detected_and_computed_again(
    name, damaged, attr, tmp_path, monkeypatch
):
    run(name, CheckpointSpec(tmp_path))
    path = tmp_path / "stages" / f"{damaged}.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    calls = count_work(monkeypatch, name)
    with pytest.warns(UserWarning, match=rf"{damaged}.npz is unreadable.*stage '{damaged}'"):
        resumed = run(name, CheckpointSpec(tmp_path, resume=True))
    assert_same(resumed, plain(name))
    assert {a: c[0] for a, c in calls.items()} == {a: int(a == attr) for a in calls}
    read_checkpoint(path)  # written again, whole


def cli_args(name: str) -> list[str]:
    sets = [f"{key}={json.dumps(value)}" for key, value in TINY[name].items()]
    return [a for s in sets for a in ("--set", s)] + ["--no-plots"]


@pytest.mark.parametrize(("name", "kill_after"), [("grid-blowup", 3), ("js-flow-particles", 1)])
def test_a_killed_cli_run_resumes_to_the_uninterrupted_numbers(name, kill_after, tmp_path):
    runner = CliRunner()
    whole = runner.invoke(app, ["run", name, *cli_args(name), "--out", str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    out = tmp_path / "killed"
    fault = f"kill-after-checkpoint:{kill_after}"
    killed_at(fault, "run", name, *cli_args(name), "--out", str(out))
    # killed in the middle of a solve: its segments are saved, the stage is not yet
    segments = list((out / "checkpoints").glob("*/ckpt-*.npz"))
    assert segments and not (out / "checkpoints" / "stages").exists()
    resumed = runner.invoke(app, ["resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert_same_run(out, load_run(tmp_path / "whole"))
