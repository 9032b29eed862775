"""Peak-memory estimates: every experiment has one, it grows with the data as the shapes
say, and the command line refuses a run that cannot fit."""

import itertools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import gandyn as gd
from gandyn.cli import app

runner = CliRunner()
FLOAT = 8  # bytes: the tests run in float64


def estimate(name: str, **overrides) -> int:
    experiment = gd.experiments.get_experiment(name)
    return experiment.memory(gd.experiments.resolve_config(experiment, overrides))


@pytest.mark.parametrize("name", sorted(gd.experiments.REGISTRY))
def test_every_experiment_estimates_the_memory_of_its_defaults(name):
    need = estimate(name)
    assert isinstance(need, int) and need > 0


def growth(name: str, key: str, sizes, **overrides) -> list[int]:
    """Increments of the estimate between consecutive ``sizes`` of ``key``."""
    needs = [estimate(name, **overrides, **{key: size}) for size in sizes]
    return [b - a for a, b in itertools.pairwise(needs)]


def test_particle_estimate_is_linear_in_the_particles_and_counts_the_snapshots():
    step = growth("toy-shift-linear", "n_gen", [1000, 2000, 3000], n_critic=64, n_snapshots=50)
    assert step[0] == step[1]
    assert step[0] >= 1000 * 50 * FLOAT  # 1000 more 1-D particles in each of 50 snapshots


def test_mean_field_vs_sgd_grows_with_the_seeds_by_at_least_their_results():
    width, snapshots = 4096, 10  # T1: one parameter per player, 10 distinct snapshot times
    step = growth("mean-field-vs-sgd", "seeds", [8, 16, 24], widths=[16, width])
    assert step[0] == step[1]
    assert step[0] >= 8 * width * 2 * (snapshots + 1) * FLOAT


def test_grid_blowup_counts_every_constraints_finest_snapshots():
    saves, runs = 201, 3  # hard clipping and two penalty stiffnesses
    finest = [1000, 2000, 3000]
    step = growth(
        "grid-blowup",
        "resolutions",
        [[100, n] for n in finest],
        n_saves=saves,
        penalty_betas=[1.0, 2.0],
    )
    assert step[0] == step[1]
    assert runs * 2 * 1000 * saves * FLOAT <= step[0] <= 3 * runs * 2 * 1000 * saves * FLOAT


@pytest.mark.parametrize(("name", "dim"), [("fp-js-1d", 1), ("fp-js-2d", 2)])
def test_fokker_planck_estimate_is_dominated_by_the_saved_densities(name, dim):
    saves = 101
    sizes = [64, 128] if dim == 2 else [1000, 2000]
    cells = [n**dim for n in sizes]
    needs = [estimate(name, cells=n, n_saves=saves) for n in sizes]
    assert needs[1] * cells[0] == needs[0] * cells[1]  # proportional to the cells
    assert saves * cells[0] * FLOAT <= needs[0] <= 3 * saves * cells[0] * FLOAT


@pytest.mark.parametrize(
    ("name", "key", "sizes", "points"),
    [
        ("js-flow-particles", "n_particles", [2000, 4000, 8000], lambda n: n),
        ("gan-as-ode", "latent_quadrature", [32, 64, 128], lambda q: q * q),
    ],
)
def test_kernel_drift_estimates_grow_with_the_square_of_the_points(name, key, sizes, points):
    step = growth(name, key, sizes)
    n = [points(size) for size in sizes]
    quadratic = (n[2] ** 2 - n[1] ** 2) / (n[1] ** 2 - n[0] ** 2)
    assert step[1] / step[0] == pytest.approx(quadratic, rel=0.1)
    assert step[0] >= (n[1] ** 2 - n[0] ** 2) * FLOAT  # one kernel table at least


def test_mse_divergence_grows_with_the_paths():
    n_eta, iters = 40, [10_000, 20_000, 30_000]
    step = growth("mse-divergence", "n_iter", iters, n_eta=n_eta)
    assert step[0] == step[1]
    assert step[0] >= n_eta * 10_000 * 2 * FLOAT  # (a, b) per iteration for every η


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("toy-shift-linear", ["n_gen=2000000000", "n_critic=2000000000"]),  # never built
        ("fp-js-2d", ["cells=1000000"]),
        ("mean-field-vs-sgd", ["widths=[16, 1000000000]"]),
        ("js-flow-particles", ["n_particles=100000000"]),
    ],
)
def test_a_run_too_large_for_memory_is_refused_with_the_estimate(tmp_path, name, overrides):
    experiment = gd.experiments.get_experiment(name)
    values = dict(item.split("=", 1) for item in overrides)
    config = gd.experiments.resolve_config(
        experiment, {k: json.loads(v) for k, v in values.items()}
    )
    need = experiment.memory(config)
    assert need > gd.io.available_memory()  # else the run below would really start
    from gandyn.admission import RUNTIME_BYTES

    shown = gd.io.format_bytes(need + RUNTIME_BYTES)
    out = tmp_path / "big"
    sets = [arg for item in overrides for arg in ("--set", item)]
    result = runner.invoke(app, ["run", name, *sets, "--out", str(out), "--no-plots"])
    assert result.exit_code == 2, result.output
    assert "memory" in result.output and shown in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "overrides", "key"),
    [
        ("toy-shift-linear", {"n_gen": 2 * 10**9, "n_critic": 2 * 10**9}, "n_critic"),
        ("grid-blowup", {"resolutions": [100, 2 * 10**7]}, "resolutions"),
    ],
)
def test_the_refusal_suggests_the_largest_size_that_fits(
    tmp_path, monkeypatch, name, overrides, key
):
    from gandyn.admission import RUNTIME_BYTES, capped as _capped

    free = 8 * 2**30  # fixed: the machine's free memory moves with other processes
    monkeypatch.setattr(gd.io, "available_memory", lambda: free)
    experiment = gd.experiments.get_experiment(name)
    config = gd.experiments.resolve_config(experiment, overrides)
    sets = [arg for k, v in overrides.items() for arg in ("--set", f"{k}={json.dumps(v)}")]
    result = runner.invoke(app, ["run", name, *sets, "--out", str(tmp_path / "big")])
    assert result.exit_code == 2
    suggested = json.loads(result.output.split(f"{key}=")[1].split(";")[0])
    cap = max(np.atleast_1d(suggested)).item()

    def need(bound):
        return experiment.memory(_capped(config, experiment.size_keys, bound)) + RUNTIME_BYTES

    assert need(cap) <= free < need(cap + 1)
