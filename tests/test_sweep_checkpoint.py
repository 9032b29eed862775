"""Checkpointed sweeps: saved chunks are read back, a sweep killed or interrupted at any point
and resumed writes the same sweep.nc as an uninterrupted one."""

import importlib
import json
from typing import Any

import numpy as np
import pytest
import xarray as xr
from _runs import killed_at
from _small import SMALL
from typer.testing import CliRunner

from gandyn.checkpoint import CheckpointSpec, read_checkpoint, stage
from gandyn.cli import app
from gandyn.experiments import Experiment, Param, Result, RunOptions
from gandyn.sweep import sweep

runner = CliRunner()
GRID: dict[str, list[Any]] = {"c": [0.12, 0.2, 0.3], "lam": [0.5, 2.0]}  # three chunks of 2
BASE = SMALL | {"clip": "penalty", "beta": 8.0}
ARGS = ["--grid", "c=0.12,0.2,0.3", "--grid", "lam=0.5,2.0", "--chunk", "2"]
ARGS += [arg for key, value in BASE.items() for arg in ("--set", f"{key}={value}")]
ARGS += ["--no-plots", "--no-progress"]


def test_checkpointed_sweep_reads_back_saved_chunks_and_computes_the_rest(tmp_path):
    plain = sweep("toy-shift-linear", GRID, BASE, chunk=2)
    saved = sweep("toy-shift-linear", GRID, BASE, chunk=2, checkpoint=CheckpointSpec(tmp_path))
    xr.testing.assert_identical(saved, plain)
    stages = tmp_path / "stages"
    (first,), (second,), (third,) = (stages.glob(f"chunk-0-*-{start}.npz") for start in (0, 2, 4))
    assert len(list(stages.iterdir())) == 3

    # a missing chunk and a damaged one are computed; a saved one is read back, not computed:
    # the second chunk (c = 0.2) is overwritten with the outcomes of the third (c = 0.3)
    stage(CheckpointSpec(tmp_path), second.stem, lambda: read_checkpoint(third))
    first.unlink()
    third.write_bytes(third.read_bytes()[:100])
    with pytest.warns(UserWarning, match="computing stage"):
        resumed = sweep(
            "toy-shift-linear",
            GRID,
            BASE,
            chunk=2,
            checkpoint=CheckpointSpec(tmp_path, resume=True),
        )
    assert read_checkpoint(first) and read_checkpoint(third)
    for name in plain.data_vars:
        expected = plain[name].copy()
        expected.loc[{"c": 0.2}] = plain[name].sel(c=0.3).values
        xr.testing.assert_identical(resumed[name], expected)
    assert not plain.sel(c=0.2).equals(plain.sel(c=0.3))


def _not_run(config: dict[str, Any], options: RunOptions) -> Result:
    raise AssertionError("never run")


def _affine(config: dict[str, Any]) -> dict[str, Any]:
    sign = 1.0 if config["mode"] == "plus" else -1.0
    return {"y": sign * config["a"] * config["x"] + config["k"]}


AFFINE = Experiment(
    "affine",
    "x ↦ ±a x + k.",
    {
        "x": Param(0.0, "point"),
        "a": Param(1.0, "slope"),
        "k": Param(0, "offset"),
        "mode": Param("plus", "sign", choices=("plus", "minus")),
    },
    _not_run,
    outcomes=_affine,
)


def test_saved_chunks_of_other_sweeps_are_not_read_back(tmp_path):
    spec = CheckpointSpec(tmp_path, resume=True)
    modes = {"mode": ["plus", "minus"]}
    cases = [
        ({"x": [1.0, 2.0, 3.0]}, {"a": 2.0}, 2),
        ({"x": [1.0, 2.0, 3.0]}, {"a": 3.0}, 2),  # another fixed value
        ({"x": [1.0, 2.0, 5.0]}, {"a": 2.0}, 2),  # other grid values
        ({"x": [1.0, 2.0, 3.0]}, {"a": 2.0}, 1),  # other chunks
        ({"x": [1.0, 2.0, 3.0], "k": [1]}, {"a": 2.0}, 2),  # another swept key
    ]
    for grid, base, chunk in cases:
        ds = sweep(AFFINE, modes | grid, base, chunk=chunk, checkpoint=spec)
        line = base["a"] * np.asarray(grid["x"])
        expected = np.stack([line, -line]) + grid.get("k", [0])[0]
        np.testing.assert_array_equal(ds["y"].values.reshape(2, -1), expected)
    assert len(list((tmp_path / "stages").iterdir())) == 2 * (2 + 2 + 2 + 3 + 2)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The folder of the sweep of ``ARGS`` run without interruption."""
    out = tmp_path_factory.mktemp("uninterrupted") / "sweep"
    result = runner.invoke(app, ["sweep", "toy-shift-linear", *ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _record(out) -> dict[str, Any]:
    return json.loads((out / "sweep.json").read_text())


def _resume_and_compare(out, uninterrupted) -> None:
    result = runner.invoke(app, ["resume", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"sweep.nc", "sweep.json"}  # checkpoints removed
    resumed = xr.load_dataset(out / "sweep.nc", engine="scipy")
    xr.testing.assert_identical(
        resumed, xr.load_dataset(uninterrupted / "sweep.nc", engine="scipy")
    )
    assert _record(out)["status"] == "ok"


def test_uninterrupted_sweep_folder(uninterrupted):
    assert {p.name for p in uninterrupted.iterdir()} == {"sweep.nc", "sweep.json"}
    record = _record(uninterrupted)
    assert record["status"] == "ok" and record["x64"] is True and record["chunk"] == 2
    assert record["grid"] == GRID and record["set"] == BASE and record["plots"] is False
    ds = xr.load_dataset(uninterrupted / "sweep.nc", engine="scipy")
    xr.testing.assert_identical(ds, sweep("toy-shift-linear", GRID, BASE, chunk=2))


@pytest.mark.parametrize(
    ("fault", "chunks_saved"), [("kill-after-checkpoint:1", 2), ("kill-before-rename:1", 1)]
)
def test_killed_sweep_resumes_to_the_uninterrupted_result(
    tmp_path, uninterrupted, fault, chunks_saved
):
    out = tmp_path / "sweep"
    killed_at(fault, "sweep", "toy-shift-linear", *ARGS, "--out", str(out))
    assert _record(out)["status"] == "running" and not (out / "sweep.nc").exists()
    assert len(list((out / "checkpoints" / "stages").glob("*.npz"))) == chunks_saved
    _resume_and_compare(out, uninterrupted)


def test_ctrl_c_marks_the_sweep_interrupted_and_resume_completes_it(
    tmp_path, uninterrupted, monkeypatch
):
    calls = []

    def interrupted_at_the_third_chunk(spec, name, compute):
        calls.append(name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return stage(spec, name, compute)

    out = tmp_path / "sweep"
    with monkeypatch.context() as patch:
        patch.setattr(
            importlib.import_module("gandyn.sweep"), "stage", interrupted_at_the_third_chunk
        )
        result = runner.invoke(app, ["sweep", "toy-shift-linear", *ARGS, "--out", str(out)])
    assert result.exit_code == 130
    assert f"continue with: gandyn resume {out}" in result.stderr
    assert _record(out)["status"] == "interrupted" and not (out / "sweep.nc").exists()
    assert len(list((out / "checkpoints" / "stages").glob("*.npz"))) == 2
    _resume_and_compare(out, uninterrupted)


def test_resume_refuses_a_complete_sweep_and_other_folders(tmp_path, uninterrupted):
    before = {p.name: p.read_bytes() for p in uninterrupted.iterdir()}
    result = runner.invoke(app, ["resume", str(uninterrupted)])
    assert result.exit_code == 2 and "is complete (status ok)" in result.stderr
    assert {p.name: p.read_bytes() for p in uninterrupted.iterdir()} == before

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a run")
    result = runner.invoke(app, ["resume", str(other)])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {other} is not")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]

    (other / "sweep.json").write_text('{"experiment": "toy-shift-linear", "gri')
    result = runner.invoke(app, ["resume", str(other)])
    assert result.exit_code == 2 and "not a readable gandyn sweep folder" in result.stderr
