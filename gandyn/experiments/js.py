"""Study J experiments (DESIGN §2): ``js-flow-particles``, ``gan-as-ode``, ``mse-divergence``.

Linearisation of the affine GAN at its fixed point (``mse-divergence``)
-----------------------------------------------------------------------
Generator ``G(z) = a z + b``, latent ``z ~ N(0, s²)``, data ``ρ_d = N(0, 1)``, exact
discriminator: ``ρ_t = N(b, σ²)`` with ``σ = |a| s``, ``ℓ(y) = −y²/2 + (y − b)²/(2σ²) + log σ``,
drift ``c v`` with ``v = sigmoid(ℓ) ℓ'`` (``c = 1`` for ``v``, ½ for ``js``). Fixed point:
``a = 1/s``, ``b = 0`` (``ℓ ≡ 0``). Write ``a = (1 + α)/s``. To first order
``sigmoid(ℓ) ℓ' = ½ ℓ'`` (``ℓ₀' ≡ 0``) and ``ℓ'(y) = −2α y − b``; at ``y = z/s =: u ~ N(0,1)``:

    E[v z] = −α s,    E[v] = −b/2.

The MSE ``½E|a z + b − ζ|²`` has Hessian ``H = diag(s², 1)`` in ``(a, b)`` and its exact
least-squares solution moves ``(a, b)`` by ``Δ_LS = (cε E[v z]/s², cε E[v])``. ``K`` gradient
steps of rate ``λ`` realise ``(I − (I − λH)^K) Δ_LS``, so the one-iteration map has the
eigenvalues (directions ``α`` and ``b``)

    μ_a = 1 − cε [1 − (1 − λ s²)^K],      μ_b = 1 − (cε/2) [1 − (1 − λ)^K].

``K = 1`` (the GAN step, ``η = λε``): ``μ_a = 1 − cη s²``, ``μ_b = 1 − cη/2``; stable iff
``η < η* = min(2/s², 4)/c`` — ``η* = 2`` for ``s = 1``, ``v``. At ``η*`` (``s² > ½``) ``μ_a``
crosses −1: a period-doubling bifurcation, and the iteration settles on a 2-cycle of ``a``
around ``1/s`` (``b → 0``; measured half-width ≈ 0.33 √(η − η*) at ``s = 1``); further
above come higher periods and irregular orbits. The stiffness of the ``a`` direction grows
with ``s²`` (the latent scale sets ``∂G/∂a = z``): that is what one step of MSE fitting
overshoots. Exact least squares (the limit ``K → ∞`` when ``λ max(s², 1) < 2``) gives
``μ_a = 1 − cε``, ``μ_b = 1 − cε/2`` — independent of ``λ`` and
``s``: it converges for every ``η`` whenever the Euler step itself is stable (``cε < 2``).
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..checkpoint import stage, within
from ..diagnostics import sliced_wasserstein1
from ..distributions import MAX_NODES, GaussianMixture, Normal
from ..games.js import (
    BANDWIDTH_RULES,
    NORMALISATIONS,
    Discriminator,
    ExactDrift,
    GridDensity,
    KDEDrift,
    NeuralDrift,
    fit_discriminator,
    optimizer_by_name,
)
from ..measure import ParticleMeasure
from ..solvers import SOLVERS
from ..solvers.fokker_planck import FokkerPlanckSolution, solve_fokker_planck
from ..solvers.gan_as_ode import (
    AffineGenerator,
    ExactDiscriminator,
    GANAsODE,
    KernelDiscriminator,
    MLPGenerator,
    TrainedDiscriminator,
    run_gan_as_ode,
)
from ..solvers.js_flow import JSFlowProblem, simulate_js_flow
from ..units import ACTIVATIONS
from . import memory, work
from .common import finite_or_none, finite_summary
from .grids import ring_mixture
from .registry import ConfigError, Experiment, Param, Result, RunOptions, register

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


def _discriminator_params(width=32, depth=2, lr=1e-2, pretrain=500) -> dict[str, Param]:
    return {
        "disc_width": Param(width, "discriminator MLP width", minimum=1),
        "disc_depth": Param(depth, "discriminator MLP hidden layers", minimum=1),
        "disc_activation": Param("tanh", "discriminator activation", choices=tuple(ACTIVATIONS)),
        "disc_lr": Param(lr, "discriminator learning rate (adam)", positive=True),
        "disc_pretrain": Param(pretrain, "BCE steps before the first iteration", minimum=0),
    }


# ----------------------------------------------------------------------------- js-flow-particles

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
    **_discriminator_params(),
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
        activation=config["disc_activation"],
    )
    opt = optimizer_by_name("adam", config["disc_lr"])
    state = opt.init(eqx.filter(disc, eqx.is_inexact_array))
    disc, _, _ = fit_discriminator(
        disc, state, opt, data_points, particles, config["disc_pretrain"]
    )
    return NeuralDrift(disc)


def _flow_grid(config: dict[str, Any], options: RunOptions, data, init) -> dict[str, Any]:
    """The Fokker–Planck solution on the grid (stage ``fokker-planck``)."""
    try:
        return solve_fokker_planck(
            data,
            init,
            _box(data, init, config["margin"]),
            config["cells"],
            config["t1"],
            normalisation=config["normalisation"],
            n_saves=config["n_saves"],
            checkpoint=within(options.checkpoint, "fokker-planck"),
            progress=options.progress,
        ).as_arrays()
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
    fp = FokkerPlanckSolution.from_arrays(
        stage(spec, "fokker-planck", partial(_flow_grid, config, options, data, init))
    )
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
        finite_summary(summary),
        arrays,
        status=status,
        message="; ".join(str(message) for _, message in failures) or None,
    )


# ----------------------------------------------------------------------------- gan-as-ode

GAN_DOC = """GAN-as-ODE on a 2-D ring of Gaussians: how the number K of MSE steps changes the path.

MLP generator, Euler targets ζ = y + ε c v̂(y) from a kernel estimate of the generated law
(or a warm-started neural discriminator), K gradient steps of rate λ per iteration (K = 1 is
the original GAN step, η = λε). The reference is the particle ODE with the kernel drift
from the same initial points to time n_iter·ε; path_distance is the sliced W1 between the
two at the snapshot times (ODE time = iteration × ε). K…_js_estimate_final is the plug-in
estimate of JS(generated, data) from the drift model's logit (kernel or network, not the
exact discriminator): unlike JS itself it can be negative.
"""

GAN_PARAMS: dict[str, Param] = {
    "ring_radius": Param(1.5, "radius of the ring of data Gaussians", positive=True),
    "ring_components": Param(8, "number of Gaussians on the ring", minimum=1),
    "ring_std": Param(0.4, "std of each ring Gaussian", positive=True),
    "K_list": Param([1, 10, 50], "generator MSE steps per iteration, one run each", minimum=1),
    "eps": Param(0.05, "Euler step ε of the targets", positive=True),
    "lr": Param(0.1, "generator learning rate λ (η = λε for K = 1)", positive=True),
    "optimizer": Param("sgd", "generator optimizer", choices=("sgd", "adam")),
    "n_iter": Param(400, "iterations", minimum=1),
    "snapshot_every": Param(100, "snapshot of the generated points every … iterations", minimum=1),
    "drift": Param(
        "kde",
        "drift estimate: kernel estimate (as the reference flow, so the "
        "path distance isolates the fitting) or neural discriminator",
        choices=("kde", "neural"),
    ),
    "n_disc_steps": Param(5, "neural: discriminator steps per iteration (warm-started)", minimum=1),
    **_discriminator_params(width=64, lr=5e-3, pretrain=300),
    "bandwidth": Param(1.0, "kde: multiplier of the rule (reference flow too)", positive=True),
    "bandwidth_rule": Param("silverman", "kde: bandwidth rule", choices=BANDWIDTH_RULES),
    "gen_width": Param(64, "generator MLP width", minimum=1),
    "gen_depth": Param(2, "generator MLP hidden layers", minimum=1),
    "gen_activation": Param("tanh", "generator activation", choices=tuple(ACTIVATIONS)),
    "latent_quadrature": Param(
        16, "Gauss–Hermite nodes per latent axis (2-D latent)", minimum=1, maximum=MAX_NODES
    ),
    "quadrature": Param(
        6, "Gauss–Hermite nodes per axis per ring component", minimum=1, maximum=MAX_NODES
    ),
    "normalisation": Param("v", "drift normalisation", choices=tuple(NORMALISATIONS)),
    "seed": Param(0, "random seed (networks)", minimum=0),
}


def _check_gan(config: dict[str, Any]) -> None:
    if config["n_iter"] % config["snapshot_every"]:
        raise ConfigError(
            f"snapshot_every: must divide n_iter = {config['n_iter']}, got "
            f"{config['snapshot_every']}"
        )


def _gan_reference(config, data, data_rule, latent, generator) -> dict[str, Any]:
    """The particle ODE with the kernel drift from the generator's initial points, at the
    snapshot times (stage ``reference-flow``)."""
    flow = JSFlowProblem(
        KDEDrift(data, config["bandwidth"], config["bandwidth_rule"]),
        ParticleMeasure(data_rule.nodes, data_rule.weights),
        latent.weights,
        config["normalisation"],
    )
    n_iter, eps = config["n_iter"], config["eps"]
    snap_ts = np.arange(0, n_iter + 1, config["snapshot_every"]) * eps
    y0 = jax.vmap(generator)(latent.nodes)
    reference = simulate_js_flow(
        flow, y0, t1=n_iter * eps, dt=eps, save_ts=snap_ts, snapshot_ts=snap_ts
    )
    return {
        "snapshots": reference.snapshots,
        "data_distance": reference.diagnostics["data_distance"],
    }


def _gan_run(algorithm: GANAsODE, generator, n_iter: int, every: int) -> dict[str, Any]:
    """One GAN-as-ODE run (stage ``gan-KK``): snapshots and per-iteration diagnostics."""
    traj = run_gan_as_ode(algorithm, generator, n_iter, snapshot_every=every)
    return {"snapshots": traj.snapshots} | {f"diag_{k}": v for k, v in traj.diagnostics.items()}


def run_gan(config: dict[str, Any], options: RunOptions) -> Result:
    data = ring_mixture(config["ring_radius"], config["ring_components"], config["ring_std"])
    data_rule = data.quadrature(config["quadrature"])
    latent = Normal(np.zeros(2), 1.0).quadrature(config["latent_quadrature"])
    key_g, key_d = jax.random.split(jax.random.key(config["seed"]))
    generator = MLPGenerator(
        2,
        2,
        config["gen_width"],
        config["gen_depth"],
        key=key_g,
        activation=config["gen_activation"],
    )
    if config["drift"] == "neural":
        disc = Discriminator(
            2,
            config["disc_width"],
            config["disc_depth"],
            key=key_d,
            activation=config["disc_activation"],
        )
        model = TrainedDiscriminator(
            disc, config["disc_lr"], config["n_disc_steps"], config["disc_pretrain"]
        )
    else:
        model = KernelDiscriminator(data, config["bandwidth"], config["bandwidth_rule"])
    n_iter, every = config["n_iter"], config["snapshot_every"]
    spec = options.checkpoint
    reference = stage(
        spec, "reference-flow", partial(_gan_reference, config, data, data_rule, latent, generator)
    )
    ref_snaps = reference["snapshots"]
    arrays: dict[str, np.ndarray] = {
        "reference_snapshots": ref_snaps,
        "reference_data_distance": reference["data_distance"],
    }
    summary: dict[str, Any] = {}
    weights, nonfinite = latent.weights, []
    for K in config["K_list"]:
        algorithm = GANAsODE(
            model,
            latent,
            data_rule,
            eps=config["eps"],
            lr=config["lr"],
            K=K,
            optimizer=config["optimizer"],
            normalisation=config["normalisation"],
        )
        run = stage(spec, f"gan-K{K}", partial(_gan_run, algorithm, generator, n_iter, every))
        diag = {k[5:]: v for k, v in run.items() if k.startswith("diag_")}
        snaps = run["snapshots"]
        path = np.asarray(
            jax.vmap(lambda a, b: sliced_wasserstein1(a, weights, b, weights))(
                jnp.asarray(snaps), jnp.asarray(ref_snaps)
            )
        )
        final_distance = sliced_wasserstein1(snaps[-1], weights, data_rule.nodes, data_rule.weights)
        if not np.all(np.isfinite(snaps)):
            bad = ~np.isfinite(diag["mse_after"])
            first = int(np.argmax(bad)) if bad.any() else n_iter - 1
            t_bad = (first + 1) * config["eps"]
            nonfinite.append(f"K = {K} after iteration {first + 1} (t = {t_bad:g})")
        ratio = diag["mse_after"] / np.maximum(diag["mse_before"], 1e-300)
        summary |= {
            f"K{K}_data_distance_initial": finite_or_none(diag["data_distance"][0]),
            f"K{K}_data_distance_final": finite_or_none(final_distance),
            f"K{K}_js_estimate_final": finite_or_none(diag["js"][-1]),
            f"K{K}_path_distance_max": finite_or_none(np.max(path)),
            f"K{K}_displacement_ratio_mean": finite_or_none(np.mean(diag["displacement_ratio"])),
            f"K{K}_displacement_error_mean": finite_or_none(np.mean(diag["displacement_error"])),
            f"K{K}_mse_after_over_before": finite_or_none(np.mean(ratio)),
        }
        arrays |= {f"K{K}_{k}": v for k, v in diag.items()}
        arrays |= {f"K{K}_snapshots": snaps, f"K{K}_path_distance": path}
    arrays |= {
        "snapshot_iters": np.arange(0, n_iter + 1, every),
        "data_points": np.asarray(data_rule.nodes),
        "latent_weights": np.asarray(weights),
    }
    status = "nonfinite" if nonfinite else "ok"
    message = "generated points went non-finite: " + "; ".join(nonfinite) if nonfinite else None
    return Result("gan-as-ode", config, {"status": status} | summary, arrays, status, message)


# ----------------------------------------------------------------------------- mse-divergence

MSE_DOC = """Affine GAN, exact discriminator: one MSE step diverges, least squares converges.

G(z) = a z + b, z ~ N(0, s²), ρ_d = N(0, 1), exact D*. Sweeps η = λε (ε fixed) on the
generic GAN-as-ODE algorithm: below η* = min(2/s², 4)/c (K = 1, linearisation in the module
docstring) the iteration returns to (a, b) = (1/s, 0); above it, a settles on a 2-cycle.
The same Euler targets fitted by exact least squares converge for every η and s tried.
"""

MSE_PARAMS: dict[str, Param] = {
    "eps": Param(0.25, "Euler step ε of the targets (fixed; η = λε sweeps λ)", positive=True),
    "eta_min": Param(0.5, "smallest η of the sweep", positive=True),
    "eta_max": Param(3.5, "largest η of the sweep", positive=True),
    "n_eta": Param(61, "η values in the sweep (the bifurcation diagram)", minimum=3),
    "latent_scale": Param(1.0, "latent std s of the main sweep", positive=True),
    "latent_scales": Param(
        [0.5, 0.8, 1.0, 1.25], "latent stds whose thresholds are found", positive=True
    ),
    "K": Param(1, "generator gradient steps per iteration", minimum=1),
    "normalisation": Param("v", "drift normalisation", choices=tuple(NORMALISATIONS)),
    "n_iter": Param(4000, "iterations per run", minimum=100),
    "perturbation": Param(
        1e-3, "initial offset of (s a, b) from the fixed point (1, 0)", positive=True
    ),
    "cycle_offset": Param(0.05, "the cycle is shown at η = threshold + offset", positive=True),
    "refine": Param(16, "points per refinement of the threshold bracket (two rounds)", minimum=2),
    "quadrature": Param(
        40, "Gauss–Hermite nodes for the latent and data expectations", minimum=2, maximum=MAX_NODES
    ),
}


def _check_mse(config: dict[str, Any]) -> None:
    if config["eta_min"] >= config["eta_max"]:
        raise ConfigError(
            f"eta_min: must be < eta_max = {config['eta_max']}, got {config['eta_min']}"
        )


def linear_eigenvalues(eta, eps, scale, K: int, c: float):
    """Closed-form eigenvalues ``(μ_a, μ_b)`` of the affine GAN map at its fixed point."""
    lam = np.asarray(eta) / eps
    mu_a = 1 - c * eps * (1 - (1 - lam * scale**2) ** K)
    mu_b = 1 - 0.5 * c * eps * (1 - (1 - lam) ** K)
    return mu_a, mu_b


def linear_threshold(eps: float, scale: float, K: int, c: float) -> float:
    """Smallest ``η`` with ``max(|μ_a|, |μ_b|) ≥ 1`` (bisection on the closed form)."""

    def unstable(eta):
        mu_a, mu_b = linear_eigenvalues(eta, eps, scale, K, c)
        return np.maximum(np.abs(mu_a), np.abs(mu_b)) >= 1

    grid = np.linspace(1e-6, 8 * max(1.0, scale**-2) / c, 200_001)
    hi = grid[np.argmax(unstable(grid))]
    lo = hi - (grid[1] - grid[0])
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if unstable(mid) else (mid, hi)
    return float(hi)


def _affine_params(generator: AffineGenerator):
    return jnp.stack([generator.A[0, 0], generator.b[0]])


@eqx.filter_jit
def _affine_paths(template: GANAsODE, start: AffineGenerator, lrs, n_iter: int):
    """``(a, b)`` before each iteration and after the last: ``(len(lrs), n_iter + 1, 2)``."""

    def one(lr):
        algorithm = eqx.tree_at(lambda a: a.lr, template, lr)
        traj = run_gan_as_ode(algorithm, start, n_iter, record=_affine_params)
        last = _affine_params(traj.final.generator)[None]
        return jnp.concatenate([traj.diagnostics["record"], last])

    return jax.vmap(one)(lrs)


@eqx.filter_jit
def _affine_jacobians(template: GANAsODE, fixed_point, lrs):
    """Autodiff Jacobians ``(len(lrs), 2, 2)`` of one iteration at the fixed point."""

    def one(lr):
        algorithm = eqx.tree_at(lambda a: a.lr, template, lr)

        def step(p):
            gen = AffineGenerator(p[0].reshape(1, 1), p[1:])
            return _affine_params(algorithm.step(algorithm.init(gen))[0].generator)

        return jax.jacfwd(step)(fixed_point)

    return jax.vmap(one)(lrs)


class _AffineStudy:
    """Runs of the affine GAN for many η at once: batches of ``refine + 2`` learning rates
    (one compilation per fit), vmapped."""

    def __init__(self, config: dict[str, Any], scale: float, fit: str):
        self.config, self.scale = config, scale
        q = config["quadrature"]
        data, latent = GaussianMixture([0.0]), Normal(0.0, scale)
        self.template = GANAsODE(
            ExactDiscriminator(data, latent),
            latent.quadrature(q),
            data.quadrature(q),
            eps=config["eps"],
            lr=1.0,
            K=config["K"],
            fit=fit,
            normalisation=config["normalisation"],
        )
        delta = config["perturbation"]
        self.start = AffineGenerator([[(1 + delta) / scale]], [delta])
        self.batch = config["refine"] + 2

    def _batched(self, fn, etas) -> np.ndarray:
        lrs = np.atleast_1d(np.asarray(etas, dtype=float)) / self.config["eps"]
        padded = np.resize(lrs, -(-lrs.size // self.batch) * self.batch)
        chunks = [np.asarray(fn(jnp.asarray(c))) for c in padded.reshape(-1, self.batch)]
        return np.concatenate(chunks)[: lrs.size]

    def paths(self, etas) -> np.ndarray:
        """``(a, b)`` before each iteration and after the last: ``(len(etas), n_iter + 1, 2)``."""
        n_iter = self.config["n_iter"]
        return self._batched(
            lambda lrs: _affine_paths(self.template, self.start, lrs, n_iter), etas
        )

    def jacobian_radius(self, etas) -> np.ndarray:
        """Spectral radius of the autodiff Jacobian of one iteration at the fixed point."""
        fixed = jnp.array([1 / self.scale, 0.0])
        jac = self._batched(lambda lrs: _affine_jacobians(self.template, fixed, lrs), etas)
        return np.abs(np.linalg.eigvals(jac)).max(axis=1)

    def deviation(self, paths: np.ndarray) -> np.ndarray:
        """Distance of ``(|a| s, b)`` from the fixed point ``(1, 0)``."""
        return np.hypot(np.abs(paths[..., 0]) * self.scale - 1, paths[..., 1])

    def contracting(self, etas) -> np.ndarray:
        """Whether the deviation over the last two iterations is below half of that at
        mid-run (a decaying perturbation; a cycle or growth is not)."""
        dev = self.deviation(self.paths(etas))
        n = dev.shape[1] - 1
        mid = dev[:, n // 2 - 1 : n // 2 + 1].max(1)
        late = dev[:, -2:].max(1)
        return np.isfinite(late) & ((late < 1e-12) | (late < 0.5 * mid))

    def threshold(self, etas) -> tuple[float | None, float | None]:
        """First non-contracting η, refined twice inside its bracket; and the resolution."""
        etas = np.asarray(etas, dtype=float)
        ok = self.contracting(etas)
        if ok.all() or not ok[0]:
            return None, None
        for _ in range(2):
            i = int(np.argmin(ok))
            etas = np.linspace(etas[i - 1], etas[i], self.batch)
            ok = self.contracting(etas)
        i = int(np.argmin(ok))
        return 0.5 * float(etas[i - 1] + etas[i]), float(etas[1] - etas[0])


def _classify(study: _AffineStudy, paths: np.ndarray) -> np.ndarray:
    """0: converged to the fixed point, 1: 2-cycle, 2: anything else (higher period, chaos,
    divergence)."""
    dev = study.deviation(paths)
    converged = dev[:, -1] < 1e-8
    two = np.max(np.abs(paths[:, -1] - paths[:, -3]), axis=1) < 1e-8
    return np.where(converged, 0, np.where(two, 1, 2))


def _threshold(study: _AffineStudy, etas) -> dict[str, Any]:
    """:meth:`_AffineStudy.threshold` as arrays (NaN for None)."""
    found, resolution = study.threshold(etas)
    return {
        "eta": np.nan if found is None else found,
        "resolution": np.nan if resolution is None else resolution,
    }


def _lstsq(config: dict[str, Any], scale: float, etas) -> dict[str, Any]:
    """The least-squares fits at one latent scale: final deviations, the measured rate
    over iterations 40–80 and the path at the largest η."""
    study = _AffineStudy(config, scale, "lstsq")
    paths = study.paths(etas)
    dev = study.deviation(paths)
    rate = np.max((dev[:, 80] / dev[:, 40]) ** (1 / 40))
    return {"deviation_final": dev[:, -1], "rate": rate, "path": paths[-1]}


def run_mse(config: dict[str, Any], options: RunOptions) -> Result:
    spec = options.checkpoint
    c = NORMALISATIONS[config["normalisation"]]
    eps, K, scale = config["eps"], config["K"], config["latent_scale"]
    etas = np.linspace(config["eta_min"], config["eta_max"], config["n_eta"])
    study = _AffineStudy(config, scale, "gradient")
    late = stage(spec, "sweep", lambda: {"paths": study.paths(etas)[:, -16:]})["paths"]
    classes = _classify(study, late)
    found = stage(spec, "threshold", partial(_threshold, study, etas))
    threshold, resolution = finite_or_none(found["eta"]), finite_or_none(found["resolution"])
    linear = linear_threshold(eps, scale, K, c)
    radii = stage(spec, "jacobian", lambda: {"radius": study.jacobian_radius(etas)})["radius"]
    crossing = int(np.argmax(radii >= 1)) if np.any(radii >= 1) else None
    jac_threshold = None
    if crossing:
        e0, e1, r0, r1 = etas[crossing - 1], etas[crossing], radii[crossing - 1], radii[crossing]
        jac_threshold = float(e0 + (1 - r0) * (e1 - e0) / (r1 - r0))

    summary: dict[str, Any] = {
        "status": "ok",
        "eta_threshold": threshold,
        "eta_threshold_resolution": resolution,
        "eta_threshold_linear": linear,
        "eta_threshold_jacobian": jac_threshold,
    }
    arrays = {
        "etas": etas,
        "classes": classes,
        "late_a": late[..., 0],
        "jacobian_radius": radii,
    }
    stable_path = stage(spec, "stable-path", lambda: {"path": study.paths(0.9 * linear)[0]})["path"]
    if threshold is not None:
        eta_c = threshold + config["cycle_offset"]
        cycle = stage(spec, "cycle", lambda: {"path": study.paths(eta_c)[0]})["path"]
        summary |= {
            "cycle_eta": eta_c,
            "cycle_values": sorted(float(v) for v in cycle[-2:, 0]),
            "cycle_b_max": float(np.abs(cycle[-2:, 1]).max()),
            "cycle_closure": float(np.abs(cycle[-1] - cycle[-3]).max()),
            "cycle_is_period_two": bool(_classify(study, cycle[None])[0] == 1),
        }
        arrays["cycle_path"] = cycle
    # Exact least squares on the same targets, every η and latent scale.
    ls_ok, ls_rates = [], []
    for s in sorted({scale, *config["latent_scales"]}):
        ls = stage(spec, f"lstsq-scale{s!r}", partial(_lstsq, config, s, etas))
        ls_ok.append(bool(np.all(ls["deviation_final"] < 1e-8)))
        ls_rates.append(float(ls["rate"]))
        if s == scale:
            arrays["ls_path"] = ls["path"]
    mu_ls = max(abs(1 - c * eps), abs(1 - 0.5 * c * eps))
    summary |= {
        "ls_converges": all(ls_ok),
        "ls_rate_measured": max(ls_rates),
        "ls_rate_linear": mu_ls,
    }
    # Thresholds for every latent scale.
    by_scale, by_scale_linear = [], []
    for s in config["latent_scales"]:
        theory = linear_threshold(eps, s, K, c)
        bracket = np.linspace(0.5 * theory, 1.5 * theory, config["refine"] + 2)
        study_s = _AffineStudy(config, s, "gradient")
        found_s = stage(spec, f"threshold-scale{s!r}", partial(_threshold, study_s, bracket))
        by_scale.append(finite_or_none(found_s["eta"]))
        by_scale_linear.append(theory)
    summary |= {
        "latent_scales": list(config["latent_scales"]),
        "eta_threshold_by_scale": by_scale,
        "eta_threshold_linear_by_scale": by_scale_linear,
    }
    arrays["stable_path"] = stable_path
    return Result("mse-divergence", config, summary, arrays)


# ----------------------------------------------------------------------------- registry


def _plot(kind: str):
    def plot(result: Result, out: Path) -> list[Path]:
        from ..plotting import js as plots

        return getattr(plots, f"plot_{kind}")(result, out)

    return plot


JS_FLOW_PARTICLES = register(
    Experiment(
        "js-flow-particles",
        FLOW_DOC,
        FLOW_PARAMS,
        run_flow,
        _plot("flow"),
        check=_check_flow,
        memory=memory.js_flow_particles,
        size_keys=("n_particles", "cells"),
        work=work.js_flow_particles,
        time_keys=("n_particles", "cells"),
    )
)
GAN_AS_ODE = register(
    Experiment(
        "gan-as-ode",
        GAN_DOC,
        GAN_PARAMS,
        run_gan,
        _plot("gan"),
        check=_check_gan,
        memory=memory.gan_as_ode,
        size_keys=("n_iter", "latent_quadrature", "quadrature", "ring_components"),
        work=work.gan_as_ode,
        time_keys=("n_iter", "K_list", "latent_quadrature"),
    )
)
MSE_DIVERGENCE = register(
    Experiment(
        "mse-divergence",
        MSE_DOC,
        MSE_PARAMS,
        run_mse,
        _plot("mse"),
        check=_check_mse,
        memory=memory.mse_divergence,
        size_keys=("n_eta", "n_iter"),
        work=work.mse_divergence,
        time_keys=("n_eta", "n_iter", "K", "quadrature"),
    )
)
