"""Particles sharded over 8 simulated CPU devices give the results of one device.

The device count is fixed when jax starts, so the check runs in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` set before jax is imported.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import gandyn as gd
from gandyn.sharding import PARTICLES, particle_mesh, shard_particles

SCRIPT = textwrap.dedent(
    """
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    assert len(jax.devices()) == 8, jax.devices()

    import gandyn as gd
    from gandyn.sharding import particle_mesh, shard_problem
    from gandyn.experiments import get_experiment, resolve_config
    from gandyn.experiments.toy import build_t2

    config = resolve_config(
        get_experiment("neuron-bimodal-1d"),
        {"n_gen": 16, "n_critic": 24, "quadrature": 6, "clip": "hard", "c": 0.52},
    )
    problem, state = build_t2(config)
    mesh = particle_mesh()
    sharded_problem, sharded_state = shard_problem(problem, state, mesh)
    assert len(sharded_state.generator.sharding.device_set) == 8
    assert sharded_state.critic.addressable_shards[0].data.shape == (3, 3)
    assert sharded_problem.game.data.nodes.sharding.is_fully_replicated

    diagnostics = {
        "value": gd.diagnostics.game_value,
        "generated_mean": gd.diagnostics.generated_mean,
        "wall_fraction": gd.diagnostics.wall_fraction,
    }
    kwargs = dict(t1=0.6, dt=0.02, snapshot_ts=[0.3], diagnostics=diagnostics)
    single = jax.device_put((problem, state), jax.devices()[0])
    one = gd.simulate(*single, **kwargs)
    many = gd.simulate(sharded_problem, sharded_state, **kwargs)
    assert len(many.final.critic.sharding.device_set) == 8
    assert float(jax.numpy.max(one.diagnostics["wall_fraction"])) > 0  # the walls are reached
    for name in ("generator", "critic"):
        a, b = getattr(one.final, name), getattr(many.final, name)
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-13)
    for name, series in one.diagnostics.items():
        np.testing.assert_allclose(
            np.asarray(many.diagnostics[name]), np.asarray(series), rtol=1e-11, atol=1e-13
        )
    try:
        shard_problem(problem, gd.MeanFieldState(state.generator[:10], state.critic), mesh)
    except ValueError as err:
        assert "10 particles cannot be split evenly over 8 devices" in str(err)
    else:
        raise AssertionError("10 particles over 8 devices were accepted")
    print("ok")
    """
)


SWEEP_SCRIPT = textwrap.dedent(
    """
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    assert len(jax.devices()) == 8, jax.devices()

    import gandyn as gd

    base = {"n_gen": 6, "n_critic": 6, "quadrature": 4, "t1": 1.0, "dt": 0.05, "n_snapshots": 2}
    grid = {"c": [0.1, 0.2, 0.3], "lam": [0.5, 1.0, 2.0, 4.0]}  # 12 runs: padded to 16
    one = gd.sweep("toy-shift-linear", grid, base)
    many = gd.sweep("toy-shift-linear", grid, base, devices=8)
    for name in one.data_vars:
        np.testing.assert_allclose(many[name].values, one[name].values, rtol=1e-13, atol=1e-15)
    print("ok")
    """
)


def _run_on_8_devices(script: str) -> None:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().endswith("ok")


def test_sharded_simulation_equals_single_device():
    _run_on_8_devices(SCRIPT)


@pytest.mark.slow
def test_sweep_split_over_devices_equals_one_device():
    _run_on_8_devices(SWEEP_SCRIPT)


def test_more_devices_than_available_are_refused():
    with pytest.raises(gd.ConfigError, match="devices: expected an integer from 1 to 1, got 2"):
        gd.sweep("toy-shift-linear", {"c": [0.1]}, devices=2)


def test_one_device_mesh_keeps_values():
    import jax
    import numpy as np

    mesh = particle_mesh()
    measure = gd.ParticleMeasure(jax.numpy.arange(6.0).reshape(3, 2))
    sharded = shard_particles(measure, mesh)
    np.testing.assert_array_equal(np.asarray(sharded.positions), np.asarray(measure.positions))
    expected = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(PARTICLES))
    assert sharded.positions.sharding == expected
    with pytest.raises(ValueError, match="leading particle axis"):
        shard_particles(jax.numpy.ones(()), mesh)


def test_run_on_several_devices_equals_one_device(tmp_path):
    """``gandyn run --devices 4`` on simulated CPU devices gives the one-device summary."""
    script = f"""
import json
from typer.testing import CliRunner
from gandyn.cli import app
runner = CliRunner()
small = ["--set", "t1=1.0", "--set", "n_gen=8", "--set", "n_critic=8", "--set", "quadrature=4",
         "--no-plots"]
for devices in (1, 4):
    out = r"{tmp_path}" + f"/run{{devices}}"
    result = runner.invoke(app, ["run", "toy-shift-linear", *small, "--devices", str(devices),
                                 "--out", out])
    assert result.exit_code == 0, result.output
bad = runner.invoke(app, ["run", "toy-shift-linear", "--set", "n_gen=6", "--devices", "4"])
assert bad.exit_code == 2 and "cannot be split over 4 devices" in bad.output, bad.output
"""
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    env["JAX_PLATFORMS"] = "cpu"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    one = json.loads((tmp_path / "run1" / "summary.json").read_text())
    four = json.loads((tmp_path / "run4" / "summary.json").read_text())
    assert one.keys() == four.keys()
    for key, value in one.items():
        if isinstance(value, float):
            assert four[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
        else:
            assert four[key] == value, key


RESUME_SCRIPT = textwrap.dedent(
    """
    import pathlib, tempfile
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    import gandyn as gd
    from gandyn.checkpoint import CheckpointSpec
    from gandyn.experiments.toy import T1_PARAMS, build_t1
    from gandyn.sharding import particle_mesh, shard_problem
    from gandyn.solvers import simulate_checkpointed

    config = {k: p.default for k, p in T1_PARAMS.items()}
    config |= {"n_gen": 8, "n_critic": 8, "quadrature": 4, "t1": 1.0, "dt": 0.01}
    problem, state = shard_problem(*build_t1(config), particle_mesh(jax.devices()[:4]))
    folder = pathlib.Path(tempfile.mkdtemp())
    kwargs = dict(t1=1.0, dt=0.01, solver="euler", snapshot_ts=[0.5],
                  diagnostics=gd.diagnostics.default_diagnostics())
    whole = simulate_checkpointed(problem, state, CheckpointSpec(folder, 0.2), **kwargs)
    for path in sorted(folder.glob("ckpt-*.npz"))[1:]:
        path.unlink()
    spec = CheckpointSpec(folder, 0.2, resume=True)
    resumed = simulate_checkpointed(problem, state, spec, **kwargs)
    final = resumed.final.generator
    np.testing.assert_array_equal(final, whole.final.generator)
    mean = resumed.diagnostics["critic_mean"]
    np.testing.assert_array_equal(mean, whole.diagnostics["critic_mean"])
    assert final.sharding == state.generator.sharding, final.sharding
    # the state read back from a checkpoint goes back onto the devices it came from
    from gandyn.checkpoint import _from_host, _to_host
    restored = _from_host(state, _to_host(state))
    assert restored.critic.sharding == state.critic.sharding, restored.critic.sharding
    print("ok")
    """
)


def test_a_sharded_run_resumes_sharded_and_bit_for_bit():
    _run_on_8_devices(RESUME_SCRIPT)
