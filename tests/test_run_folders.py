"""Run folders: ``--overwrite`` never deletes what gandyn did not write, a failed
replacement leaves the old run intact, one writer per folder, bad destinations exit 2
before any work."""

import json
import os
from pathlib import Path

import pytest
from _runs import assert_same_run, gandyn_cli, killed_at, load_run
from typer.testing import CliRunner

import gandyn as gd
from gandyn.cli import app
from gandyn.runs import claim, write_run

TINY = ["t1=0.5", "dt=0.05", "n_gen=4", "n_critic=4", "quadrature=4", "n_snapshots=3"]
SETS = [arg for item in TINY for arg in ("--set", item)]
runner = CliRunner()


def run(out, *extra: str, name: str = "toy-shift-linear"):
    sets = SETS if name == "toy-shift-linear" else []
    return runner.invoke(app, ["run", name, *sets, *extra, "--out", str(out), "--no-plots"])


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def finished(tmp_path) -> Path:
    out = tmp_path / "old"
    assert run(out, "--set", "c=0.2").exit_code == 0
    return out


def test_a_folder_with_a_users_files_is_never_deleted(tmp_path):
    out = tmp_path / "v"
    (out / "sub").mkdir(parents=True)
    (out / "thesis.tex").write_text("x")
    result = run(out, "--overwrite")
    assert result.exit_code == 2
    assert "not a gandyn run or sweep folder" in result.output
    assert (out / "thesis.tex").read_text() == "x" and (out / "sub").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v"]


def test_a_gandyn_folder_holding_a_users_file_is_not_deleted(finished):
    (finished / "notes.txt").write_text("mine")
    before = tree(finished)
    result = run(finished, "--overwrite")
    assert result.exit_code == 2 and "notes.txt" in result.output
    assert tree(finished) == before


@pytest.mark.parametrize("where", [".", "", "..", "../..", "~"])
def test_the_working_directory_its_parents_and_home_are_refused(tmp_path, monkeypatch, where):
    home = tmp_path / "home"
    cwd = home / "a" / "b"
    cwd.mkdir(parents=True)
    (cwd / "mine.txt").write_text("keep")
    (home / "top.txt").write_text("keep")
    # a gandyn record does not make them replaceable either
    (cwd / "run.json").write_text(json.dumps({"experiment": "toy-shift-linear"}))
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    out = str(home) if where == "~" else where
    before = tree(home)
    result = run(out, "--overwrite")
    assert result.exit_code == 2, result.output
    assert "gandyn writes only into a folder of its own" in result.output
    assert "Traceback" not in result.output
    assert tree(home) == before


def test_overwrite_replaces_a_gandyn_run_and_leaves_no_hidden_folder(tmp_path, finished):
    assert json.loads((finished / "config.json").read_text())["c"] == 0.2
    result = run(finished, "--set", "c=0.3", "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads((finished / "config.json").read_text())["c"] == 0.3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert not (finished / "checkpoints").exists()


def test_a_failing_replacement_leaves_the_old_run_intact(tmp_path, finished):
    before = tree(finished)
    failing = ["--set", "clip=none", "--set", "lam=1e12", "--set", "t1=5", "--set", "c=0.05"]
    result = run(finished, *failing, "--overwrite")
    assert result.exit_code == 1
    assert "earlier run in" in result.output
    assert tree(finished) == before
    (beside,) = tmp_path.glob(".old.next-*")
    assert json.loads((beside / "summary.json").read_text())["status"] == "nonfinite"
    assert json.loads((beside / "run.json").read_text())["replaces"] == "old"


def test_a_replacement_refused_by_the_run_itself_leaves_old_and_nothing_beside(tmp_path):
    out = tmp_path / "fp"
    small = ["--set", "cells=40", "--set", "t1=0.01"]
    assert run(out, *small, name="fp-js-1d").exit_code == 0
    before = tree(out)
    result = run(out, "--set", "dt=1.0", "--set", "cells=50", "--overwrite", name="fp-js-1d")
    assert result.exit_code == 2 and "diffusive limit" in result.output
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp"]


def test_a_killed_replacement_resumes_beside_the_old_run_and_then_replaces_it(tmp_path):
    args = ["--set", "t1=2.0", "--set", "dt=0.01", "--checkpoint-every", "0.5"]
    reference = tmp_path / "reference"
    assert run(reference, *args).exit_code == 0
    out = tmp_path / "old"
    assert run(out, "--set", "c=0.2").exit_code == 0
    before = tree(out)
    killed_at(
        "kill-after-checkpoint:1",
        *["run", "toy-shift-linear", *SETS, *args, "--out", str(out), "--overwrite"],
        "--no-plots",
    )
    assert tree(out) == before
    (beside,) = tmp_path.glob(".old.next-*")
    done = runner.invoke(app, ["resume", str(out)])
    assert done.exit_code == 2 and f"unfinished replacement is in {beside}" in done.output
    resumed = runner.invoke(app, ["resume", str(beside)])
    assert resumed.exit_code == 0, resumed.output
    assert not beside.exists()
    assert_same_run(out, load_run(reference))


@pytest.mark.parametrize("case", ["under-a-file", "long-name"])
def test_unusable_destinations_are_refused_before_any_work(tmp_path, case):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "run" if case == "under-a-file" else tmp_path / ("x" * 300)
    result = run(out)
    assert result.exit_code == 2, result.output
    assert ("is a file" if case == "under-a-file" else "bytes long") in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_second_writer_is_refused_and_named(finished):
    run_json = json.loads((finished / "run.json").read_text())
    (finished / "run.json").write_text(json.dumps(run_json | {"status": "running"}))
    with claim(finished):
        resumed = runner.invoke(app, ["resume", str(finished)])
        replaced = run(finished, "--overwrite")
    for refused in (resumed, replaced):
        assert refused.exit_code == 2 and f"being written by pid {os.getpid()}" in refused.output
    assert sorted(p.name for p in finished.parent.iterdir()) == ["old"]


def test_a_lock_of_a_dead_process_is_not_stale(tmp_path):
    out = tmp_path / "run"
    killed_at(
        "kill-after-checkpoint:0",
        *["run", "toy-shift-linear", *SETS, "--checkpoint-every", "0.1", "--out", str(out)],
    )
    assert (out / ".gandyn.lock").exists()
    assert gandyn_cli("resume", str(out)).returncode == 0


def test_sweeps_have_the_same_protection(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "data.csv").write_text("1,2")
    args = ["sweep", "toy-shift-linear", "--grid", "c=0.2,0.3", *SETS, "--no-plots"]
    refused = runner.invoke(app, [*args, "--out", str(out), "--overwrite"])
    assert refused.exit_code == 2 and "not a gandyn run or sweep folder" in refused.output
    assert (out / "data.csv").read_text() == "1,2"
    sweep = tmp_path / "sweep"
    assert runner.invoke(app, [*args, "--out", str(sweep)]).exit_code == 0
    again = runner.invoke(app, [*args, "--out", str(sweep), "--overwrite"])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s", "sweep"]


def test_the_python_writer_refuses_a_foreign_folder(tmp_path):
    result = gd.run_experiment("toy-shift-linear", t1=0.5, dt=0.05, n_gen=4, n_critic=4)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "paper.pdf").write_bytes(b"%PDF")
    record = {"experiment": result.experiment, "status": result.status}
    with pytest.raises(gd.ConfigError, match="not a gandyn run"):
        write_run(
            out,
            record,
            config=result.config,
            summary=result.summary,
            trajectory=result.trajectory,
            overwrite=True,
        )
    assert (out / "paper.pdf").read_bytes() == b"%PDF"


def test_two_runs_started_at_once_into_one_folder_one_wins_the_other_exits_2(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "race"
    command = [sys.executable, "-c", "from gandyn.cli import main; main()", "run"]
    command += ["toy-shift-linear", *SETS, "--out", str(out), "--no-plots"]
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    codes = sorted(p.wait(timeout=600) for p in runs)
    errors = [p.stderr.read() for p in runs if p.stderr is not None]
    assert codes == [0, 2], errors
    assert not any("Traceback" in e for e in errors)
    assert json.loads((out / "run.json").read_text())["status"] == "ok"
