"""Command line: ``gandyn list`` and ``gandyn run NAME [--set key=value]... [--out DIR]``."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import jax
import typer

from . import runs
from ._version import __version__
from .admission import check_memory, check_time
from .checkpoint import CheckpointSpec, StaleCheckpoint
from .errors import ConfigError
from .experiments import (
    REGISTRY,
    RunOptions,
    get_experiment,
    load_config_file,
    resolve_config,
)
from .plotting.registry import plot_result
from .sweep import MAX_RUNS, plan_sweep, write_sweep

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Mean-field dynamics of GAN training: run named experiments.",
)


def parse_set(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parse as JSON where they can, else as strings."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set: expected key=value, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if isinstance(value, float) and value != value or value in (float("inf"), -float("inf")):
            raise ConfigError(f"{key}: must be finite, got {raw!r}")
        overrides[key] = value
    return overrides


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command("list")
def list_experiments(
    name: Annotated[str | None, typer.Argument(help="show the keys of one experiment")] = None,
) -> None:
    """List the experiments, or the keys of one with their defaults."""
    if name is None:
        width = max(map(len, REGISTRY))
        for exp in sorted(REGISTRY.values(), key=lambda e: e.name):
            typer.echo(f"{exp.name:<{width}}  {exp.title}")
        return
    try:
        exp = get_experiment(name)
    except ConfigError as err:
        _fail(str(err))
        return
    typer.echo(exp.doc.strip() + "\n")
    for key, param in exp.params.items():
        typer.echo(f"  {key} = {json.dumps(param.default)}  ({param.describe()}): {param.doc}")


def _progress(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else flag


def _finish(experiment, config, work: Path, out: Path, meta: dict, options, *, fresh: bool) -> None:
    """Run into the folder ``work``, print the summary, write the results there and, if the
    run is ``ok``, swap ``work`` in as ``out`` (they differ when a run replaces an older
    one: a failed replacement leaves the old run as it was). Exit with the run's status.
    Ctrl-C marks the run ``interrupted`` (checkpoints stay for ``gandyn resume``); input the
    run itself refuses exits 2 and removes a ``fresh`` folder (nothing partial)."""
    start = time.perf_counter()
    try:
        result = experiment.run(config, options).finite()
    except OSError as err:
        _write_failed(work, err)
        return
    except (StaleCheckpoint, ConfigError) as err:
        if fresh:
            runs.remove_started(work)
        _fail(str(err))
        return
    except KeyboardInterrupt:
        if options.checkpoint is None:
            message = "interrupted (Ctrl-C); checkpoints were off, so nothing can be resumed"
        else:
            message = (
                f"interrupted (Ctrl-C); the work done so far is kept in {work / 'checkpoints'} "
                "(finished stages as stages/NAME.npz)"
            )
        runs.mark(work, "interrupted", message)
        hint = "" if options.checkpoint is None else f"; continue with: gandyn resume {work}"
        typer.echo(f"error: {message}{hint}", err=True)
        raise typer.Exit(code=130) from None
    record = meta | {"elapsed_s": round(time.perf_counter() - start, 3)}
    if work != out:
        record |= {"replaces": out.name}
    record |= {"experiment": result.experiment, "status": result.status}
    record |= {"message": result.message}
    width = max(map(len, result.summary))
    for key, value in result.summary.items():
        shown = f"{value:.6g}" if isinstance(value, float) else json.dumps(value)
        typer.echo(f"  {key:<{width}}  {shown}")
    try:
        runs.write_run(
            work,
            record,
            config=result.config,
            summary=result.summary,
            trajectory=result.trajectory,
            plot=functools.partial(plot_result, result) if meta["plots"] else None,
            overwrite=True,
            in_place=True,
        )
    except OSError as err:
        _write_failed(work, err)
        return
    if result.status == "ok":
        runs.complete(work, out)
        typer.echo(f"wrote {out}")
        return
    typer.echo(f"wrote {work}")
    kept = f"; the earlier run in {out} is kept" if work != out else ""
    hint = f"; continue with: gandyn resume {work}" if result.status == "interrupted" else ""
    typer.echo(f"error: {result.message or result.status}{kept}{hint}", err=True)
    raise typer.Exit(code=130 if result.status == "interrupted" else 1)


def _write_failed(folder: Path, err: OSError) -> None:
    """A write that failed (no space, permissions): one line naming the file and the cause,
    the folder marked ``failed`` where that can still be written, exit 1."""
    where = err.filename or folder
    message = f"cannot write {where}: {err.strerror or err}"
    with contextlib.suppress(OSError, ValueError):
        runs.mark(folder, "failed", message)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _origin(name: str, config: dict[str, Any]) -> str:
    """What a run's checkpoints belong to: experiment, resolved config, gandyn version."""
    return json.dumps({"experiment": name, "config": config, "gandyn": __version__})


def parse_interval(raw: str, config: dict[str, Any]) -> float | None:
    """``--checkpoint-every``: ``auto`` (``None``: about ten checkpoints per run), ``off``
    (no checkpoints: ``0.0``), a time ``T`` or ``N steps`` (``N dt``, for experiments with
    a step ``dt``). Segments are whole numbers of steps (or save intervals for grids)."""
    text = raw.strip().lower()
    if text == "auto":
        return None
    if text == "off":
        return 0.0
    steps = text.endswith("steps")
    try:
        number = float(text.removesuffix("steps").strip())
    except ValueError:
        raise ConfigError(
            f"--checkpoint-every: expected auto, off, a time T or 'N steps', got {raw!r}"
        ) from None
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(f"--checkpoint-every: must be positive, got {raw!r}")
    if not steps:
        return number
    if not (number.is_integer() and config.get("dt", 0) > 0):
        raise ConfigError(
            "--checkpoint-every: 'N steps' needs a whole N and an experiment with a step dt; "
            "give a time instead"
        )
    return number * config["dt"]


def _check_devices(devices: int, config: dict[str, Any], available: int) -> None:
    if not 1 <= devices <= available:
        raise ConfigError(f"--devices: expected 1 to {available} (devices here), got {devices}")
    for key in ("n_gen", "n_critic"):
        if devices > 1 and key in config and config[key] % devices:
            raise ConfigError(
                f"{key}: {config[key]} particles cannot be split over {devices} devices"
            )


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="experiment name (see `gandyn list`)")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a key: key=value (JSON value)")
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="TOML file of key = value (--set wins)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="run folder (default runs/NAME)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run folder")] = False,
    checkpoint_every: Annotated[
        str,
        typer.Option(
            help="checkpoint into OUT/checkpoints every T time units or 'N steps'; auto: "
            "about ten per run; off: none (checkpoints are removed once a run is ok)"
        ),
    ] = "auto",
    progress: Annotated[
        bool | None, typer.Option(help="show a progress bar (default: if stderr is a terminal)")
    ] = None,
    plots: Annotated[bool, typer.Option(help="write PNG plots")] = True,
    x64: Annotated[bool, typer.Option(help="compute in float64")] = True,
    devices: Annotated[
        int, typer.Option(help="split the particle axis over this many devices")
    ] = 1,
    max_hours: Annotated[
        float,
        typer.Option(help="refuse a run whose estimated time is longer (inf: no limit)"),
    ] = 24.0,
) -> None:
    """Run an experiment, print its summary and write config, summary, trajectory, plots."""
    jax.config.update("jax_enable_x64", x64)
    out = Path("runs") / name if out is None else out
    try:
        experiment = get_experiment(name)
        from_file = {} if config_file is None else load_config_file(config_file)
        config = resolve_config(experiment, from_file | parse_set(set_ or []))
        _check_devices(devices, config, jax.device_count())
        if not max_hours > 0:
            raise ConfigError(f"--max-hours: must be positive, got {max_hours}")
        check_memory(experiment, config, devices)
        check_time(experiment, config, max_hours, devices)
        every = parse_interval(checkpoint_every, config)
        runs.check_destination(out, overwrite)
        meta = {"plots": plots, "x64": x64, "checkpoint_every": every}
        record = meta | {"experiment": name}
        work = runs.start(out, runs.RUN, record, overwrite=overwrite, config=config)
    except ConfigError as err:
        _fail(str(err))
        return
    if work != out:
        typer.echo(f"replacing {out}: this run goes into {work} until it ends ok", err=True)
    spec = None
    if every != 0.0:
        spec = CheckpointSpec(work / "checkpoints", every, origin=_origin(name, config))
    options = RunOptions(progress=_progress(progress), checkpoint=spec, devices=devices)
    try:
        with runs.claim(work):
            _finish(experiment, config, work, out, meta, options, fresh=True)
    except ConfigError as err:
        _fail(str(err))


@app.command()
def resume(
    folder: Annotated[Path, typer.Argument(help="a run or sweep folder left unfinished")],
    progress: Annotated[
        bool | None, typer.Option(help="show a progress bar (default: if stderr is a terminal)")
    ] = None,
) -> None:
    """Continue an unfinished run or sweep from its newest good checkpoint."""
    if not folder.is_dir():
        _fail(f"{folder} is not a readable gandyn run or sweep folder (no such folder)")
        return
    try:
        with runs.claim(folder):
            if (folder / runs.SWEEP).exists():
                _resume_sweep(folder, progress, runs.unfinished_sweep(folder))
            else:
                _resume_run(folder, progress)
    except ConfigError as err:
        _fail(str(err))


def _resume_run(folder: Path, progress: bool | None) -> None:
    meta, config_overrides = runs.unfinished_run(folder)
    jax.config.update("jax_enable_x64", bool(meta.get("x64", True)))
    try:
        experiment = get_experiment(meta["experiment"])
        config = resolve_config(experiment, config_overrides)
    except ConfigError as err:
        _fail(f"{folder}/config.json: {err}")
        return
    keep = {key: meta.get(key) for key in ("plots", "x64", "checkpoint_every")}
    every = meta.get("checkpoint_every")
    spec = CheckpointSpec(folder / "checkpoints", every, True, _origin(experiment.name, config))
    options = RunOptions(progress=_progress(progress), checkpoint=spec)
    _finish(experiment, config, folder, runs.target(folder, meta), keep, options, fresh=False)


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``key=v1,v2,...`` (each value JSON where it parses, else a string) or
    ``key=start:stop:count`` (``count`` evenly spaced numbers, both ends included)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--grid: expected key=v1,v2,... or key=start:stop:count, got {item!r}"
            )
        if key in grid:
            raise ConfigError(f"{key}: given twice with --grid; give all its values at once")
        parts = raw.split(":")
        if len(parts) == 3:
            try:
                start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            except ValueError:
                raise ConfigError(
                    f"{key}: expected start:stop:count with numbers and an integer count, "
                    f"got {raw!r}"
                ) from None
            if count < 1:
                raise ConfigError(f"{key}: count must be at least 1, got {count}")
            if count > MAX_RUNS:
                raise ConfigError(
                    f"{key}: count {count:,} is more than a sweep takes ({MAX_RUNS:,})"
                )
            inner = [start + (stop - start) * k / (count - 1) for k in range(1, count - 1)]
            grid[key] = [start] if count == 1 else [start, *inner, stop]
            continue
        grid[key] = [parse_set([f"{key}={v}"])[key] for v in raw.split(",")] if raw.strip() else []
    return grid


@app.command("sweep")
def sweep_command(
    name: Annotated[str, typer.Argument(help="experiment name (see `gandyn list`)")],
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help="swept key: key=v1,v2,... or key=start:stop:count"),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="fix a key: key=value (JSON value)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="sweep folder (default runs/NAME-sweep)")] = None,
    chunk: Annotated[int | None, typer.Option(help="runs per compiled call (default: all)")] = None,
    devices: Annotated[int, typer.Option(help="split the runs over this many devices")] = 1,
    series: Annotated[
        list[str] | None,
        typer.Option("--series", help="keep a recorded time series (e.g. critic_mean)"),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing sweep folder")] = False,
    max_hours: Annotated[
        float,
        typer.Option(help="refuse a sweep whose estimated time is longer (inf: no limit)"),
    ] = 24.0,
    progress: Annotated[
        bool | None, typer.Option(help="show a progress bar (default: if stderr is a terminal)")
    ] = None,
    plots: Annotated[bool, typer.Option(help="write PNG heat-maps and line plots")] = True,
    x64: Annotated[bool, typer.Option(help="compute in float64")] = True,
) -> None:
    """Run an experiment on a grid of values, one compiled call per chunk of runs, in the
    folder OUT: first sweep.json (the settings, status running), then each chunk's outcomes
    in OUT/checkpoints as it finishes, then sweep.nc and plots (status ok; the checkpoints
    are deleted). Ctrl-C stops with status interrupted; `gandyn resume OUT` continues."""
    jax.config.update("jax_enable_x64", x64)
    out = Path("runs") / f"{name}-sweep" if out is None else out
    try:
        values = parse_grid(grid or [])
        base = parse_set(set_ or [])
        runs.check_destination(out, overwrite)
        plan = plan_sweep(name, values, base, chunk=chunk, devices=devices, series=series or ())
        if not max_hours > 0:
            raise ConfigError(f"--max-hours: must be positive, got {max_hours}")
        count = math.prod(len(v) for v in plan.values.values())
        first = resolve_config(get_experiment(name), base | {k: v[0] for k, v in values.items()})
        check_time(get_experiment(name), first, max_hours, devices, runs=count)
        settings = {"experiment": name, "grid": plan.values, "set": base, "chunk": chunk}
        settings |= {"devices": devices, "series": series or [], "plots": plots, "x64": x64}
        work = runs.start(out, runs.SWEEP, settings, overwrite=overwrite)
    except ConfigError as err:
        _fail(str(err))
        return
    if work != out:
        typer.echo(f"replacing {out}: this sweep goes into {work} until it ends ok", err=True)
    try:
        with runs.claim(work):
            _resume_sweep(work, progress, runs.unfinished_sweep(work), plan)
    except ConfigError as err:
        _fail(str(err))


def _resume_sweep(folder: Path, progress: bool | None, record: dict[str, Any], plan=None) -> None:
    """Run the sweep of ``record`` (its ``sweep.json``; ``plan``: that sweep, already
    checked and compiled), reading back the chunks in its checkpoints; write sweep.nc and
    plots in place, mark it ok, delete the checkpoints and, if it replaces an older sweep,
    swap it in. Ctrl-C marks it interrupted."""
    if plan is None:
        jax.config.update("jax_enable_x64", bool(record.get("x64", True)))
        try:
            args = [record[key] for key in ("experiment", "grid", "set")]
            options = {key: record[key] for key in ("chunk", "devices", "series")}
            plan = plan_sweep(*args, **options)
        except ConfigError as err:
            _fail(f"{folder}/sweep.json: {err}")
            return
    spec = CheckpointSpec(folder / "checkpoints", resume=True)
    try:
        dataset = plan.run(spec, progress=_progress(progress))
        write_sweep(dataset, folder, plots=record["plots"], meta=record, in_place=True)
    except OSError as err:
        _write_failed(folder, err)
        return
    except KeyboardInterrupt:
        message = f"interrupted; continue with: gandyn resume {folder}"
        runs.mark(folder, "interrupted", message)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code=130) from None
    target = runs.target(folder, record)
    runs.complete(folder, target)
    shape = " x ".join(f"{key} ({size})" for key, size in dataset.sizes.items())
    typer.echo(f"swept {shape}: outcomes {', '.join(map(str, dataset.data_vars))}")
    typer.echo(f"wrote {target}")


def main() -> None:
    """Console entry point."""
    sys.exit(app())
