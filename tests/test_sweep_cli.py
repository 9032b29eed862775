"""``gandyn sweep``: NetCDF and plots from one compiled call; bad input exits 2, writes nothing."""

import math

import pytest
import xarray as xr
from _small import SMALL
from typer.testing import CliRunner

import gandyn as gd
from gandyn.cli import app, parse_grid

runner = CliRunner()
SETS = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]


def test_parse_grid_lists_and_ranges():
    assert parse_grid(["c=0.1,0.2", "clip=hard,penalty", "lam=0.5:2:4", "seed=1"]) == {
        "c": [0.1, 0.2],
        "clip": ["hard", "penalty"],
        "lam": [0.5, 1.0, 1.5, 2.0],
        "seed": [1],
    }
    assert parse_grid(["beta=3:3:1", "c="]) == {"beta": [3.0], "c": []}


def test_sweep_writes_netcdf_and_plots(tmp_path):
    out = tmp_path / "sweep"
    # the grid and settings of test_sweep.py: the compiled sweep is reused when run together
    args = ["sweep", "toy-shift-linear", "--grid", "seed=0,3", "--grid", "c=0.12,0.3"]
    args += ["--grid", "lam=0.5:2:2", *SETS, "--set", "clip=penalty", "--set", "beta=8"]
    args += ["--set", "init_sampling=random", "--chunk", "3", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    files = {p.name for p in out.iterdir()}
    assert files == {"sweep.nc", "sweep.json", "heatmaps.png", "lines.png"}
    ds = xr.load_dataset(out / "sweep.nc", engine="scipy")
    assert list(ds.sizes) == ["seed", "c", "lam"] and ds["lam"].values.tolist() == [0.5, 2.0]
    config = SMALL | {"clip": "penalty", "beta": 8.0, "init_sampling": "random"}
    summary = gd.run_experiment("toy-shift-linear", **config, seed=3, c=0.3, lam=2.0).summary
    for name in ds.data_vars:
        expected = summary[str(name)]
        got = float(ds[name].sel(seed=3, c=0.3, lam=2.0))
        assert math.isnan(got) if expected is None else got == pytest.approx(expected, rel=1e-11)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "nope=1,2"], "unknown key 'nope'"),
        (["--grid", "c="], "c: empty list of values"),
        (["--grid", "c=0.1", "--grid", "c=0.2"], "c: given twice with --grid"),
        (["--grid", "c=0.1:x:3"], "c: expected start:stop:count"),
        (["--grid", "c"], "--grid: expected key=v1,v2"),
        (["--grid", "data_std=0.1,-1"], "data_std: expected float > 0"),
        (["--grid", "n_gen=4,8"], "n_gen: cannot be swept or differentiated"),
        (["--grid", "c=0.1", "--set", "c=0.2"], "c: given both in grid and in base"),
        (["--set", "c=0.2"], "grid: give at least one key"),
        (["--grid", "c=0.1", "--chunk", "0"], "chunk: expected a positive integer"),
        (["--grid", "c=0.1", "--devices", "0"], "devices: expected an integer from 1 to 1"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "sweep"
    swept = {arg.partition("=")[0] for arg in args[1::2]}
    sets = [
        arg
        for key, value in SMALL.items()
        if key not in swept
        for arg in ("--set", f"{key}={value}")
    ]
    result = runner.invoke(app, ["sweep", "toy-shift-linear", *args, *sets, "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_existing_folder_is_refused(tmp_path):
    out = tmp_path / "sweep"
    out.mkdir()
    result = runner.invoke(app, ["sweep", "toy-shift-linear", "--grid", "c=0.1", "--out", str(out)])
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert list(out.iterdir()) == []
