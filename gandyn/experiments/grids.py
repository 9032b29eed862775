"""Grid experiments: blow-up of the critic density (study W) and the JS Fokker–Planck flow
(study J). ``grid-blowup``, ``fp-js-1d``, ``fp-js-2d``."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._types import Scalar, Vector
from ..checkpoint import stage, within
from ..constraints import HardClip, PenaltyClip
from ..distributions import MAX_NODES, GaussianMixture, Normal
from ..games import MeanFieldGame
from ..solvers.fokker_planck import FokkerPlanckSolution, solve_fokker_planck
from ..solvers.grid import CFL_LIMITS, ContinuityProblem, Grid, GridTrajectory, solve_continuity
from ..units import AbstractCriticUnit, AbstractGeneratorUnit, LinearCritic, ShiftUnit
from . import memory, work
from .common import check_data, data_law, data_params, finite_summary
from .registry import ConfigError, Experiment, Param, Result, RunOptions, register


class TanhShiftUnit(AbstractGeneratorUnit):
    """``Φ(θ, z) = tanh(θ) + z`` in 1-D: the one-parameter neuron generator of T2 on a grid.

    ``G[μ](z) = z + ∫ tanh θ dμ``: a saturating shift.
    """

    data_dim: int = eqx.field(static=True, default=1)
    latent_dim: int = eqx.field(static=True, default=1)

    @property
    def param_dim(self) -> int:
        return 1

    def __call__(self, theta: Vector, z: Vector) -> Vector:
        return jnp.tanh(theta) + z


class TanhProductCritic(AbstractCriticUnit):
    """``Ψ(ω, x) = tanh(ω x)`` in 1-D: the one-parameter neuron critic of T2 on a grid."""

    data_dim: int = eqx.field(static=True, default=1)

    @property
    def param_dim(self) -> int:
        return 1

    def __call__(self, omega: Vector, x: Vector) -> Scalar:
        return jnp.tanh(omega @ x)


MODELS = {
    "t1": (ShiftUnit(1), LinearCritic(1)),
    "t2": (TanhShiftUnit(), TanhProductCritic()),
}


def loglog_slope(x, y) -> float:
    """Least-squares slope of ``log y`` against ``log x``."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def _lost_mass(mean: float, std: float, low: float, high: float) -> float:
    return 0.5 * (math.erfc((high - mean) / (std * math.sqrt(2)))) + 0.5 * math.erfc(
        (mean - low) / (std * math.sqrt(2))
    )


def _check_interval(config: dict, key: str) -> tuple[float, float]:
    bounds = config[key]
    if len(bounds) != 2 or bounds[0] >= bounds[1]:
        raise ConfigError(f"{key}: expected [low, high] with low < high, got {bounds}")
    return bounds[0], bounds[1]


def _check_holds(key: str, box: tuple[float, float], mean: float, std: float, what: str):
    lost = _lost_mass(mean, std, *box)
    if lost > 1e-6:
        raise ConfigError(
            f"{key}: [{box[0]:g}, {box[1]:g}] holds only {1 - lost:.8g} of the {what} "
            f"N({mean:g}, {std:g}²): {lost:.3g} is lost (tolerance 1e-6); widen it"
        )


# ----------------------------------------------------------------------------- grid-blowup

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
        choices=("upwind", "muscl"),
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
    box = _check_interval(config, "gen_domain")
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
    ``{cells: (GridTrajectory, critic Grid)}``."""
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
            scheme=config["scheme"],
        )
        name = f"{label}-cells{cells}"
        solve = partial(
            _grid_solve,
            problem,
            laws,
            t1=t1,
            save_ts=save_ts,
            snapshot_ts=save_ts if cells == finest else (),
            checkpoint=within(spec, name),
        )
        traj = GridTrajectory.from_arrays(stage(spec, name, solve))
        runs[cells] = (traj, problem.critic_grid)
    return runs


def _grid_solve(problem: ContinuityProblem, laws, **kwargs) -> dict[str, Any]:
    """:func:`solve_continuity` from the initial ``laws``, as arrays."""
    return solve_continuity(problem, problem.initial_state(*laws), **kwargs).as_arrays()


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
        "courant_limit": CFL_LIMITS[config["scheme"]],
        **penalty_summary,
        "penalty_sup_grows_with_beta": bool(np.all(np.diff(sups) > 0)),
    }
    return Result(
        experiment="grid-blowup",
        config=config,
        summary=finite_summary(summary),
        trajectory=arrays,
        status=status,
        message="; ".join(message for _, message in failures) or None,
    )


# ----------------------------------------------------------------------------- fp-js-1d/2d

FP_1D_DOC = """Study J in 1-D: the nonlinear Fokker–Planck flow of the JS divergence on a grid.

∂_t ρ = κ ∂_x(ρ_d ∂_x log(1 + ρ/ρ_d)) from a Gaussian ρ_0 = N(init_mean, init_std²) to the
data ρ_d (a Gaussian mixture, default N(0, 1)), zero-flux walls, κ = 1 (normalisation v)
or ½ (js). Records mass, mean, variance, JS(ρ_t, ρ_d), χ² and min/max of u = ρ/ρ_d: mass
is conserved, JS and χ² never increase, u stays within [min u_0, max u_0].
"""

FP_2D_DOC = """Study J in 2-D: the JS Fokker–Planck flow towards a ring of Gaussians on a grid.

Same equation and diagnostics as fp-js-1d on the square domain², data = ring_components
Gaussians of std ring_std evenly spaced on the circle of radius ring_radius, ρ_0 =
N(init_mean, init_std² I).
"""


def _fp_common(dim: int, domain, cells: int, t1: float, n_saves: int) -> dict[str, Param]:
    return {
        "init_std": Param(
            1.0 if dim == 1 else 0.5, "initial density N(init_mean, init_std² I)", positive=True
        ),
        "domain": Param(list(domain), "box [low, high] (every axis), zero-flux walls"),
        "cells": Param(cells, "cells per axis", minimum=2),
        "t1": Param(t1, "final time", positive=True),
        "normalisation": Param(
            "v", "v: flow of V = 2 JS − log 4 (κ = 1); js: of JS (κ = ½)", choices=("v", "js")
        ),
        "method": Param(
            "explicit",
            "explicit Euler under the diffusive limit, or implicit (backward Euler, Newton + CG)",
            choices=("explicit", "implicit"),
        ),
        "dt": Param(
            0.0,
            "time step; 0 = automatic (0.9 × the explicit limit, 10 × for implicit)",
            minimum=0.0,
        ),
        "n_saves": Param(n_saves, "save times, evenly spaced in [0, t1]", minimum=2),
    }


FP_1D_PARAMS: dict[str, Param] = {
    "data_means": Param([0.0], "means of the 1-D Gaussian mixture ρ_d"),
    "data_weights": Param([1.0], "mixture weights (normalised)", minimum=0.0),
    "data_std": Param(1.0, "standard deviation of each mixture component", positive=True),
    "init_mean": Param(1.0, "initial density N(init_mean, init_std²)"),
    **_fp_common(1, (-8.0, 9.0), 400, 5.0, 201),
}

FP_2D_PARAMS: dict[str, Param] = {
    "ring_radius": Param(2.0, "radius of the ring of data Gaussians", positive=True),
    "ring_components": Param(8, "number of Gaussians on the ring", minimum=1),
    "ring_std": Param(0.4, "standard deviation of each ring Gaussian", positive=True),
    "init_mean": Param([0.5, 0.0], "initial density N(init_mean, init_std² I)"),
    **_fp_common(2, (-4.5, 4.5), 96, 5.0, 51),
}


def ring_mixture(radius: float, components: int, std: float) -> GaussianMixture:
    """``components`` equal Gaussians ``N(m_k, std² I)`` with ``m_k`` evenly on a circle."""
    angles = 2 * np.pi * np.arange(components) / components
    return GaussianMixture(radius * np.stack([np.cos(angles), np.sin(angles)], 1), None, std)


def _fp_laws(config: dict[str, Any], dim: int) -> tuple[GaussianMixture, GaussianMixture]:
    if dim == 1:
        data = data_law(config)
        mean = np.array([[config["init_mean"]]])
    else:
        data = ring_mixture(config["ring_radius"], config["ring_components"], config["ring_std"])
        mean = np.asarray(config["init_mean"], dtype=float)[None]
    return data, GaussianMixture(mean, None, config["init_std"])


def _check_fp(dim: int):
    def check(config: dict[str, Any]) -> None:
        box = _check_interval(config, "domain")
        if dim == 1:
            check_data(config)
            means = [config["init_mean"]]
        else:
            if len(config["init_mean"]) != 2:
                raise ConfigError(f"init_mean: expected [x, y], got {config['init_mean']}")
            means = config["init_mean"]
        lost = 1 - math.prod(1 - _lost_mass(m, config["init_std"], *box) for m in means)
        if lost > 1e-6:
            raise ConfigError(
                f"domain: {box} holds only {1 - lost:.8g} of the initial density: {lost:.3g} "
                "is lost (tolerance 1e-6); widen it"
            )
        if config["dt"] >= config["t1"]:
            raise ConfigError(f"dt: must be smaller than t1 = {config['t1']}, got {config['dt']}")

    return check


def _fp_run(name: str, dim: int):
    def run(config: dict[str, Any], options: RunOptions) -> Result:
        data, initial = _fp_laws(config, dim)
        low, high = config["domain"]

        def solve():
            try:
                return solve_fokker_planck(
                    data,
                    initial,
                    (low, high),
                    config["cells"],
                    config["t1"],
                    normalisation=config["normalisation"],
                    method=config["method"],
                    dt=config["dt"] or None,
                    n_saves=config["n_saves"],
                    checkpoint=within(options.checkpoint, "fokker-planck"),
                    progress=options.progress,
                ).as_arrays()
            except ValueError as err:
                raise ConfigError(str(err)) from err

        sol = FokkerPlanckSolution.from_arrays(stage(options.checkpoint, "fokker-planck", solve))
        diag = {k: np.asarray(v) for k, v in sol.diagnostics.items()}
        js, chi2 = diag["js"], diag["chi2"]
        u_min, u_max = diag["u_min"], diag["u_max"]

        def vector(a: np.ndarray):
            return float(a[0]) if dim == 1 else [float(v) for v in a]

        def monotone(series: np.ndarray) -> bool:
            return bool(np.all(np.diff(series) <= 1e-12 * max(series[0], 1e-300)))

        summary = {
            "status": sol.status,
            "mass_error": float(np.nanmax(np.abs(diag["mass"] - 1))),
            "js_initial": float(js[0]),
            "js_final": float(js[-1]),
            "chi2_initial": float(chi2[0]),
            "chi2_final": float(chi2[-1]),
            "mean_initial": vector(diag["mean"][0]),
            "mean_final": vector(diag["mean"][-1]),
            "var_final": vector(diag["variance"][-1]),
            "mean_velocity_initial": vector(diag["mean_velocity"][0]),
            "js_monotone": monotone(js),
            "chi2_monotone": monotone(chi2),
            "u_min_initial": float(u_min[0]),
            "u_max_initial": float(u_max[0]),
            "u_min_final": float(u_min[-1]),
            "u_max_final": float(u_max[-1]),
            "max_principle": bool(
                np.all(u_min >= u_min[0] * (1 - 1e-9)) and np.all(u_max <= u_max[0] * (1 + 1e-9))
            ),
            "density_min": float(np.nanmin(diag["density_min"])),
            "dt": sol.dt,
            "steps": int(sol.num_steps),
        }
        if "newton_residual" in diag:
            summary["newton_residual_max"] = float(diag["newton_residual"].max())
        arrays = {
            "ts": np.asarray(sol.ts),
            "densities": np.asarray(sol.densities),
            "data_density": np.asarray(sol.data_density),
        }
        arrays |= {f"x{k}": np.asarray(sol.grid.axis_centres(k)) for k in range(dim)}
        arrays |= {f"diag_{k}": v for k, v in diag.items()}
        return Result(
            name,
            config,
            finite_summary(summary),
            arrays,
            status=sol.status,
            message=sol.failure_report(),
        )

    return run


def _plot_blowup(result: Result, out_dir):
    from ..plotting.grids import plot_blowup

    return plot_blowup(result, out_dir)


def _plot_fp(result: Result, out_dir):
    from ..plotting.grids import plot_fokker_planck

    return plot_fokker_planck(result, out_dir)


GRID_BLOWUP = register(
    Experiment(
        "grid-blowup",
        BLOWUP_DOC,
        BLOWUP_PARAMS,
        run_blowup,
        plot=_plot_blowup,
        check=_check_blowup,
        memory=memory.grid_blowup,
        size_keys=("resolutions", "quadrature"),
        work=work.grid_blowup,
        time_keys=("resolutions", "quadrature"),
    )
)
FP_JS_1D = register(
    Experiment(
        "fp-js-1d",
        FP_1D_DOC,
        FP_1D_PARAMS,
        _fp_run("fp-js-1d", 1),
        plot=_plot_fp,
        check=_check_fp(1),
        memory=memory.fokker_planck(1),
        size_keys=("cells",),
        work=work.fokker_planck(1),
        time_keys=("cells",),
    )
)
FP_JS_2D = register(
    Experiment(
        "fp-js-2d",
        FP_2D_DOC,
        FP_2D_PARAMS,
        _fp_run("fp-js-2d", 2),
        plot=_plot_fp,
        check=_check_fp(2),
        memory=memory.fokker_planck(2),
        size_keys=("cells", "ring_components"),
        work=work.fokker_planck(2),
        time_keys=("cells", "ring_components"),
    )
)
