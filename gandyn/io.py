"""Files and facts of a run: JSON and arrays, the environment, the memory available."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ._version import __version__


def available_memory() -> int:
    """Bytes the default device can still allocate: free device memory where JAX reports it
    (GPU, TPU), else the host's available memory."""
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
    return {
        "gandyn": __version__,
        "jax": jax.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.read("jax_enable_x64")),
    }


def write_json(path: Path, data: Any) -> None:
    """Indented JSON; NaN and infinities are refused (summaries use ``null``)."""
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


def load_trajectory(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a run's ``trajectory.npz`` (no pickles)."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
