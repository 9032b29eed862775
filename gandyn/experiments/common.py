"""Pieces shared by several experiments: config keys and checks, the study-W particle
experiments' config → objects → run → summary."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .. import diagnostics as dg
from .._types import Array
from ..constraints import (
    AbstractConstraint,
    HardClip,
    NoConstraint,
    PenaltyClip,
    SmoothClip,
    SplitPenaltyClip,
)
from ..distributions import MAX_NODES, GaussianMixture
from ..errors import ConfigError
from ..games import MeanFieldProblem, MeanFieldState
from ..solvers import SOLVERS, Trajectory, save_grid, simulate, simulate_checkpointed
from ..solvers.outcome import MAX_SAVES
from ..solvers.particles import stiffness_error
from . import work
from .choices import ACTIVATIONS
from .registry import Experiment, Param, Result, RunOptions

CLIPS = ("hard", "penalty", "smooth", "none")
SPLIT = "penalty-split"
"""PenaltyClip's flow with its decay integrated exactly over each ODE step of ``dt``
(``SplitPenaltyClip``): offered where the particle ODE is the run, not to the literal
algorithm, whose steps are not ``dt``."""


def clip_params(
    c: float = 0.5, beta: float = 50.0, clip: str = "hard", split: bool = False
) -> dict[str, Param]:
    """The ``clip``, ``c`` and ``beta`` keys (``clip=penalty-split`` too if ``split``)."""
    split_doc = (
        ", penalty-split (the same flow, its decay integrated exactly over each step: any beta)"
        if split
        else ""
    )
    return {
        "clip": Param(
            clip,
            "critic constraint: hard (projection), penalty (Moreau–Yosida; beta * dt below "
            f"the solver's stability bound){split_doc}, smooth (reparametrised), none",
            choices=CLIPS[:2] + (SPLIT,) + CLIPS[2:] if split else CLIPS,
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


def discriminator_params(width=32, depth=2, lr=1e-2, pretrain=500) -> dict[str, Param]:
    """The discriminator MLP and its training keys of the study-J experiments."""
    return {
        "disc_width": Param(width, "discriminator MLP width", minimum=1),
        "disc_depth": Param(depth, "discriminator MLP hidden layers", minimum=1),
        "disc_activation": Param("tanh", "discriminator activation", choices=tuple(ACTIVATIONS)),
        "disc_lr": Param(lr, "discriminator learning rate (adam)", positive=True),
        "disc_pretrain": Param(pretrain, "BCE steps before the first iteration", minimum=0),
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
            maximum=MAX_NODES,
        ),
        "seed": Param(0, "random seed for initial particles", minimum=0),
    }


def check_data(config: dict[str, Any]) -> None:
    """The data mixture keys agree with each other."""
    if len(config["data_weights"]) != len(config["data_means"]):
        raise ConfigError(
            f"data_weights: has {len(config['data_weights'])} entries but data_means has "
            f"{len(config['data_means'])}; give one weight per mean"
        )
    if sum(config["data_weights"]) <= 0:
        raise ConfigError("data_weights: must not all be zero")


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def check_interval(config: dict[str, Any], key: str) -> tuple[float, float]:
    """``config[key]`` as ``(low, high)`` with ``low < high``."""
    bounds = config[key]
    if len(bounds) != 2 or bounds[0] >= bounds[1]:
        raise ConfigError(f"{key}: expected [low, high] with low < high, got {bounds}")
    return bounds[0], bounds[1]


def lost_mass(mean: float, std: float, low: float, high: float) -> float:
    """Mass of ``N(mean, std²)`` outside ``[low, high]``."""
    return 0.5 * (math.erfc((high - mean) / (std * math.sqrt(2)))) + 0.5 * math.erfc(
        (mean - low) / (std * math.sqrt(2))
    )


def check_common(config: dict[str, Any]) -> None:
    """Cross-key checks shared by the particle experiments."""
    check_data(config)
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
    stiff = stiffness_error(constraint_from_config(config), config["dt"], config["solver"])
    if stiff is not None:
        raise ConfigError(f"beta: {stiff}")


def constraint_from_config(config: dict[str, Any]) -> AbstractConstraint:
    kind, c, beta = config["clip"], config["c"], config["beta"]
    if kind == "hard":
        return HardClip(c)
    if kind == "penalty":
        return PenaltyClip(c, beta)
    if kind == SPLIT:
        return SplitPenaltyClip(c, beta, config["dt"])
    if kind == "smooth":
        return SmoothClip(c, beta)
    return NoConstraint()


def data_law(config: dict[str, Any]) -> GaussianMixture:
    means = jnp.asarray(config["data_means"], dtype=float)[:, None]
    return GaussianMixture(means, jnp.asarray(config["data_weights"]), config["data_std"])


def integrate(
    config: dict[str, Any],
    options: RunOptions,
    problem: MeanFieldProblem,
    state: MeanFieldState,
    diagnostics: dict | None = None,
) -> Trajectory:
    """Run ``simulate`` with the config's solver, step, horizon and snapshots (in
    checkpointed segments if ``options.checkpoint`` is set)."""
    t1 = config["t1"]
    if options.checkpoint is not None:
        return simulate_checkpointed(
            problem,
            state,
            options.checkpoint,
            t1=t1,
            dt=config["dt"],
            solver=config["solver"],
            snapshot_ts=np.linspace(0.0, t1, config["n_snapshots"]),
            diagnostics=dg.default_diagnostics() if diagnostics is None else diagnostics,
            save_ts=save_times(config),
            progress=options.progress,
        )
    meter = diffrax.TqdmProgressMeter() if options.progress else None
    return simulate(
        problem,
        state,
        t1=t1,
        dt=config["dt"],
        solver=config["solver"],
        save_ts=save_times(config),
        snapshot_ts=np.linspace(0.0, t1, config["n_snapshots"]),
        diagnostics=diagnostics,
        progress_meter=meter,
    )


def save_times(config: dict[str, Any]) -> np.ndarray:
    """The save times of a particle run: :func:`save_grid` over ``[0, t1]`` with at most
    ``n_saves`` of them (:data:`MAX_SAVES` for an experiment without that key)."""
    return save_grid(0.0, config["t1"], config["dt"], config.get("n_saves", MAX_SAVES))


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


def valid_saves(trajectory: Trajectory) -> Array:
    """``(T,)`` mask of saves made before the run stopped, with finite diagnostics."""
    valid = trajectory.ts <= trajectory.final_t
    for series in trajectory.diagnostics.values():
        valid &= jnp.all(jnp.isfinite(series.reshape(series.shape[0], -1)), axis=1)
    return valid


def last_valid(series: Array, valid: Array) -> Array:
    """The entry of ``series`` at the last valid save."""
    return series[jnp.max(jnp.where(valid, jnp.arange(valid.shape[0]), 0))]


def wall_outcomes(
    problem: MeanFieldProblem, trajectory: Trajectory, valid: Array
) -> dict[str, Array]:
    """Clipping outcomes shared by the study-W particle experiments (traceable).

    ``first_contact_time`` is the first time a critic coordinate reaches a wall, tracked at
    every step (the crossing of ``max |u| = c`` linearly interpolated inside the step, the
    unprojected step under ``HardClip``), NaN if none: independent of ``t1`` beyond it and
    of the save times. ``contact_time_interpolated`` is the time ``max |u|`` first crosses
    ``c`` interpolated between saves, a surrogate on the save grid that moves continuously
    with the parameters under ``PenaltyClip`` and ``SmoothClip``."""
    diag, ts = trajectory.diagnostics, trajectory.ts
    wall = jnp.where(valid, diag["wall_fraction"], 0.0)
    state_max = jnp.where(valid, diag["critic_state_max_abs"], 0.0)
    c = getattr(problem.constraint, "c", jnp.inf)
    assert trajectory.final.first_times is not None  # every particle run tracks events
    contact = trajectory.final.first_times["wall_contact"]
    return {
        "first_contact_time": jnp.where(jnp.isfinite(contact), contact, jnp.nan),
        "contact_time_interpolated": dg.first_crossing(ts, state_max, c),
        "wall_fraction_final": last_valid(diag["wall_fraction"], valid),
        "wall_fraction_max": jnp.max(wall),
        "critic_max_abs": last_valid(diag["critic_max_abs"], valid),
        "critic_support_width_final": last_valid(diag["critic_support_width"], valid),
        "value_final": last_valid(diag["value"], valid),
        "data_distance_final": last_valid(diag["data_distance"], valid),
    }


Build = Callable[[dict[str, Any]], tuple[MeanFieldProblem, MeanFieldState]]
Summarise = Callable[[dict[str, Any], MeanFieldProblem, Trajectory], dict[str, Array]]


def particle_experiment(
    name: str,
    doc: str,
    params: dict[str, Param],
    build: Build,
    summarise: Summarise,
    diagnostics: dict | None = None,
) -> Experiment:
    """An experiment that integrates a mean-field problem: ``build`` (config → problem,
    initial state) and ``summarise`` (→ summary numbers) are traceable in the continuous
    keys, which gives the experiment its ``outcomes`` for sweeps and gradients."""

    def solve(config: dict[str, Any], options: RunOptions):
        problem, state = build(config)
        if options.devices > 1:
            from ..sharding import particle_mesh, shard_problem

            problem, state = shard_problem(
                problem, state, particle_mesh(jax.devices()[: options.devices])
            )
        trajectory = integrate(config, options, problem, state, diagnostics)
        return trajectory, summarise(config, problem, trajectory)

    def run(config: dict[str, Any], options: RunOptions) -> Result:
        trajectory, summary = solve(config, options)
        status = trajectory.status
        return Result(
            experiment=name,
            config=config,
            summary={"status": status} | {k: finite_or_none(v) for k, v in summary.items()},
            trajectory=trajectory_arrays(trajectory),
            status=status,
            message=trajectory.failure_report(),
        )

    def outcomes(config: dict[str, Any], series: Sequence[str] = ()) -> dict[str, Array]:
        trajectory, summary = solve(config, RunOptions())
        unknown = sorted(set(series) - set(trajectory.diagnostics))
        if unknown:
            raise ConfigError(
                f"series: unknown time series {unknown[0]!r} for {name!r}; "
                f"allowed: {', '.join(trajectory.diagnostics)}"
            )
        chosen = {f"series_{key}": trajectory.diagnostics[key] for key in series}
        return summary | ({"series_t": trajectory.ts} | chosen if series else {})

    def memory(config: dict[str, Any]) -> int:
        problem, state = jax.eval_shape(lambda: build(config))
        return estimate_memory(problem, state, config, diagnostics)

    return Experiment(
        name,
        doc,
        params,
        run,
        check=check_common,
        memory=memory,
        size_keys=("n_gen", "n_critic"),
        work=work.particle_ode,
        time_keys=("n_gen", "n_critic", "quadrature"),
        outcomes=outcomes,
    )


STAGES = {
    "euler": 1,
    "heun": 2,
    "midpoint": 2,
    "ralston": 2,
    "bosh3": 4,
    "tsit5": 7,
    "dopri5": 7,
    "dopri8": 13,
}
"""Vector-field evaluations a step of each solver keeps alive."""


def recorded_size(problem: MeanFieldProblem, state: MeanFieldState, diagnostics: dict) -> int:
    """Numbers ``diagnostics`` record per save (from shapes; ``problem`` and ``state`` may be
    ``jax.ShapeDtypeStruct`` trees)."""
    recorded = jax.eval_shape(
        lambda p, s: {k: f(p, s) for k, f in diagnostics.items()}, problem, state
    )
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(recorded))


def estimate_memory(
    problem: MeanFieldProblem, state: MeanFieldState, config: dict[str, Any], diagnostics
) -> int:
    """Bytes a particle run needs at its peak: the state with the solver's stages and the
    autodiff copies of a velocity evaluation, the particle blocks of the velocity (chunk ×
    nodes tables), the step grid, the recorded diagnostics and the snapshots."""
    itemsize = state.generator.dtype.itemsize
    particles = state.generator.size + state.critic.size
    per_save = recorded_size(problem, state, diagnostics or dg.default_diagnostics())
    game = problem.game
    nodes = game.data.size + game.latent.size
    blocks = 8 * game.chunk(nodes) * nodes
    n_steps = round(config["t1"] / config["dt"])
    saves = len(save_times(config))
    elements = (
        particles * (STAGES.get(config["solver"], 13) + 6 + config["n_snapshots"] + 2)
        + nodes * (game.generator.data_dim + 2) * 4
        + blocks
        + n_steps
        + saves * per_save
    )
    return int(elements * itemsize)
