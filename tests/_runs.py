"""Helpers for tests that run the command line in a fresh process and compare run folders."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from gandyn.checkpoint import FAULT_ENV


def gandyn_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``gandyn ARGS...`` in a fresh Python process (output captured as text)."""
    return subprocess.run(
        [sys.executable, "-c", "from gandyn.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=os.environ | (env or {}),
        timeout=600,
    )


def killed_at(fault: str, *args: str) -> None:
    """Run ``gandyn ARGS...`` with the fault ``fault`` injected; it must die by SIGKILL."""
    done = gandyn_cli(*args, env={FAULT_ENV: fault})
    assert done.returncode == -signal.SIGKILL, done.stderr


def load_run(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``summary.json`` and the arrays of ``trajectory.npz`` of a run folder."""
    summary = json.loads((folder / "summary.json").read_text())
    with np.load(folder / "trajectory.npz") as data:
        return summary, {key: data[key] for key in data.files}


def assert_same_run(folder: Path, reference: tuple[dict, dict[str, np.ndarray]]) -> None:
    """The run in ``folder`` has ``reference``'s summary and arrays, bit for bit."""
    summary, arrays = load_run(folder)
    assert summary == reference[0]
    assert arrays.keys() == reference[1].keys()
    for key, value in arrays.items():
        np.testing.assert_array_equal(value, reference[1][key], err_msg=key)
