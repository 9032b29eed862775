"""``js-flow-particles`` (study J, DESIGN §2.1–2.2): the particle ODE of the JS flow against the
grid Fokker–Planck solution."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._optax import ADAM, descent
from ..checkpoint import stage
from ..distributions import MAX_NODES, GaussianMixture
from ..errors import ConfigError
from ..games.js import (
    BANDWIDTH_RULES,
    NORMALISATIONS,
    ExactDrift,
    GridDensity,
    KDEDrift,
    NeuralDrift,
    fit_discriminator,
)
from ..measure import ParticleMeasure
from ..networks import Discriminator
from ..solvers import SOLVERS
from ..solvers.fokker_planck import solve_fokker_planck
from ..solvers.js_flow import JSFlowProblem, simulate_js_flow
from ..solvers.outcome import staged
from . import memory, work
from .choices import ACTIVATIONS
from .common import discriminator_params
from .registry import Experiment, Param, Result, RunOptions

ESTIMATORS = ("kde", "neural", "exact")


def _mixture(means: list[float], weights: list[float], std: float, dim: int, key: str):
    if len(means) % dim:
        raise ConfigError(f"{key}_means: needs {dim} numbers per component, got {len(means)}")
    n_comp = len(means) // dim
    if len(weights) != n_comp or sum(weights) <= 0:
        raise ConfigError(
            f"{key}_weights: needs {n_comp} non-negative weights (not all 0), got {weights}"
        )
    return GaussianMixture(np.reshape(means, (n_comp, dim)), np.asarray(weights), std)


def _points(law, size: int) -> ParticleMeasure:
    rule = law.quadrature(size)
    return ParticleMeasure(rule.nodes, rule.weights)


FLOW_DOC = """Particle ODE of the JS flow against the grid Fokker–Planck solution (DESIGN §2.1–2.2).

ρ_d and ρ_0 Gaussian mixtures in 1-D or 2-D. Particles drawn i.i.d. from ρ_0 move with
c·sigmoid(ℓ̂)∇ℓ̂, ℓ̂ from the selected estimator: `kde` (kernel estimate of the particles),
`neural` (discriminator whose parameters follow the BCE gradient flow at rate disc_rate),
`exact` (ρ_t interpolated from the grid solution: the particles are its characteristics).
Mean, variance and JS of both are compared at the grid's save times. The particles' JS
(js_initial, js_final, js_drop, js_max_increase) is the plug-in estimate from the
estimator's logit over the particles, which can be negative; js_*_grid is the grid's JS.
"""

FLOW_PARAMS: dict[str, Param] = {
    "dim": Param(1, "dimension of the data and particles (1 or 2)", minimum=1, maximum=2),
    "data_means": Param([-1.0, 1.0], "component means of ρ_d, dim numbers per component"),
    "data_weights": Param([0.5, 0.5], "mixture weights of ρ_d", minimum=0.0),
    "data_std": Param(0.5, "std of each component of ρ_d", positive=True),
    "init_means": Param([2.0], "component means of ρ_0, dim numbers per component"),
    "init_weights": Param([1.0], "mixture weights of ρ_0", minimum=0.0),
    "init_std": Param(0.5, "std of each component of ρ_0", positive=True),
    "estimator": Param("kde", "drift estimator", choices=ESTIMATORS),
    "n_particles": Param(2000, "number of particles", minimum=2),
    "bandwidth": Param(1.0, "kde: bandwidth (fixed rule) or multiplier of the rule", positive=True),
    "bandwidth_rule": Param("silverman", "kde: bandwidth rule", choices=BANDWIDTH_RULES),
    **discriminator_params(),
    "disc_rate": Param(20.0, "neural: rate of the discriminator's gradient flow", positive=True),
    "normalisation": Param(
        "v",
        "v: gradient flow of 2JS − log 4; js: of JS (drift halved)",
        choices=tuple(NORMALISATIONS),
    ),
    "t1": Param(2.0, "final time", positive=True),
    "dt": Param(0.02, "particle ODE time step", positive=True),
    "solver": Param("heun", "diffrax solver", choices=tuple(SOLVERS)),
    "n_saves": Param(21, "comparison times, evenly spaced in [0, t1]", minimum=2),
    "cells": Param(400, "grid cells per axis of the Fokker–Planck solution", minimum=8),
    "margin": Param(6.0, "grid box: means ± margin × largest std", positive=True),
    "quadrature": Param(
        16,
        "Gauss–Hermite nodes per component (per axis) of ρ_d for the discriminator and diagnostics",
        minimum=1,
        maximum=MAX_NODES,
    ),
    "seed": Param(0, "random seed (particles, discriminator)", minimum=0),
}


def _flow_laws(config: dict[str, Any]) -> tuple[GaussianMixture, GaussianMixture]:
    dim = config["dim"]
    data = _mixture(config["data_means"], config["data_weights"], config["data_std"], dim, "data")
    init = _mixture(config["init_means"], config["init_weights"], config["init_std"], dim, "init")
    return data, init


def _check_flow(config: dict[str, Any]) -> None:
    _flow_laws(config)
    steps = config["t1"] / config["dt"]
    if config["dt"] >= config["t1"] or abs(steps - round(steps)) > 1e-6 * steps:
        raise ConfigError(f"dt: must divide t1 = {config['t1']}, got {config['dt']}")


def _box(data: GaussianMixture, init: GaussianMixture, margin: float):
    means = np.concatenate([np.asarray(data.means), np.asarray(init.means)])
    spread = margin * max(float(jnp.max(data.stds)), float(jnp.max(init.stds)))
    return [
        (float(lo), float(hi))
        for lo, hi in zip(means.min(0) - spread, means.max(0) + spread, strict=True)
    ]


def _flow_estimator(config, data, data_points, particles, fp, key):
    kind = config["estimator"]
    if kind == "kde":
        return KDEDrift(data, config["bandwidth"], config["bandwidth_rule"])
    if kind == "exact":
        low, high = np.asarray(fp.grid.low), np.asarray(fp.grid.high)
        return ExactDrift(data, GridDensity(low, high, fp.densities, np.asarray(fp.ts)))
    disc = Discriminator(
        config["dim"],
        config["disc_width"],
        config["disc_depth"],
        key=key,
        activation=ACTIVATIONS[config["disc_activation"]],
    )
    opt = descent(ADAM, config["disc_lr"])
    state = opt.init(eqx.filter(disc, eqx.is_inexact_array))
    disc, _, _ = fit_discriminator(
        disc, state, opt, data_points, particles, config["disc_pretrain"]
    )
    return NeuralDrift(disc)


def _flow_grid(config: dict[str, Any], options: RunOptions, data, init, box, checkpoint):
    """The Fokker–Planck solution on the grid (stage ``fokker-planck``)."""
    try:
        return solve_fokker_planck(
            data,
            init,
            box,
            config["cells"],
            config["t1"],
            normalisation=config["normalisation"],
            n_saves=config["n_saves"],
            checkpoint=checkpoint,
            progress=options.progress,
        )
    except ValueError as err:
        raise ConfigError(f"margin/cells: the grid solver refused the box: {err}") from err


def _flow_particles(config, options: RunOptions, data, x0, fp, key) -> dict[str, Any]:
    """The drift estimator's fit and the particle ODE (stage ``particle-flow``)."""
    particles = ParticleMeasure(x0)
    data_points = _points(data, config["quadrature"])
    estimator = _flow_estimator(config, data, data_points, particles, fp, key)
    problem = JSFlowProblem(
        estimator, data_points, particles.weights, config["normalisation"], config["disc_rate"]
    )
    traj = simulate_js_flow(
        problem,
        x0,
        t1=config["t1"],
        dt=config["dt"],
        solver=config["solver"],
        save_ts=np.minimum(np.asarray(fp.ts), config["t1"]),
        snapshot_ts=np.linspace(0, config["t1"], 5),
        progress_meter=diffrax.TqdmProgressMeter() if options.progress else None,
    )
    return {
        "ts": traj.ts,
        "snapshot_ts": traj.snapshot_ts,
        "snapshots": traj.snapshots,
        "final": traj.final.particles,
        "status": np.asarray(traj.status),
        "message": np.asarray(traj.failure_report() or ""),
    } | {f"diag_{k}": v for k, v in traj.diagnostics.items()}


def run_flow(config: dict[str, Any], options: RunOptions) -> Result:
    data, init = _flow_laws(config)
    key_x, key_d = jax.random.split(jax.random.key(config["seed"]))
    n = config["n_particles"]
    x0 = init.sample(key_x, n)
    spec = options.checkpoint
    box = _box(data, init, config["margin"])
    fp = staged(spec, "fokker-planck", partial(_flow_grid, config, options, data, init, box))
    flow = stage(
        spec, "particle-flow", partial(_flow_particles, config, options, data, x0, fp, key_d)
    )
    diag = {k[5:]: v for k, v in flow.items() if k.startswith("diag_")}
    grid = {k: np.asarray(v) for k, v in fp.diagnostics.items()}
    mean_err = np.linalg.norm(diag["mean"] - grid["mean"], axis=1)
    var_err = np.linalg.norm(diag["variance"] - grid["variance"], axis=1)
    js = diag["js"]
    # i.i.d. particles: CLT standard errors of the moments at t1 and of their changes
    # since t = 0 (the changes cancel the initial sampling error; centre = grid mean at 0).
    x1, x0 = flow["final"], np.asarray(x0)
    centre = grid["mean"][0]
    m2_change = (x1 - centre) ** 2 - (x0 - centre) ** 2
    grid_m2 = grid["variance"] + (grid["mean"] - centre) ** 2
    se_mean = float(np.linalg.norm(x1.std(0)) / math.sqrt(n))
    se_var = float(np.linalg.norm(((x1 - x1.mean(0)) ** 2).std(0)) / math.sqrt(n))
    shift_error = np.linalg.norm((x1 - x0).mean(0) - (grid["mean"][-1] - grid["mean"][0]))
    m2_error = np.linalg.norm(m2_change.mean(0) - (grid_m2[-1] - grid_m2[0]))
    moments = {
        "mean_shift_error": float(shift_error),
        "mean_shift_standard_error": float(np.linalg.norm((x1 - x0).std(0)) / math.sqrt(n)),
        "second_moment_shift_error": float(m2_error),
        "second_moment_shift_standard_error": float(
            np.linalg.norm(m2_change.std(0)) / math.sqrt(n)
        ),
    }
    failures = [(fp.status, fp.failure_report())] if fp.status != "ok" else []
    if str(flow["status"]) != "ok":
        failures.append((str(flow["status"]), str(flow["message"])))
    status = failures[0][0] if failures else "ok"
    summary = {
        "status": status,
        "mean_error_final": float(mean_err[-1]),
        "variance_error_final": float(var_err[-1]),
        "mean_error_max": float(mean_err.max()),
        "variance_error_max": float(var_err.max()),
        "mean_standard_error": se_mean,
        "variance_standard_error": se_var,
        **moments,
        "mean_final": diag["mean"][-1].tolist(),
        "mean_final_grid": grid["mean"][-1].tolist(),
        "variance_final": diag["variance"][-1].tolist(),
        "variance_final_grid": grid["variance"][-1].tolist(),
        "js_initial": float(js[0]),
        "js_final": float(js[-1]),
        "js_initial_grid": float(grid["js"][0]),
        "js_final_grid": float(grid["js"][-1]),
        "js_max_increase": float(max(np.diff(js).max(), 0.0)),
        "js_drop": float(js[0] - js[-1]),
        "dissipation_integral": float(np.trapezoid(diag["dissipation"], flow["ts"])),
        "data_distance_final": float(diag["data_distance"][-1]),
    }
    arrays = {key: flow[key] for key in ("ts", "snapshot_ts", "snapshots")} | {
        "fp_densities": np.asarray(fp.densities),
        "data_density": np.asarray(fp.data_density),
    }
    arrays |= {f"x{k}": np.asarray(fp.grid.axis_centres(k)) for k in range(config["dim"])}
    arrays |= {f"diag_{k}": v for k, v in diag.items()}
    arrays |= {f"grid_{k}": grid[k] for k in ("mean", "variance", "js")}
    return Result(
        "js-flow-particles",
        config,
        summary,
        arrays,
        status=status,
        message="; ".join(str(message) for _, message in failures) or None,
    )


def _flow_memory(config: dict[str, Any]) -> int:
    """Peak bytes: the grid Fokker–Planck solution (kept; read again as a log density by
    the exact drift), then the particle flow: the drift's work (kernel tables,
    discriminator activations), five snapshots and the final particles."""
    dim, n = config["dim"], config["n_particles"]
    components = len(config["data_means"]) // dim
    data = components * config["quadrature"] ** dim
    cells, saves = config["cells"] ** dim, config["n_saves"]
    elements = memory.fokker_planck_elements(cells, saves, dim, implicit=False)
    if config["estimator"] == "kde":
        elements += memory.kde_elements(n, dim, data)
    elif config["estimator"] == "neural":
        width, depth = config["disc_width"], config["disc_depth"]
        elements += memory.mlp_elements(n + data, width, depth, dim)
    else:
        elements += cells * saves + 20 * n
    return (elements + 6 * n * dim) * memory.itemsize()


def _flow_work(config: dict[str, Any]) -> float:
    """Operations: the grid solution on a box of ±``margin`` stds (``cells`` per axis),
    then the particle flow: per stage a kernel drift (particles²), an exact drift
    (particles × mixture components) or a discriminator pass (particles × width² × depth)."""
    dim, n = config["dim"], config["n_particles"]
    box = 2 * config["margin"] * config["data_std"] + np.ptp(config["data_means"])
    steps = work.fokker_planck_steps({"cells": config["cells"], "t1": config["t1"]}, dim, box)
    grid = float(config["cells"]) ** dim * 30 * steps
    per_particle = {
        "kde": n,
        "exact": len(config["data_means"]) // dim,
        "neural": config["disc_width"] ** 2 * config["disc_depth"],
    }[config["estimator"]]
    flow = config["t1"] / config["dt"] * work.stages(config["solver"]) * n * per_particle
    return grid + flow * work.PAIR


JS_FLOW_PARTICLES = Experiment(
    "js-flow-particles",
    FLOW_DOC,
    FLOW_PARAMS,
    run_flow,
    check=_check_flow,
    memory=_flow_memory,
    size_keys=("n_particles", "cells"),
    work=_flow_work,
    time_keys=("n_particles", "cells"),
)
