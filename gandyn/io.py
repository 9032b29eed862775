"""Writing a run folder atomically: nothing partial is ever left at the target path."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import runs
from .experiments.registry import Experiment, Result


def available_memory() -> int:
    """Bytes the default device can still allocate: free device memory where JAX reports it
    (GPU, TPU), else the host's available memory."""
    import jax

    stats = jax.devices()[0].memory_stats()
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def format_bytes(n_bytes: float) -> str:
    """``n_bytes`` in B, KiB, MiB, GiB or TiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024:
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.3g} TiB"


def environment() -> dict[str, Any]:
    """Versions and device, recorded with every run."""
    import jax

    from ._version import __version__

    return {
        "gandyn": __version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.read("jax_enable_x64")),
    }


def start_run_folder(out: Path, overwrite: bool, config: dict, meta: dict[str, Any]) -> Path:
    """Create the folder a run writes into (``out``, or beside it when it replaces an old
    run: see :mod:`gandyn.runs`) with ``config.json`` and ``run.json`` (status
    ``running``); return it."""
    work = runs.new_folder(out, overwrite)
    if work != out:
        meta = meta | {"replaces": out.name}
    write_json(work / "config.json", config)
    write_json(work / "run.json", meta | {"status": "running", "environment": environment()})
    return work


@contextlib.contextmanager
def staged_folder(out: Path, *, overwrite: bool, in_place: bool = False) -> Iterator[Path]:
    """A temporary sibling folder to write into; on success it replaces ``out`` whole
    (:func:`gandyn.runs.promote`), or with ``in_place`` its files replace those of ``out``
    one by one, keeping the others. On an error it is removed and ``out`` is left as it was."""
    out = Path(out)
    if not in_place:
        runs.check_destination(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        if in_place:  # the record (run.json, sweep.json) last: it says the rest is there
            for path in sorted(staging.iterdir(), key=lambda p: p.name in runs.RECORDS):
                os.replace(path, out / path.name)
            staging.rmdir()
        else:
            runs.promote(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Indented JSON; NaN and infinities are refused (summaries use ``null``)."""
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


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
    plots into ``out`` through :func:`staged_folder`. ``in_place`` (a checkpointed run's
    own folder) replaces the files one by one and keeps the checkpoints. ``meta`` is
    recorded in ``run.json`` (how the run was made, for ``gandyn resume``). A plot that
    fails costs only that plot: the data are written, ``run.json`` records
    ``plot_error`` and a warning says why."""
    record = (meta or {}) | {
        "experiment": result.experiment,
        "status": result.status,
        "message": result.message,
        "environment": environment(),
    }
    with staged_folder(out, overwrite=overwrite, in_place=in_place) as staging:
        write_json(staging / "config.json", result.config)
        write_json(staging / "summary.json", result.summary)
        arrays: dict[str, Any] = dict(result.trajectory)
        np.savez_compressed(staging / "trajectory.npz", allow_pickle=False, **arrays)
        if plots and experiment.plot is not None:
            try:
                experiment.plot(result, staging)
            except Exception as err:  # the data matter more than a figure
                record["plot_error"] = f"{type(err).__name__}: {err}"
                warnings.warn(f"plots of {out} failed ({record['plot_error']})", stacklevel=2)
        write_json(staging / "run.json", record)
    return sorted(Path(out).iterdir())


def load_trajectory(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a run's ``trajectory.npz`` (no pickles)."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
