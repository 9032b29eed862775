"""Pieces shared by the study-W particle experiments: config → objects → run → summary."""

from __future__ import annotations

import math
from typing import Any

import diffrax
import jax
import numpy as np

from ..constraints import AbstractConstraint, HardClip, NoConstraint, PenaltyClip, SmoothClip
from ..distributions import GaussianMixture
from ..solvers import SOLVERS, MeanFieldProblem, MeanFieldState, Trajectory, simulate
from .registry import ConfigError, Param, Result, RunOptions

CLIPS = ("hard", "penalty", "smooth", "none")


def clip_params(c: float = 0.5, beta: float = 50.0, clip: str = "hard") -> dict[str, Param]:
    return {
        "clip": Param(
            clip,
            "critic constraint: hard (projection), penalty (Moreau–Yosida), "
            "smooth (reparametrised), none",
            choices=CLIPS,
        ),
        "c": Param(c, "clipping bound: critic parameters live in [-c, c]^q", positive=True),
        "beta": Param(
            beta, "stiffness of penalty/smooth clipping (→ hard as beta → ∞)", positive=True
        ),
    }


def data_params(means=(-1.0, 1.0), weights=(0.5, 0.5), std=0.3) -> dict[str, Param]:
    return {
        "data_means": Param(list(means), "means of the 1-D Gaussian mixture P*"),
        "data_weights": Param(list(weights), "mixture weights (normalised)", minimum=0.0),
        "data_std": Param(std, "standard deviation of each mixture component", positive=True),
    }


def run_params(solver="euler", dt=0.01, t1=40.0, n_snapshots=6, quadrature=16) -> dict:
    return {
        "solver": Param(solver, "diffrax solver by name", choices=tuple(SOLVERS)),
        "dt": Param(dt, "time step", positive=True),
        "t1": Param(t1, "final time", positive=True),
        "n_snapshots": Param(
            n_snapshots, "full particle snapshots, evenly spaced in [0, t1]", minimum=2
        ),
        "quadrature": Param(
            quadrature,
            "Gauss–Hermite nodes per mixture component and for the latent law",
            minimum=1,
        ),
        "seed": Param(0, "random seed for initial particles", minimum=0),
    }


def check_common(config: dict[str, Any]) -> None:
    """Cross-key checks shared by the particle experiments."""
    if len(config["data_weights"]) != len(config["data_means"]):
        raise ConfigError(
            f"data_weights: has {len(config['data_weights'])} entries but data_means has "
            f"{len(config['data_means'])}; give one weight per mean"
        )
    if sum(config["data_weights"]) <= 0:
        raise ConfigError("data_weights: must not all be zero")
    if config["critic_init_low"] >= config["critic_init_high"]:
        raise ConfigError(
            f"critic_init_low: must be < critic_init_high, got {config['critic_init_low']} >= "
            f"{config['critic_init_high']}"
        )
    if config["dt"] >= config["t1"]:
        raise ConfigError(f"dt: must be smaller than t1 = {config['t1']}, got {config['dt']}")
    steps = config["t1"] / config["dt"]
    if abs(steps - round(steps)) > 1e-6 * steps:
        raise ConfigError(f"t1: must be a multiple of dt = {config['dt']}, got {config['t1']}")


def constraint_from_config(config: dict[str, Any]) -> AbstractConstraint:
    kind, c, beta = config["clip"], config["c"], config["beta"]
    if kind == "hard":
        return HardClip(c)
    if kind == "penalty":
        return PenaltyClip(c, beta)
    if kind == "smooth":
        return SmoothClip(c, beta)
    return NoConstraint()


def data_law(config: dict[str, Any]) -> GaussianMixture:
    means = np.asarray(config["data_means"], dtype=float)[:, None]
    return GaussianMixture(means, np.asarray(config["data_weights"]), config["data_std"])


def integrate(
    config: dict[str, Any],
    options: RunOptions,
    problem: MeanFieldProblem,
    state: MeanFieldState,
    diagnostics: dict | None = None,
) -> Trajectory:
    """Run ``simulate`` with the config's solver, step, horizon and snapshots."""
    t1 = config["t1"]
    meter = diffrax.TqdmProgressMeter() if options.progress else None
    return simulate(
        problem,
        state,
        t1=t1,
        dt=config["dt"],
        solver=config["solver"],
        snapshot_ts=np.linspace(0.0, t1, config["n_snapshots"]),
        diagnostics=diagnostics,
        progress_meter=meter,
    )


def trajectory_arrays(trajectory: Trajectory) -> dict[str, np.ndarray]:
    """Flat named NumPy arrays for files and plots."""
    arrays = {"ts": trajectory.ts, "snapshot_ts": trajectory.snapshot_ts}
    arrays |= {f"diag_{name}": value for name, value in trajectory.diagnostics.items()}
    arrays |= {
        "snapshot_generator": trajectory.snapshots.generator,
        "snapshot_critic": trajectory.snapshots.critic,
    }
    return {key: np.asarray(jax.device_get(value)) for key, value in arrays.items()}


def finite_or_none(value) -> float | None:
    """A float for JSON, ``None`` where the quantity is undefined (NaN)."""
    value = float(value)
    return value if math.isfinite(value) else None


def result_from(name: str, config: dict, trajectory: Trajectory, summary: dict[str, Any]) -> Result:
    """A :class:`Result`; float summary values that are not finite become ``None``."""
    status = trajectory.status
    summary = {
        key: finite_or_none(value) if isinstance(value, float) else value
        for key, value in summary.items()
    }
    return Result(
        experiment=name,
        config=config,
        summary={"status": status} | summary,
        trajectory=trajectory_arrays(trajectory),
        status=status,
        message=trajectory.failure_report(),
    )
