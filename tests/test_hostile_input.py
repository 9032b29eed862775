"""Hostile input: numbers that overflow, sizes that cannot fit in memory or in time, broken
run records and config files, full disks. Every case ends in one line and exit 2 (bad
input) or 1 (a failed write), never a traceback, and leaves no partial folder."""

import errno
import hashlib
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from typer.testing import CliRunner

import gandyn as gd
from gandyn.admission import OPERATIONS_PER_SECOND
from gandyn.cli import app
from gandyn.distributions import standard_normal_rule
from gandyn.plotting.registry import PLOTS

runner = CliRunner()
TINY = ["t1=0.5", "dt=0.05", "n_gen=4", "n_critic=4", "quadrature=4", "n_snapshots=3"]
SETS = [arg for item in TINY for arg in ("--set", item)]


def refused(result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert needle in result.output, result.output


@pytest.mark.parametrize(
    ("name", "key", "value", "needle"),
    [
        ("gan-as-ode", "K_list", "[1000000000]", "time: this run would take about"),
        ("mse-divergence", "K", "2147483647", "time: this run would take about"),
        ("mse-divergence", "K", "2147483648", "too large"),
        ("mse-divergence", "quadrature", "1e9", "<= 10000"),
        ("mean-field-vs-sgd", "quadrature", "2147483647", "<= 10000"),
        ("fp-js-2d", "ring_components", "1e308", "too large"),
        ("fp-js-2d", "ring_components", "100000000", "memory"),
        ("grid-blowup", "quadrature", "1e308", "too large"),
        ("js-flow-particles", "n_particles", "1e308", "too large"),
        ("js-flow-particles", "cells", "100000000", "cells="),
        ("toy-shift-linear", "dt", "1e-320", "t1 / dt"),
        ("toy-shift-linear", "t1", "1e308", "t1 / dt"),
        ("mean-field-vs-sgd", "widths", "[1e308]", "too large"),
        ("mean-field-vs-sgd", "critic_steps", "1e308", "too large"),
        ("mse-divergence", "n_eta", "1e308", "too large"),
        ("toy-shift-linear", "n_gen", "99999999999999999999", "too large"),
        ("toy-shift-linear", "seed", "123456789012345678901234567890", "too large"),
    ],
)
def test_sizes_and_overflowing_numbers_are_refused_before_anything_runs(
    tmp_path, name, key, value, needle
):
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", name, "--set", f"{key}={value}", "--out", str(out)])
    refused(result, needle)
    assert list(tmp_path.iterdir()) == []


def test_a_time_refusal_names_the_key_and_the_largest_value_that_fits(tmp_path):
    experiment = gd.experiments.get_experiment("gan-as-ode")
    result = runner.invoke(
        app, ["run", "gan-as-ode", "--set", "n_iter=10000000", "--out", str(tmp_path / "r")]
    )
    refused(result, "n_iter=")
    suggested = int(result.output.split("n_iter=")[1].split()[0].rstrip(";"))
    config = gd.experiments.resolve_config(experiment, {}) | {"n_iter": suggested}
    limit = 24 * 3600 * OPERATIONS_PER_SECOND
    assert experiment.work(config) <= limit < experiment.work(config | {"n_iter": suggested + 1})


def test_the_work_estimate_grows_with_every_time_key():
    for name, experiment in gd.REGISTRY.items():
        assert experiment.work is not None, name
        config = gd.experiments.resolve_config(experiment, {})
        base = experiment.work(config)
        assert math.isfinite(base) and base > 0, name
        for key in experiment.time_keys:
            value = config[key]
            bigger = [2 * v for v in value] if isinstance(value, list) else 2 * value
            assert experiment.work(config | {key: bigger}) > base, (name, key)


def test_a_sweep_grid_too_large_to_plan_is_refused_at_once(tmp_path):
    grid = ["--grid", "c=0.1:0.5:2000", "--grid", "lam=0.5:2:1000"]
    result = runner.invoke(app, ["sweep", "toy-shift-linear", *grid, "--out", str(tmp_path / "s")])
    refused(result, "at most 1,000,000 per sweep")
    result = runner.invoke(
        app, ["sweep", "toy-shift-linear", "--grid", "c=0.1:0.5:100000000", "--out", "x"]
    )
    refused(result, "more than a sweep takes")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ("[]", "must hold JSON objects"),
        ("null", "must hold JSON objects"),
        ('{"status": "running"}', "no experiment name"),
        ('{"status": "running", "checkpoint_every": 0.5}', "no experiment name"),
        ('{"status": "running", "experiment": "toy-shift-linear", "checkpoint_every": "x"}', "x"),
        ('{"status": "running", "experiment": "toy-shift-linear", "checkpoint_every": -1}', "-1"),
        ('{"status": "running", "experiment": "nope", "checkpoint_every": 1}', "unknown"),
        ("{not json", "not a readable gandyn run"),
    ],
)
def test_resume_of_a_broken_run_record_is_one_line(tmp_path, record, needle):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(record)
    (folder / "config.json").write_text("{}")
    refused(runner.invoke(app, ["resume", str(folder)]), needle)


def test_config_files_that_are_folders_or_nest_too_deeply_are_refused(tmp_path):
    refused(runner.invoke(app, ["run", "toy-shift-linear", "--config", str(tmp_path)]), "folder")
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    refused(runner.invoke(app, ["run", "toy-shift-linear", "--config", str(deep)]), str(deep))


def test_a_full_disk_is_one_line_exit_1_and_the_run_marked_failed(tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "trajectory.npz")

    monkeypatch.setattr(np, "savez_compressed", no_space)
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "toy-shift-linear", *SETS, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "cannot write trajectory.npz: No space left on device" in result.output
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "No space" in record["message"]


def test_a_plot_that_fails_costs_only_the_plot(tmp_path, monkeypatch):
    def broken(result, out):
        raise RuntimeError("no figure today")

    monkeypatch.setitem(PLOTS, "toy-shift-linear", broken)
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="no figure today"):
        result = runner.invoke(app, ["run", "toy-shift-linear", *SETS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "ok" and record["plot_error"] == "RuntimeError: no figure today"
    assert {"summary.json", "trajectory.npz"} <= {p.name for p in out.iterdir()}


def test_a_nan_in_a_summary_is_null_and_the_run_not_ok():
    result = gd.Result("x", {}, {"a": 1.0, "b": float("nan"), "c": [1.0, float("inf")]}, {})
    checked = result.finite()
    assert checked.summary == {"a": 1.0, "b": None, "c": [1.0, None]}
    assert checked.status == "nonfinite" and "b, c" in (checked.message or "")
    assert result.finite().summary is not result.summary
    fine = gd.Result("x", {}, {"a": 1.0}, {})
    assert fine.finite() is fine


@pytest.mark.parametrize("size", [5, 150, 151, 379, 380, 1000])
def test_gauss_hermite_rules_stay_exact_beyond_numpys_overflow(size):
    # numpy's hermegauss gives NaN weights from 380 nodes on; E x^2 = 1, E x^4 = 3 exactly
    nodes, weights = standard_normal_rule(size, 1)
    x = nodes[:, 0]
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    assert weights.sum() == pytest.approx(1.0, abs=1e-13)
    assert weights @ x**2 == pytest.approx(1.0, abs=1e-11)
    assert weights @ x**4 == pytest.approx(3.0, abs=1e-10)


HOSTILE = [
    "0", "-1", "1", "1e308", "-1e308", "1e-320", "2147483648", "9223372036854775808",
    "123456789012345678901234567890", "NaN", "Infinity", "[]", "[1e308]", "[0]", "[-1]",
    "[[1]]", "{}", "true", "null", '""', "x", "0.5", "1e9", "100000", "[1, 1e12]",
    "2", "3", "1000", "1e6", "0.001", "1e-9", "[1, 2]", "[100000]", "[0.5, 1e300]",
]  # fmt: skip


@st.composite
def hostile_case(draw):
    name = draw(st.sampled_from(sorted(gd.REGISTRY)))
    params = sorted(gd.REGISTRY[name].params)
    keys = draw(st.lists(st.sampled_from(params), min_size=1, max_size=2, unique=True))
    return name, [(key, draw(st.sampled_from(HOSTILE))) for key in keys]


@settings(
    derandomize=True,
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=hostile_case())
def test_fuzz_hostile_values_end_in_a_clean_refusal(tmp_path, case):
    # --max-hours 1e-15 refuses every config that passes validation and the memory guard
    # by its time estimate, so no case computes anything: what is fuzzed is every check
    # before a run (parsing, validation, memory and time estimates)
    name, items = case
    out = tmp_path / f"fuzz-{hashlib.sha256(str(case).encode()).hexdigest()[:12]}"
    sets = [arg for key, raw in items for arg in ("--set", f"{key}={raw}")]
    args = ["run", name, *sets, "--out", str(out), "--max-hours", "1e-15", "--no-plots"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (case, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), case
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert not out.exists()


@pytest.mark.parametrize("damage", ["segment", "shape", "dtype"])
def test_a_checkpoint_that_does_not_fit_the_run_is_refused_like_a_stale_one(tmp_path, damage):
    from _runs import killed_at

    from gandyn.checkpoint import read_checkpoint, write_checkpoint

    out = tmp_path / "run"
    args = ["run", "toy-shift-linear", *SETS, "--checkpoint-every", "0.1", "--out", str(out)]
    killed_at("kill-after-checkpoint:1", *args, "--no-plots")
    newest = sorted((out / "checkpoints").glob("ckpt-*.npz"))[-1]
    arrays = read_checkpoint(newest)  # valid digest and origin, rewritten with other contents
    origin = str(arrays.pop("origin"))
    if damage == "segment":
        arrays["segment"] = np.array(999)
    elif damage == "shape":
        arrays["carry_0"] = np.zeros((7, 1))
    else:
        arrays["carry_0"] = arrays["carry_0"].astype(np.float32)
    write_checkpoint(newest.parent, int(newest.stem.split("-")[1]), arrays, origin)
    refused(runner.invoke(app, ["resume", str(out)]), "does not fit this run")
    assert json.loads((out / "run.json").read_text())["status"] == "running"


@pytest.mark.parametrize("name", ["toy-shift-linear", "grid-blowup"])
def test_a_checkpoint_interval_beyond_the_run_is_one_segment(tmp_path, name):
    sets = SETS if name == "toy-shift-linear" else []
    if name == "grid-blowup":
        small = ["resolutions=[16,32]", "penalty_betas=[1.0]", "t1=1", "n_saves=5"]
        sets = [arg for item in small for arg in ("--set", item)]
    out = tmp_path / "run"
    args = ["run", name, *sets, "--checkpoint-every", "1e308", "--out", str(out), "--no-plots"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
