"""Sweeps: one vmapped call equals the loop of single runs; bad grids are refused early."""

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
from _small import SMALL

import gandyn as gd
from gandyn.experiments import Experiment, Param, Result, RunOptions
from gandyn.sweep import sweep


def _close(swept, single):
    if single is None:
        return math.isnan(swept)
    return math.isclose(swept, single, rel_tol=1e-11, abs_tol=1e-13)


def test_sweep_equals_loop_of_single_runs():
    grid = {"seed": [0, 3], "c": [0.12, 0.3], "lam": [0.5, 2.0]}
    base = SMALL | {"clip": "penalty", "beta": 8.0, "init_sampling": "random"}
    ds = sweep("toy-shift-linear", grid, base, chunk=3)
    assert list(ds.sizes) == ["seed", "c", "lam"] and ds.sizes["lam"] == 2
    assert ds.attrs["experiment"] == "toy-shift-linear"
    contacts = set()
    for seed in grid["seed"]:
        for c in grid["c"]:
            for lam in grid["lam"]:
                summary = gd.run_experiment(
                    "toy-shift-linear", **base, seed=seed, c=c, lam=lam
                ).summary
                point = ds.sel(seed=seed, c=c, lam=lam)
                for name in ds.data_vars:
                    assert _close(float(point[name]), summary[str(name)]), (name, seed, c, lam)
                contacts.add(summary["first_contact_time"])
    assert len(contacts) > 2  # the grid is not degenerate: contact times differ


def test_kept_time_series_equal_the_single_runs_trajectories():
    base = SMALL | {"clip": "hard"}
    grid = {"c": [0.1, 0.3], "lam": [1.0, 2.0]}
    ds = sweep("toy-shift-linear", grid, base, series=["critic_mean", "wall_fraction"])
    assert ds["series_wall_fraction"].dims == ("c", "lam", "t")
    for c in grid["c"]:
        for lam in grid["lam"]:
            single = gd.run_experiment("toy-shift-linear", **base, c=c, lam=lam).trajectory
            np.testing.assert_allclose(ds["t"], single["ts"], rtol=0, atol=0)
            point = ds.sel(c=c, lam=lam)
            np.testing.assert_allclose(
                point["series_critic_mean"], single["diag_critic_mean"], rtol=1e-12, atol=1e-14
            )
            np.testing.assert_allclose(
                point["series_wall_fraction"], single["diag_wall_fraction"], rtol=1e-14
            )
    with pytest.raises(gd.ConfigError, match="unknown time series 'nope'"):
        sweep("toy-shift-linear", grid, base, series=["nope"])


@pytest.mark.slow
def test_discrete_keys_loop_outside_the_compiled_call():
    base: dict[str, Any] = SMALL | {"t1": 1.0, "c": 0.08}
    ds = sweep("toy-shift-linear", {"clip": ["hard", "smooth"], "gen_init_mean": [0.5]}, base)
    assert list(ds.sizes) == ["clip", "gen_init_mean"]
    for clip in ("hard", "smooth"):
        summary = gd.run_experiment(
            "toy-shift-linear", **base, clip=clip, gen_init_mean=0.5
        ).summary
        for name in ("value_final", "critic_max_abs", "first_contact_time"):
            assert _close(float(ds[name].sel(clip=clip, gen_init_mean=0.5)), summary[name])


@pytest.mark.parametrize(
    ("grid", "base", "match"),
    [
        ({"nope": [1.0]}, {}, "unknown key 'nope'"),
        ({"c": []}, {}, "c: empty list of values"),
        ({"c": 0.5}, {}, "c: expected a list of values"),
        ({"c": [0.1, -0.2]}, {}, "c: expected float > 0, got -0.2"),
        ({"c": [0.1, 0.1]}, {}, "c: values must be distinct"),
        ({"data_means": [[0.0, 1.0]]}, {}, "data_means: cannot be swept"),
        ({"c": [0.1]}, {"c": 0.2}, "c: given both in grid and in base"),
        ({"critic_init_low": [0.0, 0.2]}, {"critic_init_high": 0.1}, "critic_init_low: must be <"),
        ({}, {}, "grid: give at least one key"),
    ],
)
def test_bad_grids_are_refused(grid, base, match):
    with pytest.raises(gd.ConfigError, match=match):
        sweep("toy-shift-linear", grid, base)


@pytest.mark.parametrize(("key", "values"), [("n_gen", [4, 8]), ("t1", [1.0, 2.0])])
def test_keys_that_set_shapes_or_step_counts_are_refused(key, values):
    base = {k: v for k, v in SMALL.items() if k != key}
    with pytest.raises(gd.ConfigError, match=f"{key}: cannot be swept or differentiated"):
        sweep("toy-shift-linear", {key: values}, base)


def test_grid_too_large_for_memory_is_refused_with_estimate():
    axis = list(np.linspace(0.1, 1.0, 1000))
    n_outcomes = 15  # float64 scalars per run of toy-shift-linear
    with pytest.raises(gd.ConfigError, match="1,000,000,000 runs need about") as err:
        sweep("toy-shift-linear", {"c": axis, "lam": axis, "beta": axis}, SMALL)
    estimate = float(str(err.value).split("about ")[1].split(" GiB")[0])
    assert estimate == pytest.approx(1e9 * n_outcomes * 8 / 2**30, rel=1e-2)
    with pytest.raises(gd.ConfigError, match="2 runs need about 240 B .* than the 200 B avail"):
        sweep("toy-shift-linear", {"c": [0.1, 0.2]}, SMALL, max_memory=200)


@pytest.mark.slow
def test_chunk_too_large_for_memory_is_refused_after_compiling():
    with pytest.raises(gd.ConfigError, match=r"per chunk in flight.*pass chunk <= \d+"):
        sweep("toy-shift-linear", {"c": [0.1, 0.2, 0.3, 0.4]}, SMALL, max_memory=12_000)


def _not_run(config: dict[str, Any], options: RunOptions) -> Result:
    raise AssertionError("never run")


def test_experiment_without_outcomes_is_refused():
    experiment = Experiment("no-outcomes", "doc", {"c": Param(1.0, "c")}, _not_run)
    with pytest.raises(gd.ConfigError, match="no traceable outcomes"):
        sweep(experiment, {"c": [1.0]})


def _polynomial_outcomes(config: dict[str, Any]) -> dict[str, Any]:
    powers = config["x"] ** jnp.arange(3)
    sign = 1.0 if config["mode"] == "plus" else -1.0
    return {"powers": powers, "total": sign * jnp.sum(powers) + config["k"]}


POLYNOMIAL = Experiment(
    "polynomial",
    "x ↦ (1, x, x²) and ±(1 + x + x²) + k.",
    {
        "x": Param(1.0, "point"),
        "k": Param(0, "integer offset"),
        "mode": Param("plus", "sign", choices=("plus", "minus")),
        "label": Param("free", "free text"),
    },
    _not_run,
    outcomes=_polynomial_outcomes,
)


def test_array_outcomes_discrete_and_integer_keys_on_a_closed_form():
    xs, ks = [0.5, -2.0, 3.0], [1, 4]
    ds = sweep(POLYNOMIAL, {"mode": ["minus", "plus"], "x": xs, "k": ks}, chunk=2)
    assert ds["powers"].dims == ("mode", "x", "k", "powers_0")
    for mode, sign in (("plus", 1.0), ("minus", -1.0)):
        for x in xs:
            for k in ks:
                point = ds.sel(mode=mode, x=x, k=k)
                assert point["powers"].values.tolist() == [1.0, x, x * x]
                assert float(point["total"]) == sign * (1 + x + x * x) + k
    with pytest.raises(gd.ConfigError, match="label: cannot be swept"):
        sweep(POLYNOMIAL, {"label": ["a", "b"]})
