"""``grid-blowup`` (study W): blow-up seen as a density, the critic's density on finite-volume
grids with clipping walls, at several resolutions."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from ..constraints import HardClip, PenaltyClip
from ..distributions import MAX_NODES, Normal
from ..errors import ConfigError
from ..games import MeanFieldGame
from ..games._chunks import auto_chunk
from ..solvers.grid import ContinuityProblem, Grid, solve_continuity
from ..solvers.outcome import Trajectory, staged
from ..units import LinearCritic, ShiftUnit, TanhProductCritic, TanhShiftUnit
from . import memory, work
from .choices import SCHEMES
from .common import (
    check_data,
    check_interval,
    data_law,
    data_params,
    loglog_slope,
    lost_mass,
)
from .registry import Experiment, Param, Result, RunOptions

MODELS = {
    "t1": (ShiftUnit(1), LinearCritic(1)),
    "t2": (TanhShiftUnit(), TanhProductCritic()),
}


def _check_holds(key: str, box: tuple[float, float], mean: float, std: float, what: str):
    lost = lost_mass(mean, std, *box)
    if lost > 1e-6:
        raise ConfigError(
            f"{key}: [{box[0]:g}, {box[1]:g}] holds only {1 - lost:.8g} of the {what} "
            f"N({mean:g}, {std:g}²): {lost:.3g} is lost (tolerance 1e-6); widen it"
        )


BLOWUP_DOC = """Blow-up seen as a density: the critic's density on a grid with clipping walls.

Toy T1 (shift generator, linear critic) or T2 with one-dimensional parameters per player
(Φ(θ,z) = tanh θ + z, Ψ(ω,x) = tanh(ωx)), both players on finite-volume grids, critic grid
= the clip box [−c, c] with zero-flux (sticky) walls. At each resolution the sup-norm of
the critic density is recorded over time: before first wall contact it converges as
Δx → 0; after it, mass piles into the wall cells and the sup grows like 1/Δx (the fitted
exponent; the local exponent between the two finest grids tends to 1). With
PenaltyClip(c, β) on a grid extending beyond ±c the sup stays bounded as Δx → 0 (the
local exponent falls towards 0) and grows with β — for large β only once the grid
resolves the e^{βt} compression. courant_max is the largest Courant number any step of any
run used (both SSP-RK2 stages for muscl), never above courant_limit.
"""

BLOWUP_PARAMS: dict[str, Param] = {
    "model": Param("t1", "t1: shift/linear; t2: tanh θ + z / tanh(ωx)", choices=tuple(MODELS)),
    "c": Param(0.5, "clipping bound: the critic grid is [-c, c]", positive=True),
    "lam": Param(1.0, "critic/generator time-scale ratio λ", positive=True),
    **data_params(),
    "gen_init_mean": Param(0.5, "initial generator density N(mean, std²)"),
    "gen_init_std": Param(0.3, "initial generator density N(mean, std²)", positive=True),
    "critic_init_mean": Param(0.0, "initial critic density N(mean, std²) (smooth bump)"),
    "critic_init_std": Param(0.1, "initial critic density N(mean, std²)", positive=True),
    "gen_domain": Param([-3.0, 4.0], "generator grid [low, high] (zero-flux walls)"),
    "resolutions": Param([100, 200, 400, 800], "critic (and generator) cells per run", minimum=8),
    "scheme": Param(
        "upwind",
        "finite-volume flux: upwind (1st order) or muscl (2nd, minmod)",
        choices=tuple(SCHEMES),
    ),
    "penalty_betas": Param(
        [1.0, 2.0, 4.0],
        "PenaltyClip stiffnesses β compared with hard clipping at every resolution",
        positive=True,
    ),
    "penalty_margin": Param(
        1.0, "the PenaltyClip critic grid is [-c - margin, c + margin]", positive=True
    ),
    "contact_mass": Param(
        1e-3, "critic mass in the wall cells that counts as wall contact", positive=True
    ),
    "t1": Param(8.0, "final time", positive=True),
    "n_saves": Param(161, "save times, evenly spaced in [0, t1]", minimum=3),
    "quadrature": Param(
        16,
        "Gauss–Hermite nodes per mixture component and for the latent",
        minimum=1,
        maximum=MAX_NODES,
    ),
}


def _check_blowup(config: dict[str, Any]) -> None:
    check_data(config)
    if len(config["resolutions"]) < 2:
        raise ConfigError(
            f"resolutions: need at least two to fit an exponent, got {config['resolutions']}"
        )
    box = check_interval(config, "gen_domain")
    _check_holds(
        "gen_domain", box, config["gen_init_mean"], config["gen_init_std"], "initial generator law"
    )
    c = config["c"]
    _check_holds(
        "c",
        (-c, c),
        config["critic_init_mean"],
        config["critic_init_std"],
        "initial critic law (the critic grid is [-c, c])",
    )


def _blowup_runs(config: dict[str, Any], constraint, margin: float, spec, label: str):
    """One grid run per resolution, each a checkpoint stage ``LABEL-cellsN``:
    ``{cells: (Trajectory, critic Grid)}``."""
    gen_unit, critic_unit = MODELS[config["model"]]
    size = config["quadrature"]
    game = MeanFieldGame(
        gen_unit,
        critic_unit,
        data_law(config).quadrature(size),
        Normal(0.0, 1.0).quadrature(size),
        lam=config["lam"],
    )
    c, t1 = config["c"], config["t1"]
    save_ts = np.linspace(0.0, t1, config["n_saves"])
    laws = (
        Normal(config["gen_init_mean"], config["gen_init_std"]),
        Normal(config["critic_init_mean"], config["critic_init_std"]),
    )
    finest = max(config["resolutions"])
    runs = {}
    for cells in config["resolutions"]:
        problem = ContinuityProblem(
            game,
            constraint,
            Grid(config["gen_domain"][0], config["gen_domain"][1], cells),
            Grid(-c - margin, c + margin, cells),
            scheme=SCHEMES[config["scheme"]],
        )
        name = f"{label}-cells{cells}"
        solve = partial(
            _grid_solve,
            problem,
            laws,
            t1=t1,
            save_ts=save_ts,
            snapshot_ts=save_ts if cells == finest else (),
        )
        traj = staged(spec, name, solve)
        runs[cells] = (traj, problem.critic_grid)
    return runs


def _grid_solve(problem: ContinuityProblem, laws, checkpoint, **kwargs) -> Trajectory:
    """:func:`solve_continuity` from the initial ``laws``."""
    state = problem.initial_state(*laws)
    return solve_continuity(problem, state, checkpoint=checkpoint, **kwargs)


def _sup_exponent(runs: dict, index, finest_two: bool = False) -> float | None:
    """``p`` in ``sup ∝ Δx^{−p}``, fitted over the resolutions (or the two finest) at save
    ``index``, or for the max over time (before any failure) if ``index`` is None; None if
    a run has no finite value there."""
    items = sorted(runs.items())[-2:] if finest_two else sorted(runs.items())
    dx = [float(grid.spacing[0]) for _, (_, grid) in items]
    sup = [np.asarray(t.diagnostics["critic_sup"]) for _, (t, _) in items]
    values = [np.nanmax(s) if index is None else s[index] for s in sup]
    return -loglog_slope(dx, values) if np.all(np.isfinite(values)) else None


def run_blowup(config: dict[str, Any], options: RunOptions) -> Result:
    spec = options.checkpoint
    c, finest = config["c"], max(config["resolutions"])
    hard = _blowup_runs(config, HardClip(c), 0.0, spec, "hard")
    penalty = {
        beta: _blowup_runs(
            config, PenaltyClip(c, beta), config["penalty_margin"], spec, f"penalty-beta{beta!r}"
        )
        for beta in config["penalty_betas"]
    }
    traj, grid = hard[finest]
    ts = np.asarray(traj.ts)
    wall = np.asarray(traj.diagnostics["critic_wall_mass"])
    touching = wall >= config["contact_mass"]
    contact = int(np.argmax(touching)) if touching.any() else None
    arrays: dict[str, np.ndarray] = {
        "ts": ts,
        "critic_centres": np.asarray(grid.axis_centres(0)),
        "critic_density": np.asarray(traj.snapshots.critic) / float(grid.volume),
        "generator_mean": np.asarray(traj.diagnostics["generator_mean"][:, 0]),
        "critic_mean": np.asarray(traj.diagnostics["critic_mean"][:, 0]),
        "resolutions": np.asarray(config["resolutions"]),
        "penalty_betas": np.asarray(config["penalty_betas"]),
    }
    mass_error, density_min, courant, failures = 0.0, np.inf, 0.0, []
    labelled = [("hard", hard)] + [(f"penalty_{b:g}", runs) for b, runs in penalty.items()]
    for label, runs in labelled:
        for cells, (run, _) in runs.items():
            diag = {k: np.asarray(v) for k, v in run.diagnostics.items()}
            arrays[f"sup_{label}_{cells}"] = diag["critic_sup"]
            arrays[f"wall_mass_{label}_{cells}"] = diag["critic_wall_mass"]
            courant = max(courant, np.nanmax(diag["courant"]))
            for player in ("generator", "critic"):
                mass_error = max(mass_error, np.nanmax(np.abs(diag[f"{player}_mass"] - 1)))
                density_min = min(density_min, np.nanmin(diag[f"{player}_min"]))
            if run.status != "ok":
                failures.append((run.status, f"{label} run, {cells} cells: {run.failure_report()}"))
    penalty_summary: dict[str, Any] = {}
    for beta, runs in penalty.items():
        penalty_summary[f"penalty_exponent_beta_{beta:g}"] = _sup_exponent(runs, None)
        penalty_summary[f"penalty_local_exponent_beta_{beta:g}"] = _sup_exponent(
            runs, None, finest_two=True
        )
        penalty_summary[f"penalty_sup_max_beta_{beta:g}"] = float(
            np.nanmax(runs[finest][0].diagnostics["critic_sup"])
        )
    sups = [penalty_summary[f"penalty_sup_max_beta_{b:g}"] for b in penalty]
    pre = None if contact is None or contact < 2 else contact // 2
    sup_fine = arrays[f"sup_hard_{finest}"]
    sup_next = arrays[f"sup_hard_{sorted(config['resolutions'])[-2]}"]
    status = failures[0][0] if failures else "ok"
    summary = {
        "status": status,
        "contact_time": None if contact is None else float(ts[contact]),
        "blowup_exponent": _sup_exponent(hard, None),
        "blowup_local_exponent": _sup_exponent(hard, None, finest_two=True),
        "sup_max_finest": float(np.nanmax(sup_fine)),
        "wall_mass_max": float(np.nanmax(wall)),
        "pre_contact_time": None if pre is None else float(ts[pre]),
        "pre_contact_exponent": None if pre is None else _sup_exponent(hard, pre),
        "pre_contact_sup_change": None
        if pre is None
        else float(abs(sup_fine[pre] - sup_next[pre]) / sup_fine[pre]),
        "mass_error": float(mass_error),
        "density_min": float(density_min),
        "courant_max": float(courant),
        "courant_limit": SCHEMES[config["scheme"]].cfl_limit,
        **penalty_summary,
        "penalty_sup_grows_with_beta": bool(np.all(np.diff(sups) > 0)),
    }
    return Result(
        experiment="grid-blowup",
        config=config,
        summary=summary,
        trajectory=arrays,
        status=status,
        message="; ".join(message for _, message in failures) or None,
    )


GRID_DIAGNOSTICS = 14
"""Scalars :func:`~gandyn.solvers.grid.grid_diagnostics` records per save (1-D grids)."""


def _blowup_memory(config: dict[str, Any]) -> int:
    """Peak bytes: every run is kept (hard clipping and each ``PenaltyClip`` at every
    resolution): per run both players' final masses, two snapshots (all saves at the
    finest resolution) and the diagnostics. On top: a finest run's results twice more
    while they move to the host and back, the work of one finest step (~60 arrays of cells
    and the particle blocks of the velocity) and the host copy of the finest critic
    density."""
    size = config["quadrature"]
    nodes = len(config["data_means"]) * size + size
    finest, saves = max(config["resolutions"]), config["n_saves"]
    results = {
        cells: 2 * cells * ((saves if cells == finest else 2) + 1) + GRID_DIAGNOSTICS * saves
        for cells in config["resolutions"]
    }
    kept = (1 + len(config["penalty_betas"])) * sum(results.values())
    step = 2 * results[finest] + 60 * finest + 4 * auto_chunk(nodes) * nodes + saves * finest
    return (kept + step) * memory.itemsize()


def _blowup_work(config: dict[str, Any]) -> float:
    """Operations: every resolution, hard clipping and each β: steps (CFL ½ with
    velocities of order one on the critic box) × faces × quadrature nodes."""
    nodes = (len(config["data_means"]) + 1) * config["quadrature"]
    runs = 1 + len(config["penalty_betas"])
    total = 0.0
    for cells in config["resolutions"]:
        steps = max(config["n_saves"], 4.0 * config["t1"] * cells / (2 * config["c"]))
        total += runs * steps * 2 * cells * nodes * work.PAIR
    return total


GRID_BLOWUP = Experiment(
    "grid-blowup",
    BLOWUP_DOC,
    BLOWUP_PARAMS,
    run_blowup,
    check=_check_blowup,
    memory=_blowup_memory,
    size_keys=("resolutions", "quadrature"),
    work=_blowup_work,
    time_keys=("resolutions", "quadrature"),
)
