"""``gan-as-ode`` (study J, DESIGN §2.3): GAN-as-ODE on a 2-D ring of Gaussians, how the number
K of MSE steps per iteration changes the path."""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..checkpoint import stage
from ..diagnostics import sliced_wasserstein1
from ..distributions import MAX_NODES, Normal, ring_mixture
from ..errors import ConfigError
from ..games.js import (
    BANDWIDTH_RULES,
    NORMALISATIONS,
    KDEDrift,
    KernelDiscriminator,
    TrainedDiscriminator,
)
from ..measure import ParticleMeasure
from ..networks import Discriminator, MLPGenerator
from ..solvers.gan_as_ode import GANAsODE, run_gan_as_ode
from ..solvers.js_flow import JSFlowProblem, simulate_js_flow
from . import memory, work
from .choices import ACTIVATIONS, OPTIMIZERS
from .common import discriminator_params, finite_or_none
from .registry import Experiment, Param, Result, RunOptions

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
    **discriminator_params(width=64, lr=5e-3, pretrain=300),
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
        activation=ACTIVATIONS[config["gen_activation"]],
    )
    if config["drift"] == "neural":
        disc = Discriminator(
            2,
            config["disc_width"],
            config["disc_depth"],
            key=key_d,
            activation=ACTIVATIONS[config["disc_activation"]],
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
            optimizer=OPTIMIZERS[config["optimizer"]],
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


SLICED_DIRECTIONS = 64
"""Directions of :func:`~gandyn.diagnostics.sliced_wasserstein1` in 2-D."""


def _gan_memory(config: dict[str, Any]) -> int:
    """Peak bytes: generated points ``m`` = latent nodes: the kernel drift of the reference
    flow (and of the algorithm with ``drift = kde``) on ``m`` points, or the
    discriminator's activations, the generator's, the sliced W1 projections, and every
    run's snapshots (kept)."""
    m = config["latent_quadrature"] ** 2
    data = config["ring_components"] * config["quadrature"] ** 2
    drift = memory.kde_elements(m, 2, data)
    if config["drift"] == "neural":
        width, depth = config["disc_width"], config["disc_depth"]
        drift = max(drift, memory.mlp_elements(m + data, width, depth, 2))
    generator = memory.mlp_elements(m, config["gen_width"], config["gen_depth"], 2)
    sliced = 6 * SLICED_DIRECTIONS * (m + data)
    snapshots = 2 * m * (config["n_iter"] // config["snapshot_every"] + 1)
    runs = 1 + len(config["K_list"])
    kept = runs * (2 * snapshots + 8 * config["n_iter"])
    return (drift + generator + sliced + kept) * memory.itemsize()


def _gan_work(config: dict[str, Any]) -> float:
    """Operations per iteration of each run (and of the reference flow): the drift on the
    ``m`` generated points (kernel: m × (m + data); neural: discriminator passes) and
    ``K`` generator passes (m × width² × depth)."""
    m = config["latent_quadrature"] ** 2
    data = config["ring_components"] * config["quadrature"] ** 2
    if config["drift"] == "kde":
        drift = m * (m + data) * work.PAIR
    else:
        passes = config["n_disc_steps"] * (m + data) * config["disc_width"] ** 2
        drift = passes * config["disc_depth"] * 3
    generator = m * config["gen_width"] ** 2 * config["gen_depth"] * 3
    pretrain = config["disc_pretrain"] * (m + data) * config["disc_width"] ** 2 * 3
    per_k = [config["n_iter"] * (drift + k * generator) for k in config["K_list"]]
    return sum(per_k) + config["n_iter"] * (m * (m + data) * work.PAIR) + pretrain


GAN_AS_ODE = Experiment(
    "gan-as-ode",
    GAN_DOC,
    GAN_PARAMS,
    run_gan,
    check=_check_gan,
    memory=_gan_memory,
    size_keys=("n_iter", "latent_quadrature", "quadrature", "ring_components"),
    work=_gan_work,
    time_keys=("n_iter", "K_list", "latent_quadrature"),
)
