"""``fp-js-1d`` and ``fp-js-2d`` (study J): the nonlinear Fokker–Planck flow of the JS
divergence on a grid, in 1-D and towards a 2-D ring of Gaussians."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..distributions import GaussianMixture, ring_mixture
from ..errors import ConfigError
from ..solvers.fokker_planck import solve_fokker_planck
from ..solvers.outcome import staged
from . import memory, work
from .common import check_data, check_interval, data_law, lost_mass
from .registry import Experiment, Param, Result, RunOptions

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
        box = check_interval(config, "domain")
        if dim == 1:
            check_data(config)
            means = [config["init_mean"]]
        else:
            if len(config["init_mean"]) != 2:
                raise ConfigError(f"init_mean: expected [x, y], got {config['init_mean']}")
            means = config["init_mean"]
        lost = 1 - math.prod(1 - lost_mass(m, config["init_std"], *box) for m in means)
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

        def solve(checkpoint):
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
                    checkpoint=checkpoint,
                    progress=options.progress,
                )
            except ValueError as err:
                raise ConfigError(str(err)) from err

        sol = staged(options.checkpoint, "fokker-planck", solve)
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
            "dt": float(sol.dt),
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
            summary,
            arrays,
            status=sol.status,
            message=sol.failure_report(),
        )

    return run


def _fp_memory(dim: int):
    """Peak bytes of ``fp-js-{dim}d``: the solve's arrays and the data density."""

    def estimate(config: dict[str, Any]) -> int:
        cells = config["cells"] ** dim
        implicit = config["method"] == "implicit"
        components = config.get("ring_components", len(config.get("data_means", [0.0])))
        elements = memory.fokker_planck_elements(cells, config["n_saves"], dim, implicit)
        return (elements + 2 * cells * components) * memory.itemsize()

    return estimate


def _fp_work(dim: int):
    """Operations of ``fp-js-{dim}d``: steps × cells × ~30 operations, and the data density
    on the grid (one evaluation per cell and component)."""

    def estimate(config: dict[str, Any]) -> float:
        low, high = config["domain"][:2]
        cells = float(config["cells"]) ** dim
        components = config.get("ring_components", len(config.get("data_means", [0.0])))
        return cells * (30 * work.fokker_planck_steps(config, dim, high - low) + components)

    return estimate


FP_JS_1D = Experiment(
    "fp-js-1d",
    FP_1D_DOC,
    FP_1D_PARAMS,
    _fp_run("fp-js-1d", 1),
    check=_check_fp(1),
    memory=_fp_memory(1),
    size_keys=("cells",),
    work=_fp_work(1),
    time_keys=("cells",),
)
FP_JS_2D = Experiment(
    "fp-js-2d",
    FP_2D_DOC,
    FP_2D_PARAMS,
    _fp_run("fp-js-2d", 2),
    check=_check_fp(2),
    memory=_fp_memory(2),
    size_keys=("cells", "ring_components"),
    work=_fp_work(2),
    time_keys=("cells", "ring_components"),
)
