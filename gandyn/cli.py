"""Command line: ``gandyn list`` and ``gandyn run NAME [--set key=value]... [--out DIR]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .experiments.registry import (
    REGISTRY,
    ConfigError,
    get_experiment,
    load_config_file,
    resolve_config,
)

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
    from . import experiments  # noqa: F401  (registers them)

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
    progress: Annotated[
        bool | None, typer.Option(help="show a progress bar (default: if stderr is a terminal)")
    ] = None,
    plots: Annotated[bool, typer.Option(help="write PNG plots")] = True,
    x64: Annotated[bool, typer.Option(help="compute in float64")] = True,
) -> None:
    """Run an experiment, print its summary and write config, summary, trajectory, plots."""
    import jax

    jax.config.update("jax_enable_x64", x64)
    from . import experiments  # noqa: F401  (registers them)
    from .experiments.registry import RunOptions
    from .io import check_out_dir, write_run

    out = Path("runs") / name if out is None else out
    try:
        experiment = get_experiment(name)
        from_file = {} if config_file is None else load_config_file(config_file)
        config = resolve_config(experiment, from_file | parse_set(set_ or []))
        check_out_dir(out, overwrite)
    except ConfigError as err:
        _fail(str(err))
        return
    show_progress = sys.stderr.isatty() if progress is None else progress
    result = experiment.run(config, RunOptions(progress=show_progress))
    width = max(map(len, result.summary))
    for key, value in result.summary.items():
        shown = f"{value:.6g}" if isinstance(value, float) else json.dumps(value)
        typer.echo(f"  {key:<{width}}  {shown}")
    write_run(result, experiment, out, overwrite=overwrite, plots=plots)
    typer.echo(f"wrote {out}")
    if result.status != "ok":
        typer.echo(f"error: {result.message}", err=True)
        raise typer.Exit(code=1)


def main() -> None:
    """Console entry point."""
    sys.exit(app())
