"""Writing a run folder atomically: nothing partial is ever left at the target path."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .experiments.registry import ConfigError, Experiment, Result


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse an existing ``out`` unless ``overwrite`` (checked before any work is done)."""
    if out.exists() and not overwrite:
        raise ConfigError(f"--out: {out} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a folder")


def environment() -> dict[str, Any]:
    """Versions and device, recorded with every run."""
    import jax

    from . import __version__

    return {
        "gandyn": __version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.read("jax_enable_x64")),
    }


def _json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


def start_run_folder(out: Path, overwrite: bool, config: dict, meta: dict[str, Any]) -> None:
    """Create ``out`` with ``config.json`` and ``run.json`` (status ``running``) for a run
    that checkpoints into it as it goes."""
    check_out_dir(out, overwrite)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _json(out / "config.json", config)
    _json(out / "run.json", meta | {"status": "running", "environment": environment()})


def write_run(
    result: Result,
    experiment: Experiment,
    out: Path,
    *,
    overwrite: bool,
    plots: bool = True,
    meta: dict[str, Any] | None = None,
    in_place: bool = False,
) -> list[Path]:
    """Write ``config.json``, ``summary.json``, ``run.json``, ``trajectory.npz`` and the
    plots into ``out``. Everything is written into a temporary sibling folder first and
    renamed into place at the end, so an error leaves ``out`` as it was. ``in_place``
    (a checkpointed run's own folder) replaces the files one by one and keeps the rest.
    ``meta`` is recorded in ``run.json`` (how the run was made, for ``gandyn resume``)."""
    out = Path(out)
    if not in_place:
        check_out_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _json(staging / "config.json", result.config)
        _json(staging / "summary.json", result.summary)
        _json(
            staging / "run.json",
            (meta or {})
            | {
                "experiment": result.experiment,
                "status": result.status,
                "message": result.message,
                "environment": environment(),
            },
        )
        arrays: dict[str, Any] = dict(result.trajectory)
        np.savez_compressed(staging / "trajectory.npz", allow_pickle=False, **arrays)
        if plots and experiment.plot is not None:
            experiment.plot(result, staging)
        if in_place:
            for path in staging.iterdir():
                os.replace(path, out / path.name)
            staging.rmdir()
        else:
            if out.exists():
                shutil.rmtree(out)
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(out.iterdir())


def load_trajectory(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a run's ``trajectory.npz`` (no pickles)."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
